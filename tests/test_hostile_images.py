"""Images are read by documented rules (stimuli.pixels): 16-bit and float by their real range, alpha
composited onto mid grey or refused, palette/CMYK/grey converted; builders refuse corrupt images;
manifest paths may not leave the stimulus folder. Expected pixels are worked out by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from rsa_bridge.app.cli import main
from stimuli import StimulusError, from_folder, load_stimulus_set, read_image
from stimuli.builders import from_csv, write_manifest
from stimuli.pixels import BACKGROUND, to_rgb


def _px(img: Image.Image) -> tuple:
    return img.getpixel((0, 0))


def test_sixteen_bit_png_by_its_full_range(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.full((3, 3), 40000, np.uint16)).save(path)
    assert Image.open(path).convert("RGB").getpixel((0, 0)) == (255, 255, 255)  # what Pillow alone does
    assert _px(read_image(path)) == (156,) * 3  # round(40000 * 255 / 65535) = round(155.64)
    Image.fromarray(np.full((3, 3), 65535, np.uint16)).save(path)
    assert _px(read_image(path)) == (255,) * 3


def test_float_tiff_in_unit_range(tmp_path):
    path = tmp_path / "f.tif"
    Image.fromarray(np.full((3, 3), 0.5, np.float32)).save(path)
    assert Image.open(path).convert("RGB").getpixel((0, 0)) == (0, 0, 0)  # what Pillow alone does
    assert _px(read_image(path)) == (128,) * 3  # round(127.5) = 128 (half to even: 128)
    Image.fromarray(np.full((3, 3), 3.0, np.float32)).save(path)
    with pytest.raises(StimulusError, match=r"values 3\.\.3; .* \[0, 1\]"):
        read_image(path)
    Image.fromarray(np.array([[np.nan, 0.1]], np.float32)).save(path)
    with pytest.raises(StimulusError, match="NaN"):
        read_image(path)


def test_int32_image_outside_sixteen_bits_is_refused():
    with pytest.raises(StimulusError, match="16-bit range"):
        to_rgb(Image.fromarray(np.full((2, 2), 70000, np.int32)))
    assert _px(to_rgb(Image.fromarray(np.full((2, 2), 65535, np.int32)))) == (255,) * 3


def test_alpha_composited_onto_documented_background(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 255  # red
    rgba[..., 3] = 64  # alpha 64/255
    path = tmp_path / "t.png"
    Image.fromarray(rgba).save(path)
    a = 64 / 255
    expect = tuple(int(np.rint(a * c + (1 - a) * b)) for c, b in zip((255, 0, 0), BACKGROUND))
    assert expect == (160, 96, 96)
    assert _px(read_image(path)) == expect
    with pytest.raises(StimulusError, match="transparent"):
        read_image(path, alpha="refuse")
    rgba[..., 3] = 255  # opaque alpha changes nothing, also under "refuse"
    Image.fromarray(rgba).save(path)
    assert _px(read_image(path, alpha="refuse")) == (255, 0, 0)


def test_palette_cmyk_grey_and_bilevel(tmp_path):
    grey = Image.fromarray(np.full((2, 2), 77, np.uint8))
    assert _px(to_rgb(grey)) == (77, 77, 77)
    pal = Image.fromarray(np.full((2, 2, 3), (10, 20, 30), np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE)
    assert _px(to_rgb(pal)) == (10, 20, 30)
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # pure cyan-free red: R = 255, G = B = 0
    assert _px(to_rgb(cmyk)) == (255, 0, 0)
    assert _px(to_rgb(Image.new("1", (2, 2), 1))) == (255, 255, 255)
    la = Image.new("LA", (2, 2), (200, 0))  # fully transparent grey -> background
    assert _px(to_rgb(la)) == BACKGROUND


def _good(path, value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(path)


def test_builders_refuse_corrupt_images(tmp_path, capsys):
    _good(tmp_path / "imgs" / "a.png")
    (tmp_path / "imgs" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(StimulusError, match="1 of 2 image"):
        write_manifest(from_folder(tmp_path / "imgs"))
    assert not (tmp_path / "imgs" / "manifest.csv").exists()
    assert main(["stimuli", "from-folder", str(tmp_path / "imgs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'b'" in err[0]
    pd.DataFrame({"path": ["imgs/a.png", "imgs/b.png"]}).to_csv(tmp_path / "list.csv", index=False)
    assert main(["stimuli", "from-csv", str(tmp_path / "list.csv")]) == 2
    assert not (tmp_path / "manifest.csv").exists()


def test_manifest_may_not_leave_the_folder(tmp_path, capsys):
    _good(tmp_path / "set" / "a.png")
    (tmp_path / "secret.txt").write_text("x")
    for entry in ("../secret.txt", "../../../../etc/passwd", "/etc/passwd", "sub/../../secret.txt"):
        pd.DataFrame({"stimulus_id": ["a", "b"], "filename": ["a.png", entry]}).to_csv(
            tmp_path / "set" / "manifest.csv", index=False)
        with pytest.raises(StimulusError, match="outside its folder"):
            load_stimulus_set(tmp_path / "set")
        assert main(["stimuli", "contact-sheet", str(tmp_path / "set"), "--out", str(tmp_path / "s.png")]) == 2
        assert "outside its folder" in capsys.readouterr().err
    # inside is fine, also with a harmless '..' that stays inside
    pd.DataFrame({"stimulus_id": ["a"], "filename": ["./a.png"]}).to_csv(tmp_path / "set" / "manifest.csv",
                                                                            index=False)
    assert len(load_stimulus_set(tmp_path / "set")) == 1
    assert not (tmp_path / "s.png").exists()


def test_from_csv_outside_images_still_build_in_memory(tmp_path):
    _good(tmp_path / "imgs" / "a.png")
    pd.DataFrame({"path": ["../imgs/a.png"]}).to_csv(tmp_path / "meta" / "l.csv" if (tmp_path / "meta").mkdir() is None
                                                      else None, index=False)
    s = from_csv(tmp_path / "meta" / "l.csv")
    assert len(s) == 1 and _px(read_image(s.paths[0])) == (100, 100, 100)
