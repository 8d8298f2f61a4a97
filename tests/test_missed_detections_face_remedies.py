"""The remedies on BlazeFace: the box encoding, the training loss, fine-tuning under two matchers, the identity
split and the comparison end to end (the real weights from ../shared/data; skipped when absent)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from analyses.missed_detections.blazeface import load_blazeface_detector
from analyses.missed_detections.blazeface_train import (
    blazeface_losses,
    encode_boxes,
    match_faces,
)
from analyses.missed_detections.clips import STUDY_CLIP, ClipOptions, make_clip
from analyses.missed_detections.face_remedies import (
    RemedyOptions,
    check_split,
    compare_face_remedies,
    identity_folds,
    main,
    pool_sampler,
    training_pool,
)
from analyses.missed_detections.matchers import make_matcher
from analyses.missed_detections.train import fine_tune
from extractors.sources.blazeface_anchors import decode_boxes, ssd_anchors
from rsa_bridge.errors import RSABridgeError
from tests.conftest import SHARED

TFLITE = SHARED / "mediapipe_face_detection" / "face_detection_short_range.tflite"
ANCHORS = ssd_anchors()


def _faces(n_frames: int = 6, seed: int = 0):
    """Frames (T, 3, 96, 96) of a bright square 'face' on a textured background and their boxes (T, 4)."""
    image = torch.full((3, 40, 40), 0.2)
    image[:, 10:30, 10:30] = 0.9
    clip = make_clip(image, (10.0, 10.0, 30.0, 30.0), ClipOptions(n_frames=n_frames, frame_size=96,
                                                                  face_size=(0.45, 0.35), seed=seed))
    return clip.frames, torch.tensor(clip.boxes[["x1", "y1", "x2", "y2"]].values, dtype=torch.float32)


def test_encoding_inverts_mediapipe_decoding_both_ways():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0.05, 0.7, size=(896, 2))
    boxes = torch.tensor(np.concatenate([xy, xy + rng.uniform(0.02, 0.3, size=(896, 2))], 1), dtype=torch.float64)
    raw = encode_boxes(boxes, ANCHORS)
    decoded, _ = decode_boxes(torch.cat([raw, torch.zeros(896, 12, dtype=torch.float64)], 1)[None], ANCHORS)
    torch.testing.assert_close(decoded[0], boxes, rtol=0, atol=1e-12)
    raw2 = torch.tensor(rng.normal(0, 20, size=(1, 896, 16)))
    torch.testing.assert_close(encode_boxes(decode_boxes(raw2, ANCHORS)[0], ANCHORS), raw2[..., :4], rtol=0, atol=1e-9)
    # by hand: anchor 0 is centred at (0.5/16, 0.5/16); a 16 px box centred 8 px right of it is (8, 0, 16, 16)
    c = 0.5 / 16
    box = torch.tensor([[c + 1 / 16 - 1 / 16, c - 1 / 16, c + 1 / 16 + 1 / 16, c + 1 / 16]], dtype=torch.float64)
    np.testing.assert_allclose(encode_boxes(box.expand(896, 4), ANCHORS)[0].numpy(), [8.0, 0.0, 16.0, 16.0])


def test_matching_uses_the_matchers_own_assignment_and_two_matchers_differ():
    det = load_blazeface_detector("none", seed=1)
    frames, boxes = _faces(3)
    targets = [{"boxes": b[None]} for b in boxes]
    anchors = torch.tensor(np.concatenate([ANCHORS.centers - ANCHORS.nominal_sizes / 2,
                                           ANCHORS.centers + ANCHORS.nominal_sizes / 2], 1) * 128, dtype=torch.float32)
    level = torch.tensor([0] * 512 + [1] * 384)
    positives = {}
    for name in ("iou_threshold", "atss"):
        matcher = make_matcher(name, "ssd")
        matches, _ = match_faces(det, list(frames), targets, matcher)
        gt = boxes * 128 / 96  # 96 px frames -> the 128 px input
        expected = torch.stack([matcher(box_iou(g[None], anchors), anchors, g[None], level) for g in gt])
        assert torch.equal(matches, expected)
        positives[name] = matches >= 0
    assert positives["iou_threshold"].any() and not torch.equal(positives["iou_threshold"], positives["atss"])


def test_loss_equals_the_formula_is_finite_and_decreases_on_a_tiny_batch():
    det = load_blazeface_detector("none", seed=2)
    frames, boxes = _faces(4)
    images, targets = list(frames), [{"boxes": b[None]} for b in boxes]
    matcher = make_matcher("iou_threshold", "ssd")
    det.train()
    losses = blazeface_losses(det, images, targets, matcher)
    total = sum(losses.values())
    total.backward()
    grads = [p.grad for p in det.net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(p.grad.abs().sum()) for p in det.net.head.parameters()) > 0
    # the formula, independently: focal loss by hand, smooth-L1 by hand, both per positive
    with torch.no_grad():
        raw, logits = det.net(det.transform(images)[0].tensors)
        matches, norm_boxes = match_faces(det, images, targets, matcher)
    p, y = torch.sigmoid(logits[..., 0]).double(), (matches >= 0).double()
    pt = p * y + (1 - p) * (1 - y)
    focal = -(0.25 * y + 0.75 * (1 - y)) * (1 - pt) ** 2 * torch.log(pt)
    n_pos = y.sum()
    pos = matches >= 0
    centre = (norm_boxes[:, 0, :2] + norm_boxes[:, 0, 2:]) / 2
    size = norm_boxes[:, 0, 2:] - norm_boxes[:, 0, :2]
    anchor_xy = torch.tensor(ANCHORS.centers, dtype=torch.float32)
    target = torch.cat([(centre[:, None] - anchor_xy) * 128, (size[:, None] * 128).expand(-1, 896, -1)], -1)
    d = (raw[..., :4] - target)[pos].abs().double()
    smooth = torch.where(d < 1, 0.5 * d**2, d - 0.5).sum()
    np.testing.assert_allclose(float(losses["score"]), float(focal.sum() / n_pos), rtol=1e-4)
    np.testing.assert_allclose(float(losses["box"]), float(smooth / n_pos), rtol=1e-4)
    det.eval()
    result = fine_tune(det, pool_sampler(frames, boxes), matcher, steps=25, batch_size=4, lr=3e-3, seed=0)
    assert np.isfinite(result.losses).all()
    assert np.mean(result.losses[-5:]) < 0.7 * np.mean(result.losses[:3])


def test_fine_tune_with_two_matchers_same_batches_different_positives():
    frames, boxes = _faces(6)
    seen: dict[str, list] = {}

    def recording(name):
        inner = make_matcher(name, "ssd")

        def matcher(iou, anchors, gt, level):
            out = inner(iou, anchors, gt, level)
            seen.setdefault(name, []).append((gt.clone(), out.clone()))
            return out
        matcher.name, matcher.interpretation = inner.name, inner.interpretation
        return matcher

    heads = {}
    for name in ("iou_threshold", "atss"):
        det = load_blazeface_detector("none", seed=0)
        det.net.backbone.requires_grad_(False)
        before = det.net.backbone.state_dict()
        before = {k: v.clone() for k, v in before.items()}
        result = fine_tune(det, pool_sampler(frames, boxes), recording(name), steps=3, batch_size=2, lr=1e-3, seed=5)
        assert result.attrs["matcher"] == name and len(result.losses) == 3
        assert all(torch.equal(before[k], v) for k, v in det.net.backbone.state_dict().items())  # heads only
        heads[name] = torch.cat([p.flatten() for p in det.net.head.parameters()])
    a, b = seen["iou_threshold"], seen["atss"]
    assert len(a) == len(b) == 6  # 3 steps x 2 frames
    assert all(torch.equal(x[0], y[0]) for x, y in zip(a, b, strict=True))  # the same frames in the same order
    # the loop trained on exactly the positives of the matchers' own assignment (recomputed here) ...
    anchors = load_blazeface_detector("none").anchor_generator.boxes
    level = torch.tensor([0] * 512 + [1] * 384)
    for name, records in seen.items():
        direct = make_matcher(name, "ssd")
        for gt, out in records:
            assert torch.equal(out, direct(box_iou(gt, anchors), anchors, gt, level))
    # ... and the two matchers' positives differ on some frame, and so do the trained heads
    assert any(not torch.equal(x[1] >= 0, y[1] >= 0) for x, y in zip(a, b, strict=True))
    assert not torch.equal(heads["iou_threshold"], heads["atss"])


def test_identity_folds_test_each_face_once_and_never_train_on_it():
    faces = [f"image_{k}" for k in range(13, 25)]
    folds = identity_folds(faces, 3)
    assert sorted(f for _, test in folds for f in test) == sorted(faces)
    for train, test in folds:
        assert not set(train) & set(test) and sorted(train + test) == sorted(faces)


@pytest.mark.parametrize("call,match", [
    (lambda: check_split(["a", "b"], ["b", "c"]), r"faces \['b'\] are in both"),
    (lambda: check_split(["a"], []), "at least one training and one test face"),
    (lambda: identity_folds(["a", "b", "c"], 2), "needs at least 2 folds and 4 faces"),
    (lambda: identity_folds(["a", "a", "b", "c"], 2), "face names repeat"),
    (lambda: pool_sampler(torch.zeros(1, 3, 8, 8), torch.zeros(1, 4)), "at least 2 frames"),
    (lambda: RemedyOptions(lr=0.0), "learning rate > 0"),
    (lambda: RemedyOptions(steps=0), "steps >= 1"),
    (lambda: replace(STUDY_CLIP, n_frames=2), "at least 3 frames"),
    (lambda: training_pool({"a": torch.rand(3, 8, 8)}, {}, STUDY_CLIP), "training face a has no face box"),
    (lambda: match_faces(load_blazeface_detector("none"), [torch.rand(3, 32, 32)],
                         [{"boxes": torch.zeros(0, 4)}], make_matcher("iou_threshold")), "has no face box"),
    (lambda: match_faces(load_blazeface_detector("none"), [torch.rand(3, 32, 32)],
                         [{"boxes": torch.tensor([[5.0, 5.0, 5.0, 9.0]])}], make_matcher("iou_threshold")),
     "x1 < x2"),
    (lambda: match_faces(load_blazeface_detector("none"), [torch.rand(3, 32, 32)],
                         [{"boxes": torch.tensor([[5.0, float("nan"), 9.0, 9.0]])}], make_matcher("iou_threshold")),
     "finite"),
])
def test_hostile_input_is_one_line(call, match):
    with pytest.raises(RSABridgeError, match=match) as err:
        call()
    assert "\n" not in str(err.value)


def test_cli_refuses_unknown_matcher_and_missing_weights_before_work(tmp_path, capsys):
    assert main(["--weights", str(tmp_path / "nope.tflite"), "--out", str(tmp_path / "o"), "--matchers", "foo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown matcher 'foo'" in err
    assert main(["--weights", str(tmp_path / "nope.tflite"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit) as ex:
        main(["--weights", "x", "--out", str(tmp_path / "o"), "--lr", "-1"])
    assert ex.value.code == 2


@pytest.mark.shared
def test_comparison_on_real_blazeface_counts_like_the_face_study():
    if not TFLITE.is_file():
        pytest.skip(f"{TFLITE} is absent (MediaPipe's BlazeFace lives only in ../shared/data)")
    pytest.importorskip("tflite", reason="tflite not installed (pip install 'rsa-bridge[blazeface]')")
    from analyses.missed_detections.clips import detected_face_box
    from analyses.missed_detections.face_study import face_clip_study, load_face_images

    images = load_face_images((13, 14, 15, 16))
    clip = replace(STUDY_CLIP, n_frames=10)
    options = RemedyOptions(steps=2, batch_size=4, lr=1e-4, seed=0, heads_only=True, clip=clip)
    ds = compare_face_remedies(str(TFLITE), images, ("iou_threshold", "atss"), options, 2)
    assert list(ds["model"].values) == ["baseline", "iou_threshold", "atss"]
    assert list(ds["test_faces"].values) == ["image_13,image_15", "image_14,image_16"]
    assert list(ds["train_faces"].values) == ["image_14,image_16", "image_13,image_15"]
    assert ds.attrs["steps"] == 2 and ds.attrs["trained"] == "heads only" and ds.attrs["seed"] == 0
    assert np.isnan(ds["final_loss"].sel(model="baseline")).all() and np.isfinite(ds["final_loss"][:, 1:]).all()
    assert (ds["present_frames"] == 20).all()
    # the baseline row is the face study of the un-fine-tuned detector on the fold's test faces
    det = load_blazeface_detector(str(TFLITE))
    test = {n: images[n] for n in ("image_14", "image_16")}
    study = face_clip_study(det, test, clip, boxes={n: detected_face_box(det, im) for n, im in test.items()})
    assert int(ds["momentary_misses"].sel(fold=1, model="baseline")) == int(study["momentary_miss"].sum())
    assert int(ds["missed_frames"].sel(fold=1, model="baseline")) == int(study["missed"].sum())
