"""The missed-detections command line and detector loading: inputs, user errors, outputs (no training)."""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image

from analyses.missed_detections import cli
from analyses.missed_detections.detectors import category_names, load_detector
from analyses.missed_detections.synthetic import translation_video
from rsa_bridge.errors import RSABridgeError


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["missed-detections", *argv])


def _write_video(folder, n_frames: int = 6):
    video = translation_video(n_frames=n_frames, start=(20.0, 28.0), end=(24.0, 28.0), seed=2)
    folder.mkdir()
    for k, frame in enumerate(video.frames):
        pixels = (frame.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"frame_{k:02d}.png")
    return video


def test_missing_pretrained_weights_is_a_clear_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("RSA_BRIDGE_OFFLINE", "1")
    with pytest.raises(RSABridgeError, match="--weights none"):
        load_detector("ssdlite320", "default")
    with pytest.raises(RSABridgeError, match="no pretrained weights"):
        load_detector("tiny", "default")
    with pytest.raises(RSABridgeError, match="unknown detector"):
        load_detector("yolo")


def test_untrained_torchvision_detector_loads(tmp_path):
    model = load_detector("ssdlite320", "none", seed=0)
    assert model.rsa_bridge_info.weights == "none" and not model.training
    names = category_names("ssdlite320", "default")
    assert names[1] == "person" and len(names) == 91
    assert category_names("ssdlite320", "none") is None


def test_read_boxes_maps_frame_names_and_labels(tmp_path):
    video = _write_video(tmp_path / "v", 4)
    frames = cli.FrameFolder(tmp_path / "v")
    boxes = video.boxes.assign(frame=[f"frame_{k:02d}.png" for k in range(4)], label="person")
    boxes.to_csv(tmp_path / "b.csv", index=False)
    table = cli.read_boxes(tmp_path / "b.csv", frames, category_names("ssdlite320", "default"))
    assert table["frame"].tolist() == [0, 1, 2, 3] and table["label"].tolist() == [1] * 4
    with pytest.raises(RSABridgeError, match="integer class indices"):
        cli.read_boxes(tmp_path / "b.csv", frames, None)
    boxes.assign(frame=["x", "y", "z", "w"]).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(RSABridgeError, match="not files of the video folder"):
        cli.read_boxes(tmp_path / "c.csv", frames, None)
    boxes.drop(columns="y2").to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(RSABridgeError, match="lacks columns"):
        cli.read_boxes(tmp_path / "d.csv", frames, None)
    with pytest.raises(RSABridgeError, match="not a folder"):
        cli.FrameFolder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RSABridgeError, match="no images"):
        cli.FrameFolder(tmp_path / "empty")


def test_cli_with_untrained_tiny_detector_writes_every_output(tmp_path):
    video = _write_video(tmp_path / "v")
    video.boxes.to_csv(tmp_path / "boxes.csv", index=False)
    out = tmp_path / "out"
    args = _parse(["--detector", "tiny", "--weights", "none", "--video", str(tmp_path / "v"), "--boxes",
                   str(tmp_path / "boxes.csv"), "--out", str(out), "--score-threshold", "0.0", "--shuffles", "10"])
    assert args.func(args) == 0
    ds = xr.load_dataset(out / "missed_detections.nc", engine="h5netcdf")
    assert ds.sizes["frame"] == 6 and list(ds["object"].values) == ["square"]
    assert ds.attrs["weights"] == "none" and ds.attrs["score_threshold"] == 0.0
    assert bool(ds["present"].all())
    assert {p.name for p in out.iterdir()} >= {"missed_detections.nc", "missed_detections.csv", "misses.csv",
                                                "attribution.json", "timeline_square.png"}
    table = pd.read_csv(out / "missed_detections.csv")
    assert {"gt_x1", "anchor_y2", "det_x2", "best_anchor", "momentary_miss"} <= set(table.columns)
    with pytest.raises(SystemExit) as stop:  # bounded when parsed (rsa_bridge.app.argtypes): one line, exit 2
        _parse(["--detector", "tiny", "--weights", "none", "--video", str(tmp_path / "v"), "--boxes",
                str(tmp_path / "boxes.csv"), "--out", str(out), "--window", "0"])
    assert stop.value.code == 2


def test_registered_in_the_main_command_line(tmp_path, monkeypatch, capsys):
    from rsa_bridge.app import cli as main_cli

    monkeypatch.setitem(main_cli.COMMANDS, "missed-detections", "analyses.missed_detections.cli")
    code = main_cli.main(["missed-detections", "--detector", "tiny", "--weights", "none", "--video",
                          str(tmp_path / "nothing"), "--boxes", "b.csv", "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a folder" in err[0]
