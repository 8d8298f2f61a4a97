"""``rsa-bridge units`` end to end on a tiny generated stimulus set (untrained AlexNet)."""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image, ImageDraw

from analyses.unit_attributes import cli
from analyses.unit_attributes.histograms import unit_divergence
from rsa_bridge.errors import RSABridgeError

N = 16


@pytest.fixture
def shapes_set(tmp_path):
    """16 images: discs (shape=disc, bright) and squares (shape=square, dark), sizes varying."""
    folder = tmp_path / "shapes"
    folder.mkdir()
    rows = []
    rng = np.random.default_rng(0)
    for i in range(N):
        disc = i % 2 == 0
        image = Image.new("RGB", (96, 96), (128, 128, 128))
        draw = ImageDraw.Draw(image)
        r = int(rng.integers(14, 34))
        box = (48 - r, 48 - r, 48 + r, 48 + r)
        (draw.ellipse if disc else draw.rectangle)(box, fill=(230, 230, 230) if disc else (20, 20, 20))
        image.save(folder / f"img{i:02d}.png")
        rows.append({"stimulus_id": f"img{i:02d}", "filename": f"img{i:02d}.png",
                     "shape": "disc" if disc else "square", "all_same": "x"})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["units", *argv])
    return args.func(args)


@pytest.mark.slow
def test_units_cli_end_to_end(shapes_set, tmp_path, capsys):
    out = tmp_path / "out"
    code = _run(["--model", "alexnet", "--weights", "none", "--stimuli", str(shapes_set), "--label", "shape",
                 "--positive", "disc", "--layers", "conv1,conv2,fc8", "-k", "4", "--folds", "3",
                 "--permutations", "3", "--batch-size", "5", "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    for layer in ("conv1", "conv2", "fc8"):
        assert f"\n{layer} " in printed
    assert "shape = disc (n=8) vs shape != disc (n=8)" in printed
    assert "perceptual depth:" in printed
    for name in cli_outputs():
        assert (out / name).is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".rsa-bridge-complete"]  # no staging
    ds = xr.load_dataset(out / "units.nc", engine="h5netcdf")
    assert list(ds["layer"].values) == ["conv1", "conv2", "fc8"]
    assert list(ds["n_units"].values) == [64, 192, 1000]
    assert ds.attrs["model"] == "alexnet" and ds.attrs["weights"] == "none"
    assert ds.attrs["option_k"] == 4 and ds.attrs["label"] == "shape"
    layers = pd.read_csv(out / "layers.csv")
    assert layers["layer"].tolist() == ["conv1", "conv2", "fc8"]
    assert np.allclose(layers["visualness"], ds["visualness"].values)
    units = pd.read_csv(out / "units.csv")
    assert len(units) == 64 + 192 + 1000
    conv1 = units[units["layer"] == "conv1"]
    assert np.allclose(conv1["divergence"], ds["divergence"].sel(layer="conv1").values[:64])

    # the streamed, pooled path equals a plain extract() + max over space + unit_divergence
    from extractors import extract, load_model
    from stimuli import load_stimulus_set

    stim = load_stimulus_set(shapes_set)
    acts = extract(load_model("alexnet", "none"), stim, ["conv1"], progress=False)["conv1"]
    pooled = acts.values.reshape(N, 64, -1).max(axis=2)
    positive = (stim.manifest["shape"] == "disc").to_numpy()
    expected = unit_divergence(pooled, positive, bins=10, epsilon=1e-3).divergence
    assert np.allclose(ds["divergence"].sel(layer="conv1").values[:64], expected, atol=1e-9)


def cli_outputs() -> tuple[str, ...]:
    from analyses.unit_attributes.output import OUTPUT_FILES

    return OUTPUT_FILES


@pytest.mark.parametrize("extra, message", [
    (["--label", "colour"], "has no label column 'colour'"),
    (["--label", "all_same", "--positive", "x"], "negative set is empty"),
    (["--label", "shape", "--positive", "disc", "-k", "100", "--layers", "conv1"], "64 units .* fewer than k = 100"),
    (["--label", "shape", "--positive", "disc", "--folds", "9"], "at least 9 stimuli in each set"),
])
def test_units_cli_bad_input(shapes_set, extra, message):
    with pytest.raises(RSABridgeError, match=message):
        _run(["--model", "alexnet", "--weights", "none", "--stimuli", str(shapes_set), "--quiet", *extra])


def test_units_command_through_the_main_entry_point(shapes_set, monkeypatch, capsys):
    import rsa_bridge.app.cli as main_cli

    monkeypatch.setitem(main_cli.COMMANDS, "units", "analyses.unit_attributes.cli")
    code = main_cli.main(["units", "--model", "alexnet", "--weights", "none", "--stimuli", str(shapes_set),
                          "--label", "colour"])
    assert code == 2
    assert "rsa-bridge units: error:" in capsys.readouterr().err
