"""The tiny SSD trained on the synthetic translation: dips at anchor switches, remedies, blur, CLI.

Two detectors are trained once per module (same seed and batches, ~20-40 s each on 2 cores):
torchvision's SSD matching (a) and the best-delta remedy (b).
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from PIL import Image

from analyses.missed_detections import cli
from analyses.missed_detections.attribution import miss_table, miss_view, score_dip, switch_attribution
from analyses.missed_detections.frames import analyse_frames
from analyses.missed_detections.remedies import SYNTHETIC_OPTIONS, train_tiny_detector
from analyses.missed_detections.synthetic import blur_frames, translation_video

pytestmark = pytest.mark.slow

STEPS = 150


@pytest.fixture(scope="module")
def video():
    return translation_video(seed=1)


@pytest.fixture(scope="module")
def default_model():
    return train_tiny_detector("iou_threshold", steps=STEPS, seed=0)


@pytest.fixture(scope="module")
def remedy_model():
    return train_tiny_detector("best_delta", delta=0.15, steps=STEPS, seed=0)


@pytest.fixture(scope="module")
def default_ds(default_model, video):
    return analyse_frames(default_model, list(video.frames), video.boxes, options=SYNTHETIC_OPTIONS)


def _boundary_crossings(video) -> list[int]:
    """Frames t whose object centre lies in another 8-px level-0 cell than at t - 1 (geometry only)."""
    cx = ((video.boxes["x1"] + video.boxes["x2"]) / 2).to_numpy()
    cell = np.floor(cx / 8)
    return (np.flatnonzero(np.diff(cell)) + 1).tolist()


def test_switches_follow_the_geometry(default_ds, video):
    switches = np.flatnonzero(default_ds["anchor_switch"].values[:, 0]).tolist()
    assert switches == _boundary_crossings(video) == [8, 24, 40, 56, 72]
    assert set(default_ds["best_level"].values[:, 0]) == {0}
    assert default_ds["best_iou"].min() > 0.4  # worst: centre 3.75 px off, (10 - 3.75) / (10 + 3.75)


def test_score_dips_line_up_with_anchor_switches(default_ds):
    att = switch_attribution(default_ds, n_shuffles=2000, seed=0)
    assert att.n_misses >= 5
    assert att.observed >= 0.8
    assert att.baseline_mean < 0.3
    assert att.p_value < 0.01
    dip = score_dip(default_ds)
    assert dip["dip"] > 0.2, dip


def test_remedy_shrinks_the_dip(default_ds, remedy_model, video):
    remedied = analyse_frames(remedy_model, list(video.frames), video.boxes, options=SYNTHETIC_OPTIONS)
    before, after = score_dip(default_ds)["dip"], score_dip(remedied)["dip"]
    assert after < 0.5 * before, (before, after)
    assert int(remedied["momentary_miss"].sum()) < int(default_ds["momentary_miss"].sum())
    # the anchors themselves did not change: same switches
    np.testing.assert_array_equal(remedied["anchor_switch"].values, default_ds["anchor_switch"].values)


def test_blurred_frame_miss_is_not_attributed_to_a_switch(default_model, default_ds, video):
    frame = 32  # object centre x = 28.25: the middle of a cell, 8 frames from either switch
    assert not default_ds["missed"].values[frame, 0]
    blurred = blur_frames(video, [frame], sigma=5.0)
    ds = analyse_frames(default_model, list(blurred.frames), blurred.boxes, options=SYNTHETIC_OPTIONS)
    assert ds["missed"].values[frame, 0] and ds["momentary_miss"].values[frame, 0]
    np.testing.assert_array_equal(ds["anchor_switch"].values, default_ds["anchor_switch"].values)
    row = miss_table(ds).set_index("frame").loc[frame]
    assert row["cause"] == "other" and not row["near_switch"]
    switch_rows = miss_table(ds).query("frame != @frame")
    assert (switch_rows["cause"] == "anchor_switch").mean() >= 0.8
    att = switch_attribution(ds, n_shuffles=200)
    assert att.n_near == switch_attribution(default_ds, n_shuffles=200).n_near  # the blur adds a miss, no switch


def test_miss_view_locates_the_lost_cell(default_model, default_ds, video):
    table = miss_table(default_ds)
    frame = int(table[table["cause"] == "anchor_switch"]["frame"].iloc[0])
    view = miss_view(default_model, list(video.frames), default_ds, frame, "square")
    assert [d["score"].shape for d in view.levels] == [(3, 4, 8, 8), (3, 4, 4, 4)]
    assert view.levels[0]["feature_norm"].shape == (3, 8, 8)
    lost = view.lost
    assert lost["level"] == 0 and lost["cell_y"] == 3
    assert abs(lost["cell_x"] - int(default_ds["best_cell_x"].values[frame, 0])) <= 1
    iou0 = view.levels[0]["iou"].sel(offset=0).values
    a, y, x = np.unravel_index(np.argmax(iou0), iou0.shape)
    sel = default_ds.isel(frame=frame, object=0)
    assert (a, y, x) == (int(sel["best_aspect"]), int(sel["best_cell_y"]), int(sel["best_cell_x"]))


def test_cli_end_to_end(tmp_path, default_model, video):
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    names = []
    for k, frame in enumerate(video.frames):
        pixels = (frame.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
        names.append(f"f{k:03d}")
        Image.fromarray(pixels).save(frames_dir / f"{names[-1]}.png")
    boxes = video.boxes.assign(frame=names)  # frames named by file stem
    boxes.to_csv(tmp_path / "boxes.csv", index=False)
    weights = tmp_path / "tiny.pt"
    torch.save(default_model.state_dict(), weights)
    out = tmp_path / "out"
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["missed-detections", "--detector", "tiny", "--weights", str(weights), "--video",
                              str(frames_dir), "--boxes", str(tmp_path / "boxes.csv"), "--out", str(out),
                              "--score-threshold", str(SYNTHETIC_OPTIONS.score_threshold), "--window",
                              str(SYNTHETIC_OPTIONS.window), "--shuffles", "300", "--miss-views", "1"])
    assert args.func(args) == 0
    ds = xr.load_dataset(out / "missed_detections.nc", engine="h5netcdf")
    folder = cli.FrameFolder(frames_dir)
    direct = analyse_frames(default_model, folder, video.boxes, options=SYNTHETIC_OPTIONS)
    for var in direct.data_vars:
        np.testing.assert_allclose(ds[var].values.astype(float), direct[var].values.astype(float), atol=1e-6,
                                   err_msg=var)
    assert ds.attrs["detector"] == "tiny" and len(ds.attrs["weights_sha256"]) == 64
    assert list(ds["frame_name"].values) == [f"{n}.png" for n in names]
    table = pd.read_csv(out / "missed_detections.csv")
    assert len(table) == len(video.boxes)
    np.testing.assert_allclose(table["best_score"], direct["best_score"].values[:, 0], atol=1e-6)
    summary = json.loads((out / "attribution.json").read_text())["attribution"]["momentary_miss"]
    ref = switch_attribution(direct, n_shuffles=300, seed=0)
    assert summary["n_misses"] == ref.n_misses and summary["fraction_near_switch"] == pytest.approx(ref.observed)
    misses = pd.read_csv(out / "misses.csv")
    assert len(misses) == int(direct["missed"].sum())
    assert (out / "timeline_square.png").stat().st_size > 0
    assert len(list(out.glob("miss_*_square.png"))) == 1
    assert not list(out.glob(".*.tmp"))
