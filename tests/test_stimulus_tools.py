"""Stimulus-set tools (folder/CSV/archive builders, manifests, contact sheet) and control models."""
from __future__ import annotations

import argparse
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from stimuli import (
    StimulusError,
    contact_sheet,
    control_features,
    from_archive,
    from_csv,
    from_folder,
    from_folder_tree,
    load_stimulus_set,
    write_manifest,
)
from stimuli import controls


def save(path: Path, value: int, size: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(path)
    return path


def parser_with_stimuli() -> argparse.ArgumentParser:
    from rsa_bridge.app.commands import stimuli_cmd

    parser = argparse.ArgumentParser()
    stimuli_cmd.register(parser.add_subparsers(dest="command"))
    return parser


def run_cli(*argv: str) -> int:
    args = parser_with_stimuli().parse_args(["stimuli", *argv])
    return args.func(args)


# ---------------------------------------------------------------- builders


def test_folder_manifest_round_trip(tmp_path):
    for name, v in [("b", 10), ("a", 20), ("c", 30)]:
        save(tmp_path / "imgs" / f"{name}.png", v)
    stimulus_set = from_folder(tmp_path / "imgs")
    path = write_manifest(stimulus_set)
    assert path == tmp_path / "imgs" / "manifest.csv"
    assert pd.read_csv(path).to_dict("list") == {"stimulus_id": ["a", "b", "c"], "filename": ["a.png", "b.png", "c.png"]}
    with pytest.raises(StimulusError, match="already exists"):
        write_manifest(stimulus_set)
    # a manifest elsewhere points back with relative paths
    elsewhere = write_manifest(stimulus_set, tmp_path / "meta" / "set.csv")
    assert pd.read_csv(elsewhere)["filename"].tolist() == ["../imgs/a.png", "../imgs/b.png", "../imgs/c.png"]
    with pytest.raises(StimulusError, match="outside its folder"):  # issue 17: not by default
        load_stimulus_set(elsewhere)
    loaded = load_stimulus_set(elsewhere, allow_outside=True)
    assert loaded.stimulus_ids == ["a", "b", "c"] and all(p.is_file() for p in loaded.paths)
    assert [q.resolve() for q in loaded.paths] == [q.resolve() for q in stimulus_set.paths]


def test_folder_tree_ids_and_folder_label(tmp_path):
    save(tmp_path / "cats" / "x.png", 1)
    save(tmp_path / "dogs" / "x.jpg", 2)
    save(tmp_path / "top.png", 3)
    (tmp_path / "notes.txt").write_text("not an image")
    s = from_folder_tree(tmp_path)
    assert s.stimulus_ids == ["cats/x", "dogs/x", "top"]
    assert s.manifest["folder"].tolist() == ["cats", "dogs", "."]
    assert s.manifest["filename"].tolist() == ["cats/x.png", "dogs/x.jpg", "top.png"]
    write_manifest(s)
    assert load_stimulus_set(tmp_path).labels("folder")["dogs/x"] == "dogs"


def test_from_csv(tmp_path):
    save(tmp_path / "img" / "one.png", 1)
    save(tmp_path / "img" / "two.png", 2)
    csv = tmp_path / "list.csv"
    pd.DataFrame({"path": ["img/one.png", "img/two.png"], "kind": ["face", "body"]}).to_csv(csv, index=False)
    s = from_csv(csv)
    assert s.stimulus_ids == ["one", "two"] and s.labels("kind").to_dict() == {"one": "face", "two": "body"}
    assert list(s.manifest.columns) == ["stimulus_id", "filename", "kind"]
    assert all(p.is_file() for p in s.paths)
    pd.DataFrame({"file": ["img/one.png", "img/two.png"], "sid": ["s2", "s1"]}).to_csv(csv, index=False)
    assert from_csv(csv, path_column="file", id_column="sid").stimulus_ids == ["s2", "s1"]
    pd.DataFrame({"path": ["img/one.png", "img/missing.png"]}).to_csv(csv, index=False)
    with pytest.raises(StimulusError, match="missing"):
        from_csv(csv)
    pd.DataFrame({"path": ["img/one.png", "other/one.png"]}).to_csv(csv, index=False)
    with pytest.raises(StimulusError, match="duplicate"):
        from_csv(csv)
    with pytest.raises(StimulusError, match="no column 'where'"):
        from_csv(csv, path_column="where")


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    return path


def make_tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as handle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            handle.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            handle.addfile(info)
    return path


def png_bytes(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((6, 6), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_from_archive_zip_and_tar(tmp_path):
    z = make_zip(tmp_path / "set.zip", {"pics/a.png": png_bytes(1), "pics/b.png": png_bytes(2)})
    s = from_archive(z, tmp_path / "from_zip")
    assert s.stimulus_ids == ["pics/a", "pics/b"] and s.manifest["folder"].tolist() == ["pics", "pics"]
    assert (tmp_path / "from_zip" / "manifest.csv").is_file()
    manifest = b"stimulus_id,filename,kind\nA,a.png,x\nB,b.png,y\n"
    t = make_tar(tmp_path / "set.tar.gz", {"root/manifest.csv": manifest, "root/a.png": png_bytes(1), "root/b.png": png_bytes(2)})
    s = from_archive(t, tmp_path / "from_tar")
    assert s.stimulus_ids == ["A", "B"] and s.labels("kind").tolist() == ["x", "y"]
    assert s.root == tmp_path / "from_tar" / "root"
    with pytest.raises(StimulusError, match="not empty"):
        from_archive(t, tmp_path / "from_tar")


@pytest.mark.parametrize(
    "kind,members,links,why",
    [
        ("zip", {"ok.png": b"x", "../evil.png": b"x"}, None, "'..' in path"),
        ("zip", {"a/../../evil.png": b"x"}, None, "'..' in path"),
        ("tar", {"ok.png": b"x", "/tmp/evil.png": b"x"}, None, "absolute path"),
        ("tar", {"sub/../../evil.png": b"x"}, None, "'..' in path"),
        ("tar", {"ok.png": b"x"}, {"link.png": "/etc/passwd"}, "link"),
    ],
)
def test_unsafe_archives_rejected_and_nothing_written(tmp_path, kind, members, links, why):
    work = tmp_path / "work"
    work.mkdir()
    archive = make_zip(work / "bad.zip", members) if kind == "zip" else make_tar(work / "bad.tar.gz", members, links)
    with pytest.raises(StimulusError, match="unsafe") as err:
        from_archive(archive, work / "out")
    assert why in str(err.value)
    assert sorted(p.name for p in work.iterdir()) == [archive.name]
    assert not (tmp_path / "evil.png").exists() and not Path("/tmp/evil.png").exists()


# ---------------------------------------------------------------- contact sheet


def test_contact_sheet_thumbnails_and_label_colours(tmp_path):
    for i in range(5):
        save(tmp_path / "s" / f"im{i}.png", 40 * i, size=32)
    s = from_folder(tmp_path / "s")
    manifest = s.manifest.assign(group=["a", "b", "a", "b", "a"])
    s = type(s)(s.root, manifest, s.name)
    out = contact_sheet(s, tmp_path / "sheet.png", label="group", columns=3)
    pixels = np.asarray(Image.open(out).convert("RGB")).reshape(-1, 3)
    colours = controls_colours(["a", "b"])
    for rgb in colours:
        assert (pixels == rgb).all(axis=1).sum() > 50  # the frames
    plain = np.asarray(Image.open(contact_sheet(s, tmp_path / "plain.png")).convert("RGB")).reshape(-1, 3)
    assert not any((plain == rgb).all(axis=1).sum() > 50 for rgb in colours)
    with pytest.raises(StimulusError, match="no label column"):
        contact_sheet(s, tmp_path / "x.png", label="nope")


def controls_colours(values):
    from stimuli.contact_sheet import label_colours

    hexes = label_colours(values)
    assert hexes == {"a": "#1f77b4", "b": "#ff7f0e"}  # tab10's first two colours
    return [tuple(int(h[i : i + 2], 16) for i in (1, 3, 5)) for h in hexes.values()]


# ---------------------------------------------------------------- control models

N = 64


def grating(kx: int, ky: int, amplitude: float = 0.3, mean: float = 0.5) -> np.ndarray:
    """``mean + A cos(2 pi (kx x + ky y) / N)`` with y pointing up (row 0 at the top)."""
    x = np.arange(N)[None, :]
    y = -np.arange(N)[:, None]
    return mean + amplitude * np.cos(2 * np.pi * (kx * x + ky * y) / N)


def test_pixels_hand_worked():
    image = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [51, 102, 153]]], dtype=np.uint8)
    f = control_features("pixels", [image], size=None)
    np.testing.assert_allclose(f.values, [[1, 0, 0, 0, 1, 0, 0, 0, 1, 0.2, 0.4, 0.6]])
    assert f.feature_names[:4] == ["px_r0_c0_r", "px_r0_c0_g", "px_r0_c0_b", "px_r0_c1_r"] and f.stimulus_ids == ["0"]
    grey = control_features("pixels", [image], ["s"], size=None, grey=True)
    np.testing.assert_allclose(grey.values, [[0.299, 0.587, 0.114, 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6]])
    resized = control_features("pixels", [np.full((30, 50, 3), 0.25)], size=8)
    assert resized.values.shape == (1, 8 * 8 * 3)
    np.testing.assert_allclose(resized.values, 0.25, atol=1e-6)


