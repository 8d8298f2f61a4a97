"""BlazeFace in the missed-detection analysis: the detector wrapper (decoding, NMS, hooks), the seeded face
clips, the face study's layer changes and the CLI end to end (the real weights from ../shared/data)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from analyses.missed_detections.blazeface import (
    BlazeFaceDetector,
    load_blazeface_detector,
)
from analyses.missed_detections.clips import ClipOptions, make_clip, write_clip
from rsa_bridge.errors import RSABridgeError
from tests.conftest import SHARED

TFLITE = SHARED / "mediapipe_face_detection" / "face_detection_short_range.tflite"


@pytest.fixture(scope="module")
def real_detector():
    if not TFLITE.is_file():
        pytest.skip(f"{TFLITE} is absent (MediaPipe's BlazeFace lives only in ../shared/data)")
    pytest.importorskip("tflite", reason="tflite not installed (pip install 'rsa-bridge[blazeface]')")
    return load_blazeface_detector(str(TFLITE))


class _Planted(nn.Module):
    """Stands in for the network: fixed regressors and logits (B, 896, 16), (B, 896, 1)."""

    def __init__(self, raw: torch.Tensor, logits: torch.Tensor) -> None:
        super().__init__()
        self.raw, self.logits = raw, logits

    def forward(self, x):
        return self.raw.expand(x.shape[0], -1, -1), self.logits.expand(x.shape[0], -1, -1)


def test_detector_decodes_planted_anchors_into_original_pixels_and_suppresses_overlaps():
    raw, logits = torch.zeros(1, 896, 16), torch.full((1, 896, 1), -10.0)
    # anchor 600 = level 1, cell 88 // 6 = 14 -> (y 1, x 6), slot 0; centre (6.5/8, 1.5/8)
    raw[0, 600, :4] = torch.tensor([0.0, 0.0, 32.0, 16.0])       # w = 0.25, h = 0.125 of the input
    raw[0, 600, 4:6] = torch.tensor([12.8, -6.4])                # keypoint 0 at centre + (0.1, -0.05)
    logits[0, 600, 0] = 3.0
    raw[0, 601, :4] = torch.tensor([1.0, 0.0, 32.0, 16.0])       # same cell, almost the same box, lower score
    logits[0, 601, 0] = 2.0
    det = BlazeFaceDetector(_Planted(raw, logits)).eval()
    out = det([torch.rand(3, 100, 200)])[0]                     # H = 100, W = 200
    assert out["boxes"].shape == (1, 4)  # hard NMS at IoU 0.3 keeps the higher-scoring one only
    cx, cy = 6.5 / 8 * 200, 1.5 / 8 * 100
    np.testing.assert_allclose(out["boxes"][0].numpy(), [cx - 25, cy - 6.25, cx + 25, cy + 6.25], rtol=1e-6)
    np.testing.assert_allclose(out["scores"].numpy(), [1 / (1 + np.exp(-3.0))], rtol=1e-6)
    np.testing.assert_allclose(out["keypoints"][0, 0].numpy(), [cx + 20, cy - 5], rtol=1e-6)
    assert out["labels"].tolist() == [0]


def test_run_detector_reads_blazeface_like_an_ssd():
    from analyses.missed_detections.hooks import (
        BLAZEFACE_SPEC,
        detector_spec,
        run_detector,
    )

    det = load_blazeface_detector("none", seed=3)
    assert detector_spec(det) is BLAZEFACE_SPEC
    images = [torch.rand(3, 90, 120), torch.rand(3, 90, 120)]
    p = run_detector(det, images)
    assert p.anchors.shape == (2, 896, 4) and p.logits.shape == (2, 896, 1)
    assert p.layout.grid_sizes == ((16, 16), (8, 8)) and p.layout.per_location == (2, 6)
    assert [tuple(f.shape[1:]) for f in p.features] == [(88, 16, 16), (96, 8, 8)]
    assert p.resized_sizes == [(128, 128)] * 2 and p.original_sizes == [(90, 120)] * 2
    with torch.no_grad():
        _, logits = det.net(det.transform(images)[0].tensors)
    torch.testing.assert_close(p.logits, logits)
    np.testing.assert_allclose(p.scores.numpy(), 1 / (1 + np.exp(-logits.numpy())), rtol=1e-5)
    # the anchor box of index j is centred on its cell: level 1, y 1, x 6 -> (6.5 * 16, 1.5 * 16) px
    box = p.anchors[0, p.layout.index(1, 1, 6, 0)]
    np.testing.assert_allclose(((box[:2] + box[2:]) / 2).numpy(), [104.0, 24.0])


def _square_image() -> tuple[torch.Tensor, tuple[float, ...]]:
    image = torch.zeros(3, 40, 60)
    image[:, 10:30, 20:44] = 1.0
    return image, (20.0, 10.0, 44.0, 30.0)


def test_clip_boxes_follow_the_pasted_face():
    image, box = _square_image()
    opts = ClipOptions(n_frames=5, frame_size=96, face_size=(0.8, 0.4), center_x=(0.3, 0.7), center_y=(0.4, 0.6))
    clip = make_clip(image, box, opts)
    assert clip.frames.shape == (5, 3, 96, 96) and list(clip.boxes["label"]) == [0] * 5
    for t in range(5):
        bright = clip.frames[t].mean(0) > 0.9   # the background texture stays below 0.85
        ys, xs = np.nonzero(bright.numpy())
        row = clip.boxes.iloc[t]
        # the bright square is centred on the mapped box and spans it (edges soften by the antialiased resize)
        np.testing.assert_allclose([xs.mean() + 0.5, ys.mean() + 0.5], [(row.x1 + row.x2) / 2, (row.y1 + row.y2) / 2],
                                   atol=0.6)
        assert abs(xs.min() - row.x1) < 1.6 and abs(xs.max() + 1 - row.x2) < 1.6
        assert abs(ys.min() - row.y1) < 1.6 and abs(ys.max() + 1 - row.y2) < 1.6
    widths = (clip.boxes.x2 - clip.boxes.x1).to_numpy()
    np.testing.assert_allclose(widths, 24 * np.linspace(0.8, 0.4, 5) * 96 / 60)  # side / max(H, W) scaling


def test_clip_is_seeded_and_blur_occlusion_contrast_act_frame_by_frame():
    image, box = _square_image()
    base = ClipOptions(n_frames=3, frame_size=64, face_size=(0.8, 0.8), center_x=(0.5, 0.5))
    a, b = make_clip(image, box, base), make_clip(image, box, base)
    torch.testing.assert_close(a.frames, b.frames)
    assert not torch.equal(a.frames, make_clip(image, box, ClipOptions(**{**base.__dict__, "seed": 1})).frames)
    blurred = make_clip(image, box, ClipOptions(**{**base.__dict__, "blur": (0.0, 2.0)}))
    torch.testing.assert_close(blurred.frames[0], a.frames[0])
    assert float((blurred.frames[2] - a.frames[2]).abs().max()) > 0.2
    occluded = make_clip(image, box, ClipOptions(**{**base.__dict__, "occlusion": (0.0, 0.5)}))
    row = occluded.boxes.iloc[2]
    mid_y, x_in = int((row.y1 + row.y2) / 2), int(row.x1) + 2
    assert torch.allclose(occluded.frames[2][:, mid_y, x_in], torch.full((3,), 0.5))
    assert float(occluded.frames[2][:, mid_y, int(row.x2) - 2].min()) > 0.9  # right half still visible
    low = make_clip(image, box, ClipOptions(**{**base.__dict__, "contrast": (1.0, 0.5)}))
    f0, f2 = a.frames[2], low.frames[2]
    np.testing.assert_allclose(float((f2 - f2.mean()).std()), 0.5 * float((f0 - f0.mean()).std()), rtol=1e-4)


@pytest.mark.parametrize("image,box,opts,match", [
    (torch.zeros(3, 10, 10), (0, 0, 20, 5), {}, "not inside"),
    (torch.zeros(3, 10, 10), (5, 5, 5, 8), {}, "not inside"),
    (torch.full((3, 10, 10), float("nan")), (0, 0, 5, 5), {}, "finite"),
    (torch.zeros(10, 10), (0, 0, 5, 5), {}, "finite"),
    (torch.zeros(3, 10, 10), (0, 0, 5, 5), {"n_frames": 2}, "at least 3 frames"),
    (torch.zeros(3, 10, 10), (0, 0, 5, 5), {"occlusion": (0.0, 1.5)}, "occlusion"),
    (torch.zeros(3, 10, 10), (0, 0, 5, 5), {"blur": (float("nan"), 1.0)}, "blur"),
    (torch.zeros(3, 10, 10), (0, 0, 5, 5), {"jitter": -1.0}, "jitter"),
])
def test_clip_refuses_bad_input(image, box, opts, match):
    with pytest.raises(RSABridgeError, match=match):
        make_clip(image, box, ClipOptions(**opts))


def test_layer_changes_vanish_on_a_straight_path_and_measure_a_jump():
    from analyses.missed_detections.face_study import layer_changes

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 2, 1))  # linear: straight in, straight out
    start, step = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    frames = start + torch.arange(6.0)[:, None, None, None] * step
    frames[4] = frames[4] + 1.0
    table = layer_changes(net, frames, [4], [2], ["0", "1"])
    control = table[table.kind == "control"].set_index("layer")["change"]
    assert control.max() < 1e-5
    with torch.no_grad():  # hand: || a4 - (a3 + a5) / 2 || / || a4 || for the first layer
        a = net[0](frames)
    expected = float((a[4] - (a[3] + a[5]) / 2).norm() / a[4].norm())
    miss = table[(table.kind == "miss") & (table.layer == "0")]["change"].item()
    np.testing.assert_allclose(miss, expected, rtol=1e-5)
    with pytest.raises(RSABridgeError, match="neighbour"):
        layer_changes(net, frames, [5], [], ["0"])


def test_study_clip_of_a_real_face_and_detected_box(real_detector):
    from analyses.missed_detections.face_study import face_clip_study, load_face_images

    images = load_face_images([16])
    ds = face_clip_study(real_detector, images, ClipOptions(n_frames=6, frame_size=128, face_size=(0.9, 0.9),
                                                            center_x=(0.45, 0.55)))
    assert ds.sizes["frame"] == 6 and list(ds["object"].values) == ["image_16"]
    assert bool(ds["detected"].all())  # a large face in every frame is found
    assert len(ds.attrs["face_box_image_16"]) == 4 and ds.attrs["clip_n_frames"] == 6


def test_cli_end_to_end_on_a_face_clip(real_detector, tmp_path, capsys):
    from analyses.missed_detections.clips import STUDY_CLIP, detected_face_box
    from analyses.missed_detections.face_study import load_face_images
    from rsa_bridge.app.cli import main

    image = load_face_images([16])["image_16"]
    opts = ClipOptions(**{**STUDY_CLIP.__dict__, "n_frames": 10, "face_size": (0.6, 0.15)})
    write_clip(make_clip(image, detected_face_box(real_detector, image), opts), tmp_path / "clip")
    boxes = pd.read_csv(tmp_path / "clip" / "boxes.csv")
    assert set(boxes["label"]) == {"face"} and len(boxes) == 10
    out = tmp_path / "out"
    code = main(["missed-detections", "--detector", "blazeface", "--weights", str(TFLITE), "--video",
                 str(tmp_path / "clip"), "--boxes", str(tmp_path / "clip" / "boxes.csv"), "--out", str(out),
                 "--shuffles", "20", "--miss-views", "1"])
    assert code == 0
    import xarray as xr

    with xr.open_dataset(out / "missed_detections.nc", engine="h5netcdf") as ds:
        assert ds.attrs["detector"] == "blazeface" and ds.attrs["family"] == "blazeface"
        assert ds.attrs["weights_sha256"].startswith("bbff11cebd1e")
        assert bool(ds["detected"][0].all())  # the face at 60 % of the frame is found
        assert not bool(ds["detected"][-1].any())  # at 15 % (about 12 px in the 128 px input) it is not
        n_momentary = int(ds["momentary_miss"].sum())
    assert f"{n_momentary} momentary" in capsys.readouterr().out


def test_cli_refuses_a_missing_tflite_before_writing(tmp_path, capsys):
    from rsa_bridge.app.cli import main

    image, box = _square_image()
    write_clip(make_clip(image, box, ClipOptions(n_frames=3, frame_size=32)), tmp_path / "clip")
    code = main(["missed-detections", "--detector", "blazeface", "--weights", str(tmp_path / "no.tflite"),
                 "--video", str(tmp_path / "clip"), "--boxes", str(tmp_path / "clip" / "boxes.csv"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_matcher_positives_by_hand():
    import xarray as xr

    from analyses.missed_detections.face_study import matcher_positives

    det = load_blazeface_detector("none")
    # frame 0: exactly anchor 0 (19 px square at (4, 4)); its concentric 29 px slot has IoU 19^2 / 29^2 = 0.43
    # and the next cell's 19 px anchor 11 * 19 / (2 * 361 - 209) = 0.41: SSD's rule makes one anchor positive
    gt = np.full((2, 1, 4), np.nan)
    gt[0, 0] = [4 - 9.5, 4 - 9.5, 4 + 9.5, 4 + 9.5]
    ds = xr.Dataset({"present": (("frame", "object"), np.array([[True], [False]])),
                     "gt_box": (("frame", "object", "coord"), gt)},
                    coords={"frame": [0, 1], "object": ["face"], "coord": ["x1", "y1", "x2", "y2"]},
                    attrs={"clip_frame_size": 128})
    pos = matcher_positives(det, ds, ["iou_threshold", "topk"])
    assert pos.sel(matcher="iou_threshold", frame=0, object="face").item() == 1
    assert pos.sel(matcher="topk", frame=0, object="face").item() >= 2  # top-k adds the next-best anchor(s)
    assert (pos.sel(frame=1) == -1).all()


def test_miss_view_reads_blazeface_score_maps():
    from analyses.missed_detections.attribution import miss_view
    from analyses.missed_detections.frames import analyse_frames

    det = load_blazeface_detector("none", seed=0)
    image, box = _square_image()
    clip = make_clip(image, box, ClipOptions(n_frames=3, frame_size=64))
    ds = analyse_frames(det, list(clip.frames), clip.boxes)
    view = miss_view(det, list(clip.frames), ds, 1, "face")
    assert [lv["score"].shape[1:] for lv in view.levels] == [(2, 16, 16), (6, 8, 8)]


def test_clip_script_writes_frames_and_refuses_bad_input(tmp_path, capsys):
    from PIL import Image

    from analyses.missed_detections.clips import main

    image, _ = _square_image()
    png = tmp_path / "face.png"
    Image.fromarray((image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(png)
    assert main(["--image", str(png), "--out", str(tmp_path / "a"), "--box", "1,2,3"]) == 2
    assert "four numbers" in capsys.readouterr().err
    assert main(["--image", str(png), "--out", str(tmp_path / "b"), "--box", "0,0,99,20"]) == 2
    assert "not inside" in capsys.readouterr().err
    assert main(["--image", str(png), "--out", str(tmp_path / "c"), "--box", "20,10,44,30", "--frames", "4",
                 "--preset", "still"]) == 0
    assert len(list((tmp_path / "c").glob("frame_*.png"))) == 4
    table = pd.read_csv(tmp_path / "c" / "boxes.csv")
    assert list(table["frame"]) == [0, 1, 2, 3] and set(table["label"]) == {"face"}
    assert main(["--image", str(png), "--out", str(tmp_path / "c"), "--box", "20,10,44,30"]) == 2  # not empty
    assert "not empty" in capsys.readouterr().err


def test_face_study_refuses_bad_input():
    from analyses.missed_detections.face_study import face_clip_study, load_face_images

    with pytest.raises(RSABridgeError, match="1..92"):
        load_face_images([0])
    with pytest.raises(RSABridgeError, match="at least one image"):
        face_clip_study(load_blazeface_detector("none"), {})


def test_detected_face_box_refuses_an_image_without_a_face():
    from analyses.missed_detections.clips import detected_face_box

    raw, logits = torch.zeros(1, 896, 16), torch.full((1, 896, 1), -10.0)
    with pytest.raises(RSABridgeError, match="no face"):
        detected_face_box(BlazeFaceDetector(_Planted(raw, logits)).eval(), torch.rand(3, 50, 50))


def test_missing_tflite_package_is_one_line(monkeypatch, tmp_path):
    import sys

    from extractors.sources.tflite_graph import read_graph

    monkeypatch.setitem(sys.modules, "tflite", None)  # import tflite -> ImportError
    with pytest.raises(RSABridgeError, match=r"rsa-bridge\[blazeface\]"):
        read_graph(tmp_path / "x.tflite")
    from extractors import build_skeleton

    assert len(build_skeleton("blazeface").rsa_bridge_info.aliases) == 16  # listing layers needs no tflite


def test_weighted_nms_by_hand_and_hard_nms_keeps_the_top_box():
    from analyses.missed_detections.blazeface import hard_nms, weighted_nms

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 0.0, 11.0, 10.0], [50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([0.6, 0.9, 0.7])
    kps = torch.arange(12, dtype=torch.float32).reshape(3, 2, 2)
    b, s, k = weighted_nms(boxes, scores, kps, 0.3)  # boxes 0 and 1: IoU 90 / 110 = 0.82 -> one group
    np.testing.assert_allclose(s.numpy(), [0.9, 0.7])
    np.testing.assert_allclose(b[0].numpy(), (0.9 * boxes[1] + 0.6 * boxes[0]).numpy() / 1.5, rtol=1e-6)
    np.testing.assert_allclose(k[0].numpy(), (0.9 * kps[1] + 0.6 * kps[0]).numpy() / 1.5, rtol=1e-6)
    np.testing.assert_allclose(b[1].numpy(), boxes[2].numpy())
    hb, _, _ = hard_nms(boxes, scores, kps, 0.3)
    np.testing.assert_allclose(hb.numpy(), boxes[[1, 2]].numpy())
    assert weighted_nms(boxes[:0], scores[:0], kps[:0], 0.3)[0].shape == (0, 4)
    with pytest.raises(RSABridgeError, match="unknown NMS"):
        load_blazeface_detector("none", nms="soft")
