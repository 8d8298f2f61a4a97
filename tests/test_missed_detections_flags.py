"""Flags, detection matching, attribution statistics, training matchers and the frame Dataset.

Every number is checked against a hand-worked case, torchvision's own matcher, or an independent
numpy computation.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from scipy.special import softmax
from torchvision.models.detection._utils import Matcher, SSDMatcher

from analyses.missed_detections.attribution import miss_table, near_switch, run_near, score_dip, switch_attribution
from analyses.missed_detections.frames import (
    MissOptions,
    analyse_frames,
    anchor_switches,
    check_boxes,
    match_detections,
    momentary_misses,
)
from analyses.missed_detections.hooks import run_detector
from analyses.missed_detections.matchers import (
    ATSSMatcher,
    BestDeltaMatcher,
    IoUThresholdMatcher,
    TopKMatcher,
    make_matcher,
)
from analyses.missed_detections.synthetic import box_coverage, build_tiny_detector, render, textured_background
from rsa_bridge.errors import RSABridgeError

T, F = True, False


# ---------------------------------------------------------------- flags
def test_momentary_misses_hand_cases():
    det = np.array([T, F, T, T, F, F, T, F, F, F, F, T, F])
    pres = np.ones(13, bool)
    # runs: [1] len 1 bordered; [4,5] len 2 bordered; [7..10] len 4 bordered; [12] at the end (no after)
    assert momentary_misses(det, pres, 1).tolist() == [F, T, F, F, F, F, F, F, F, F, F, F, F]
    assert np.flatnonzero(momentary_misses(det, pres, 2)).tolist() == [1, 4, 5]
    assert np.flatnonzero(momentary_misses(det, pres, 4)).tolist() == [1, 4, 5, 7, 8, 9, 10]
    # an absent neighbour does not count as a detection; a miss in frame 0 has no frame before
    pres2 = pres.copy()
    pres2[3] = False
    assert np.flatnonzero(momentary_misses(det, pres2, 2)).tolist() == [1]
    assert not momentary_misses(np.array([F, T, T]), np.ones(3, bool), 3).any()
    with pytest.raises(RSABridgeError):
        momentary_misses(det, pres, 0)


def test_anchor_switches_and_near_switch():
    best = np.array([5, 5, 6, 6, 6, 9, 9, 2])
    pres = np.array([T, T, T, T, T, T, F, T])
    assert np.flatnonzero(anchor_switches(best, pres)).tolist() == [2, 5]  # 9->2 spans an absent frame
    sw = np.zeros(10, bool)
    sw[4] = True  # event between frames 3 and 4
    assert np.flatnonzero(near_switch(sw, 0)).tolist() == [3, 4]
    assert np.flatnonzero(near_switch(sw, 1)).tolist() == [2, 3, 4, 5]
    sw[0] = True  # cannot happen in data (no frame -1) but must not wrap around
    assert np.flatnonzero(near_switch(sw, 0)).tolist() == [0, 3, 4]


# ---------------------------------------------------------------- detection matching
def test_match_detections_greedy_by_score():
    gt = torch.tensor([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10.0]])
    gl = torch.tensor([1, 1, 2])
    boxes = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10], [20, 0, 30, 10], [40, 0, 50, 10], [0, 0, 10, 10.0]])
    scores = torch.tensor([0.6, 0.9, 0.4, 0.95, 0.99])
    labels = torch.tensor([1, 1, 1, 1, 2])
    # det 4 (0.99) has label 2 -> overlaps nothing of label 2; det 3 (0.95) label 1 vs object 2 (label 2): no;
    # det 1 (0.9) takes object 0 (IoU 0.82); det 0 (0.6) finds object 0 taken; det 2 is below 0.5
    opts = MissOptions(score_threshold=0.5)
    assert match_detections(gt, gl, boxes, scores, labels, opts).tolist() == [1, -1, -1]
    opts = MissOptions(score_threshold=0.3)
    assert match_detections(gt, gl, boxes, scores, labels, opts).tolist() == [1, 2, -1]
    opts = MissOptions(score_threshold=0.5, match_labels=False)
    assert match_detections(gt, gl, boxes, scores, labels, opts).tolist() == [4, -1, 3]
    assert match_detections(gt, gl, torch.zeros((0, 4)), torch.zeros(0), torch.zeros(0, dtype=torch.int64),
                            opts).tolist() == [-1, -1, -1]


def test_options_and_boxes_validation():
    with pytest.raises(RSABridgeError, match="score-threshold"):
        MissOptions(score_threshold=1.5)
    good = pd.DataFrame({"frame": [0, 1], "object_id": ["a", "a"], "x1": [0, 0], "y1": [0, 0], "x2": [5, 5],
                         "y2": [5, 5], "label": [1, 1]})
    assert len(check_boxes(good, 2)) == 2
    with pytest.raises(RSABridgeError, match="outside"):
        check_boxes(good, 1)
    with pytest.raises(RSABridgeError, match="x2 <= x1"):
        check_boxes(good.assign(x2=[5, 0]), 2)
    with pytest.raises(RSABridgeError, match="two boxes"):
        check_boxes(good.assign(frame=[0, 0]), 2)
    with pytest.raises(RSABridgeError, match="change label"):
        check_boxes(good.assign(label=[1, 2]), 2)
    with pytest.raises(RSABridgeError, match="lacks columns"):
        check_boxes(good.drop(columns="label"), 2)


# ---------------------------------------------------------------- attribution statistics
def _toy_ds(miss: np.ndarray, switch: np.ndarray, present: np.ndarray | None = None) -> xr.Dataset:
    present = np.ones_like(miss, bool) if present is None else present
    dims = ("frame", "object")
    return xr.Dataset({"momentary_miss": (dims, miss), "missed": (dims, miss), "anchor_switch": (dims, switch),
                       "present": (dims, present), "detection_score": (dims, np.where(miss, 0.4, 0.9))},
                      coords={"frame": np.arange(miss.shape[0]), "object": [f"o{i}" for i in range(miss.shape[1])]})


def test_switch_attribution_counts_and_baseline():
    n = 40
    switch = np.zeros((n, 2), bool)
    switch[[10, 30], 0] = True
    switch[[20], 1] = True
    miss = np.zeros((n, 2), bool)
    miss[[9, 30, 35], 0] = True  # 9 and 30 near a switch, 35 not
    miss[[20, 5], 1] = True  # 20 near, 5 not
    ds = _toy_ds(miss, switch)
    att = switch_attribution(ds, n_shuffles=4000, seed=3)
    assert (att.n_misses, att.n_near) == (5, 3)
    assert att.observed == pytest.approx(3 / 5)
    # independent Monte Carlo of the null: place each object's misses at random frames, count by runs
    rng = np.random.default_rng(99)
    hits = []
    for _ in range(2000):
        near_count = 0
        for o, k in ((0, 3), (1, 2)):
            frames = np.sort(rng.choice(n, size=k, replace=False))
            near_frames = {t - 1 for t in np.flatnonzero(switch[:, o])} | set(np.flatnonzero(switch[:, o]))
            runs = np.split(frames, np.flatnonzero(np.diff(frames) > 1) + 1)
            near_count += sum(len(r) for r in runs if near_frames & set(r.tolist()))
        hits.append(near_count / 5)
    assert att.baseline_mean == pytest.approx(np.mean(hits), abs=0.015)
    assert att.baseline_mean == pytest.approx((3 * 4 / n + 2 * 2 / n) / 5, abs=0.03)  # ~ isolated misses
    assert att.p_value == pytest.approx((1 + (att.baseline >= 0.6 - 1e-12).sum()) / 4001)
    again = switch_attribution(ds, n_shuffles=4000, seed=3)
    np.testing.assert_array_equal(att.baseline, again.baseline)  # seeded
    empty = switch_attribution(_toy_ds(np.zeros((5, 1), bool), np.zeros((5, 1), bool)), n_shuffles=10)
    assert empty.n_misses == 0 and np.isnan(empty.observed)


def test_runs_coincide_as_a_whole():
    flags = np.array([F, T, T, T, F, T, F, F, T, T])
    near = np.array([F, F, F, T, F, F, F, F, F, F])
    assert np.flatnonzero(run_near(flags, near)).tolist() == [1, 2, 3]
    assert run_near(np.stack([flags, ~flags]), near).shape == (2, 10)
    # a 3-frame momentary miss whose last frame touches the switch: all three frames coincide
    switch = np.zeros((12, 1), bool)
    switch[6, 0] = True
    miss = np.zeros((12, 1), bool)
    miss[[3, 4, 5], 0] = True
    att = switch_attribution(_toy_ds(miss, switch), n_shuffles=50)
    assert (att.n_misses, att.n_near) == (3, 3)
    assert att.observed == 1.0
    assert switch_attribution(_toy_ds(miss, np.roll(switch, 2)), n_shuffles=50).n_near == 0


def test_miss_table_and_score_dip():
    n = 12
    switch = np.zeros((n, 1), bool)
    switch[6, 0] = True
    miss = np.zeros((n, 1), bool)
    miss[[5, 9], 0] = True
    ds = _toy_ds(miss, switch)
    for k in ("best_anchor", "best_level", "best_cell_y", "best_cell_x", "best_aspect"):
        ds[k] = (("frame", "object"), np.arange(n)[:, None] // 6)
    for k in ("best_iou", "best_score"):
        ds[k] = (("frame", "object"), np.linspace(0, 1, n)[:, None])
    ds = ds.assign_coords(label=("object", [3]))
    table = miss_table(ds)
    assert table["frame"].tolist() == [5, 9]
    assert table["cause"].tolist() == ["anchor_switch", "other"]
    assert table["prev_best_score"].tolist() == pytest.approx([4 / 11, 8 / 11])
    dip = score_dip(ds)
    # near frames 5, 6: scores 0.4 (miss) and 0.9; away: 9 frames at 0.9 and one miss (0.4)
    assert dip["near"] == pytest.approx(0.65)
    assert dip["away"] == pytest.approx((9 * 0.9 + 0.4) / 10)


# ---------------------------------------------------------------- matchers
def _random_iou(seed: int, m: int = 4, n: int = 60, ties: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    iou = torch.rand(m, n, generator=g) * 0.8
    if ties:
        iou = (iou * 10).round() / 10
    return iou


@pytest.mark.parametrize("seed", range(5))
def test_threshold_matcher_equals_torchvision(seed):
    iou = _random_iou(seed)
    torch.testing.assert_close(IoUThresholdMatcher()(iou), SSDMatcher(0.5)(iou.clone()))
    tied = _random_iou(seed, ties=True)
    ours = IoUThresholdMatcher(0.5, 0.4, force_best=False, low_quality=True)(tied)
    torch.testing.assert_close(ours, Matcher(0.5, 0.4, allow_low_quality_matches=True)(tied.clone()))
    rpn = make_matcher("iou_threshold", "fasterrcnn")(tied)
    torch.testing.assert_close(rpn, Matcher(0.7, 0.3, allow_low_quality_matches=True)(tied.clone()))


def test_best_delta_matcher_hand_cases():
    iou = torch.tensor([[0.45, 0.43, 0.2, 0.0]])
    assert BestDeltaMatcher(delta=0.1)(iou).tolist() == [0, 0, -1, -1]
    assert BestDeltaMatcher(delta=0.3)(iou).tolist() == [0, 0, 0, -1]
    two = torch.tensor([[0.4, 0.38, 0.0], [0.0, 0.39, 0.6]])
    assert BestDeltaMatcher(delta=0.05)(two).tolist() == [0, 0, 1]
    assert BestDeltaMatcher(delta=0.25)(two).tolist() == [0, 1, 1]  # anchor 1 goes to the object it overlaps most
    assert IoUThresholdMatcher()(iou).tolist() == [0, -1, -1, -1]


def test_topk_matcher_hand_cases():
    iou = torch.tensor([[0.3, 0.25, 0.05, 0.2]])
    assert TopKMatcher(k=2)(iou).tolist() == [0, 0, -1, -1]
    assert TopKMatcher(k=4)(iou).tolist() == [0, 0, -1, 0]  # 0.05 is below min_iou


def _row_anchors(n: int = 4) -> torch.Tensor:
    return torch.tensor([[10.0 * i, 0.0, 10.0 * i + 10, 10.0] for i in range(n)])


def test_atss_matcher_hand_cases():
    from torchvision.ops import box_iou

    anchors, level = _row_anchors(), torch.zeros(4, dtype=torch.int64)
    # object centred on the boundary x = 20 between anchors 1 and 2: both IoU 60/160, candidates k=2
    gt = torch.tensor([[14.0, 0.0, 26.0, 10.0]])
    iou = box_iou(gt, anchors)
    assert iou[0, 1] == pytest.approx(0.375) and iou[0, 2] == pytest.approx(0.375)
    assert ATSSMatcher(k=2)(iou, anchors, gt, level).tolist() == [-1, 0, 0, -1]
    assert IoUThresholdMatcher()(iou).tolist() == [-1, 0, -1, -1]  # SSD's rule keeps only one
    # object (8..18): k=3 candidates are anchors 1, 0, 2 with IoU 2/3, 1/9, 0:
    gt = torch.tensor([[8.0, 0.0, 18.0, 10.0]])
    iou = box_iou(gt, anchors)
    vals = np.array([80 / 120, 20 / 180, 0.0])
    assert vals.mean() + vals.std(ddof=1) == pytest.approx(0.6164, abs=1e-4)  # threshold: only anchor 1 passes
    assert ATSSMatcher(k=3)(iou, anchors, gt, level).tolist() == [-1, 0, -1, -1]
    # k=2 (anchors 1, 0): threshold 0.389 + 0.393 > 2/3 -> no candidate passes; the fallback keeps the best
    assert ATSSMatcher(k=2)(iou, anchors, gt, level).tolist() == [-1, 0, -1, -1]
    assert ATSSMatcher(k=2, force_best=False)(iou, anchors, gt, level).tolist() == [-1, -1, -1, -1]


def test_make_matcher_registry():
    assert make_matcher("best_delta", delta=0.2).delta == 0.2
    assert "interpretation" in make_matcher("topk").interpretation
    assert make_matcher("atss").name == "atss"
    with pytest.raises(KeyError, match="choose one of"):
        make_matcher("nope")


# ---------------------------------------------------------------- rendering
def test_box_coverage_is_exact_area():
    cov = box_coverage((1.25, 2.5, 4.75, 3.0), 6, 6)
    assert cov.sum() == pytest.approx(3.5 * 0.5)
    assert cov[2, 2] == pytest.approx(0.5) and cov[2, 1] == pytest.approx(0.75 * 0.5)
    bg = textured_background(np.random.default_rng(0), 16)
    np.testing.assert_array_equal(bg, textured_background(np.random.default_rng(0), 16))
    img = render(bg, [(2.0, 2.0, 6.0, 6.0)], color=(1.0, 0.0, 0.0))
    assert img[0, 3, 3] == pytest.approx(1.0) and img[1, 3, 3] == pytest.approx(0.0)


# ---------------------------------------------------------------- the frame Dataset
def _np_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def test_analyse_frames_matches_independent_computation():
    model = build_tiny_detector(seed=1)
    rng = np.random.default_rng(0)
    frames = [torch.rand(3, 48, 80, generator=torch.Generator().manual_seed(k)) for k in range(5)]
    rows = []
    for k in range(5):
        for obj, label in (("a", 1), ("b", 0)):
            if obj == "b" and k == 2:
                continue  # b absent in frame 2
            x1, y1 = rng.uniform(0, 50), rng.uniform(0, 25)
            rows.append({"frame": k, "object_id": obj, "x1": x1, "y1": y1, "x2": x1 + rng.uniform(8, 25),
                         "y2": y1 + rng.uniform(8, 20), "label": label})
    boxes = pd.DataFrame(rows)
    ds = analyse_frames(model, frames, boxes, options=MissOptions(score_threshold=0.0), batch_size=2)
    assert ds.sizes == {"frame": 5, "object": 2, "coord": 4}
    assert not bool(ds["present"].sel(frame=2, object="b"))
    assert int(ds["best_anchor"].sel(frame=2, object="b")) == -1
    p = run_detector(model, frames, features=False)
    scale = np.array([64 / 80, 64 / 48, 64 / 80, 64 / 48])
    anchors = p.anchors[0].numpy()
    probs = softmax(p.logits.numpy(), axis=-1)
    for row in rows:
        sel = ds.sel(frame=row["frame"], object=row["object_id"])
        gt = np.array([[row["x1"], row["y1"], row["x2"], row["y2"]]]) * scale
        iou = _np_iou(gt, anchors)[0]
        j = int(np.argmax(iou))
        assert int(sel["best_anchor"]) == j
        assert float(sel["best_iou"]) == pytest.approx(iou[j], abs=1e-5)
        score = probs[row["frame"], :, row["label"]]
        assert float(sel["best_score"]) == pytest.approx(score[j], abs=1e-5)
        over = iou > 0.5
        if over.any():
            assert float(sel["max_score_iou"]) == pytest.approx(score[over].max(), abs=1e-5)
        else:
            assert np.isnan(float(sel["max_score_iou"]))
        assert int(sel["n_anchors_iou"]) == over.sum()
        lay = p.layout
        assert (int(sel["best_level"]), int(sel["best_cell_y"]), int(sel["best_cell_x"]),
                int(sel["best_aspect"])) == (lay.level[j], lay.cell_y[j], lay.cell_x[j], lay.aspect[j])
        np.testing.assert_allclose(sel["best_anchor_box"].values, anchors[j], atol=1e-5)
    with pytest.raises(RSABridgeError, match="do not fit"):
        analyse_frames(model, frames, boxes.assign(label=7))