def test_luminance_contrast_hand_worked():
    checker = (np.indices((4, 4)).sum(axis=0) % 2).astype(float)
    red = np.zeros((3, 3, 3), dtype=np.uint8)
    red[..., 0] = 255
    half = np.array([[0.2, 0.2], [0.6, 0.6]])
    f = control_features("luminance_contrast", [checker, red, half, np.zeros((2, 2))])
    np.testing.assert_allclose(
        f.values, [[0.5, 0.5, 1.0], [0.299, 0.0, 0.0], [0.4, 0.2, 0.5], [0.0, 0.0, 0.0]], atol=1e-12
    )
    assert f.feature_names == ["mean_luminance", "rms_contrast", "michelson_contrast"]


def test_spatial_frequency_power_of_gratings():
    edges = controls.band_edges(N, 6)
    np.testing.assert_allclose(edges, np.geomspace(1, N / np.sqrt(2), 7))
    amplitude = 0.3
    cases = {(8, 0): 0, (0, 5): 2, (4, 4): 1, (-4, 4): 3}  # -> orientation bin (0, 45, 90, 135 degrees)
    f = control_features("spatial_frequency", [grating(*k) for k in cases], size=None, n_bands=6, n_orientations=4, log=False)
    for row, ((kx, ky), orient) in zip(f.values.reshape(len(cases), 6, 4), cases.items()):
        band = np.searchsorted(edges, np.hypot(kx, ky), side="right") - 1
        want = np.zeros((6, 4))
        want[band, orient] = amplitude**2 / 2  # all the variance of the grating
        np.testing.assert_allclose(row, want, atol=1e-12)
    # Parseval: the bins add up to the luma variance; log is log10(power + eps)
    noise = np.random.default_rng(0).random((N, N))
    linear = control_features("spatial_frequency", [noise], size=None, log=False).values
    assert linear.sum() == pytest.approx(noise.var(), rel=1e-10)
    logged = control_features("spatial_frequency", [noise], size=None).values
    np.testing.assert_allclose(logged, np.log10(linear + 1e-10))


def test_gabor_energy_of_a_grating():
    amplitude = 0.3
    f = control_features("gabor", [grating(8, 0, amplitude)], size=None, frequencies=(8,), n_orientations=4, grid=2)
    energy = f.values.reshape(4, 2, 2)  # orientation x cell row x cell column
    np.testing.assert_allclose(energy[0], amplitude / 2, rtol=1e-8)  # matched filter: A/2 everywhere
    sigma = 8 * (2**0.5 - 2**-0.5) / (2 * np.sqrt(2 * np.log(2)))
    k0 = 8 * np.array([np.cos(np.pi / 4), np.sin(np.pi / 4)])
    np.testing.assert_allclose(energy[1], amplitude / 2 * np.exp(-np.sum((np.array([8, 0]) - k0) ** 2) / (2 * sigma**2)), rtol=1e-6)
    assert energy[2].max() < amplitude / 2 * 2 * np.exp(-128 / (2 * sigma**2))  # orthogonal: tiny
    assert f.feature_names[0] == "gabor_f8_o0_r0_c0" and f.feature_names[4] == "gabor_f8_o45_r0_c0"
    assert f.values.shape == (1, 4 * 2 * 2)
    # orientation sign: a grating along the up-right diagonal drives 45 degrees, not 135
    diagonal = control_features("gabor", [grating(6, 6, amplitude)], size=None, frequencies=(6 * np.sqrt(2),), n_orientations=4, grid=1)
    np.testing.assert_allclose(diagonal.values[0, 1], amplitude / 2, rtol=1e-8)
    assert diagonal.values[0, 3] < 1e-4 * amplitude


def test_gabor_energy_equals_direct_spatial_convolution():
    n = 32
    image = np.random.default_rng(3).random((n, n))
    f = control_features("gabor", [image], size=None, frequencies=(4,), n_orientations=2, grid=1)
    # the same filter as an explicit complex Gabor kernel: envelope std s = n / (2 pi sigma) pixels
    f0, sigma = 4.0, 4.0 * (2**0.5 - 2**-0.5) / (2 * np.sqrt(2 * np.log(2)))
    s = n / (2 * np.pi * sigma)
    r = np.arange(-n // 2, n // 2)
    x, y = r[None, :], -r[:, None]
    lum = image - image.mean()
    for o, theta in enumerate([0.0, np.pi / 2]):
        envelope = np.exp(-(x**2 + y**2) / (2 * s**2)) / (2 * np.pi * s**2)
        phase = 2 * np.pi * f0 * (np.cos(theta) * x + np.sin(theta) * y) / n
        even = ndimage.convolve(lum, envelope * np.cos(phase), mode="wrap")
        odd = ndimage.convolve(lum, envelope * np.sin(phase), mode="wrap")
        np.testing.assert_allclose(f.values[0, o], np.hypot(even, odd).mean(), rtol=1e-3)


def test_controls_take_stimulus_sets_and_check_inputs(tmp_path):
    for i, v in enumerate([0, 128, 255]):
        save(tmp_path / f"s{i}.png", v, size=16)
    s = from_folder(tmp_path)
    for name in controls.CONTROL_MODELS:
        f = control_features(name, s, size=72) if name != "luminance_contrast" else control_features(name, s)
        assert f.stimulus_ids == ["s0", "s1", "s2"] and f.model == name
        assert f.values.shape[0] == 3 and f.values.shape[1] == len(f.feature_names)
        assert np.isfinite(f.values).all()
    lum = control_features("luminance_contrast", s).values[:, 0]
    np.testing.assert_allclose(lum, [0, 128 / 255, 1], atol=1e-12)
    with pytest.raises(StimulusError, match="unknown control model"):
        control_features("hog", s)
    with pytest.raises(StimulusError, match="Nyquist"):
        control_features("gabor", s, size=16, frequencies=(8,))
    with pytest.raises(StimulusError, match="square"):
        control_features("spatial_frequency", [np.zeros((4, 6))], size=None)
    with pytest.raises(StimulusError, match="2 stimulus ids for 3"):
        control_features("pixels", [np.zeros((2, 2))] * 3, ["a", "b"])


# ---------------------------------------------------------------- command line


def test_cli_set_tools(tmp_path, capsys):
    for i in range(3):
        save(tmp_path / "flat" / f"p{i}.png", 60 * i)
    assert run_cli("from-folder", str(tmp_path / "flat")) == 0
    assert load_stimulus_set(tmp_path / "flat").stimulus_ids == ["p0", "p1", "p2"]
    with pytest.raises(StimulusError, match="already exists"):
        run_cli("from-folder", str(tmp_path / "flat"))
    assert run_cli("from-folder", str(tmp_path / "flat"), "--overwrite") == 0

    csv = tmp_path / "flat" / "list.csv"
    pd.DataFrame({"img": ["p0.png", "p2.png"], "tag": ["u", "v"]}).to_csv(csv, index=False)
    out = tmp_path / "flat" / "two.csv"
    assert run_cli("from-csv", str(csv), "--path-column", "img", "--out", str(out)) == 0
    assert load_stimulus_set(out).labels("tag").to_dict() == {"p0": "u", "p2": "v"}

    archive = make_zip(tmp_path / "a.zip", {"x.png": png_bytes(5), "y.png": png_bytes(9)})
    assert run_cli("from-archive", str(archive), "--out", str(tmp_path / "unzipped")) == 0
    assert load_stimulus_set(tmp_path / "unzipped").stimulus_ids == ["x", "y"]

    sheet = tmp_path / "sheet.png"
    assert run_cli("contact-sheet", str(out), "--out", str(sheet), "--label", "tag") == 0
    assert Image.open(sheet).size[0] > 100
    printed = capsys.readouterr().out
    assert "wrote manifest of 3 stimuli" in printed and "extracted 2 stimuli" in printed
    assert "wrote contact sheet of 2 stimuli" in printed
