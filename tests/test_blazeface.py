"""BlazeFace in PyTorch (extractors.sources.blazeface*) against the LiteRT interpreter, hand-worked anchors and
decoding, and the refusals of the weights file.

The .tflite file is read from ../shared/data/mediapipe_face_detection (never shipped); those tests skip when it,
tflite or ai-edge-litert is absent.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import expit

from extractors.sources.blazeface_anchors import (
    SHORT_RANGE_ANCHORS,
    decode_boxes,
    scores_from_logits,
    ssd_anchors,
)
from extractors.sources.blazeface_net import (
    SHORT_RANGE,
    BlazeBlock,
    BlazeFace,
    same_padding,
)
from rsa_bridge.errors import RSABridgeError
from tests.conftest import SHARED

TFLITE = SHARED / "mediapipe_face_detection" / "face_detection_short_range.tflite"
IMAGES = Path(__file__).resolve().parents[1] / "rsa_bridge" / "data" / "kriegeskorte2008_92images" / "stimuli"


@pytest.fixture(scope="module")
def tflite_file() -> Path:
    if not TFLITE.is_file():
        pytest.skip(f"{TFLITE} is absent (MediaPipe's BlazeFace lives only in ../shared/data)")
    pytest.importorskip("tflite", reason="tflite not installed (pip install 'rsa-bridge[blazeface]')")
    return TFLITE


@pytest.fixture(scope="module")
def net(tflite_file):
    from extractors import load_model

    return load_model("blazeface", str(tflite_file))


@pytest.fixture(scope="module")
def litert(tflite_file):
    interp = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert not installed (test extra)")
    it = interp.Interpreter(model_path=str(tflite_file))
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]
    outs = {o["name"]: o["index"] for o in it.get_output_details()}

    def run(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(B, 3, 128, 128) -> regressors (B, 896, 16), logits (B, 896, 1), one image at a time (batch 1 graph)."""
        reg, cls = [], []
        for b in range(x.shape[0]):
            it.set_tensor(inp, x[b:b + 1].permute(0, 2, 3, 1).numpy().copy())
            it.invoke()
            reg.append(it.get_tensor(outs["regressors"])[0].copy())
            cls.append(it.get_tensor(outs["classificators"])[0].copy())
        return np.stack(reg), np.stack(cls)
    return run


def _close(ours: torch.Tensor, ref: np.ndarray) -> None:
    # both run the same float16-stored weights in float32: differences are summation order only,
    # far inside float16's resolution (2^-11 relative)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-3, atol=1e-3 * max(1.0, float(np.abs(ref).max())))


@pytest.mark.shared
def test_graph_reads_as_short_range_blazeface(tflite_file):
    from extractors.sources.blazeface_net import config_and_state
    from extractors.sources.tflite_graph import read_graph

    graph = read_graph(tflite_file)
    assert graph.tensors[graph.inputs[0]].shape == (1, 128, 128, 3)
    assert sorted(graph.tensors[i].shape for i in graph.outputs) == [(1, 896, 1), (1, 896, 16)]
    assert {graph.tensors[op.inputs[0]].dtype for op in graph.operators if op.kind == "DEQUANTIZE"} == {np.float16}
    config, state = config_and_state(graph)
    assert config == SHORT_RANGE
    model = BlazeFace(config)
    model.load_state_dict(state, strict=True)
    n_params = sum(int(t.numel()) for t in state.values())
    assert n_params == sum(p.numel() for p in model.parameters())
    assert 90_000 < n_params < 120_000  # "about 100k parameters" (SOURCE.md)
    kernel = graph.by_name("conv2d/Kernel")  # stem (O, kH, kW, I) float16 -> torch (O, I, kH, kW)
    raw = graph.constant(kernel.index)
    assert raw.shape == (24, 5, 5, 3)
    np.testing.assert_array_equal(state["backbone.stem.0.weight"].numpy(), raw.transpose(0, 3, 1, 2))


@pytest.mark.shared
def test_matches_litert_on_random_inputs(net, litert):
    x = torch.from_numpy(np.random.default_rng(3).uniform(-1, 1, (4, 3, 128, 128)).astype(np.float32))
    ref_reg, ref_cls = litert(x)
    with torch.no_grad():
        reg, cls = net(x)
    assert reg.shape == (4, 896, 16) and cls.shape == (4, 896, 1)
    _close(reg, ref_reg)
    _close(cls, ref_cls)


def _images(net, numbers):
    from PIL import Image

    return torch.stack([net.rsa_bridge_info.transform(Image.open(IMAGES / f"image_{k:02d}.png").convert("RGB"))
                        for k in numbers])


@pytest.mark.shared
def test_matches_litert_on_the_92_images_and_detects_the_human_faces(net, litert):
    x = _images(net, range(1, 93))
    assert x.shape == (92, 3, 128, 128) and float(x.min()) >= -1 and float(x.max()) <= 1
    ref_reg, ref_cls = litert(x)
    with torch.no_grad():
        reg, cls = net(x)
    _close(reg, ref_reg)
    _close(cls, ref_cls)
    ours = scores_from_logits(cls[..., 0]).amax(1).numpy()
    ref = expit(np.clip(ref_cls[..., 0], -100, 100)).max(1)  # scipy's sigmoid of LiteRT's logits
    np.testing.assert_array_equal(ours >= 0.5, ref >= 0.5)  # the same images count as detected
    detected = set((np.flatnonzero(ours >= 0.5) + 1).tolist())
    assert set(range(13, 25)) <= detected  # every human face (images 13-24, SOURCE.md)
    assert len(detected) < 46  # most non-face images stay below 0.5


def test_anchor_count_layout_and_scales_by_hand():
    a = ssd_anchors(SHORT_RANGE_ANCHORS)
    assert a.centers.shape == (896, 2) and a.grid_sizes == ((16, 16), (8, 8)) and a.per_cell == (2, 6)
    np.testing.assert_allclose(a.centers[:3], [[0.5 / 16, 0.5 / 16]] * 2 + [[1.5 / 16, 0.5 / 16]])
    np.testing.assert_allclose(a.centers[2 * 16], [0.5 / 16, 1.5 / 16])  # cell (y=1, x=0) of the 16 x 16 grid
    np.testing.assert_allclose(a.centers[512:519], [[0.5 / 8, 0.5 / 8]] * 6 + [[1.5 / 8, 0.5 / 8]])
    np.testing.assert_allclose(a.centers[-1], [7.5 / 8, 7.5 / 8])
    s = [0.1484375 + (0.75 - 0.1484375) * i / 3 for i in range(4)] + [1.0]
    per_cell0 = [s[0], math.sqrt(s[0] * s[1])]
    per_cell1 = [s[1], math.sqrt(s[1] * s[2]), s[2], math.sqrt(s[2] * s[3]), s[3], math.sqrt(s[3] * s[4])]
    np.testing.assert_allclose(a.nominal_sizes[:2, 0], per_cell0)
    np.testing.assert_allclose(a.nominal_sizes[512:518, 1], per_cell1)
    np.testing.assert_array_equal(a.decode_sizes, 1.0)  # fixed anchor size
    boxes = a.nominal_boxes(128).numpy()
    np.testing.assert_allclose(boxes[0], [4 - 9.5, 4 - 9.5, 4 + 9.5, 4 + 9.5])  # 0.1484375 * 128 = 19 px


def test_anchor_order_matches_the_analysis_layout_and_the_head_flattening():
    from analyses.missed_detections.hooks import anchor_layout

    a = ssd_anchors()
    lay = anchor_layout(a.grid_sizes, a.per_cell)
    j = lay.index(1, 3, 5, 4)
    np.testing.assert_allclose(a.centers[j], [5.5 / 8, 3.5 / 8])
    # the head's flattening puts channel a of cell (y, x) at index offset + (y * W + x) * A + a
    head = BlazeFace(SHORT_RANGE).head.classification_head
    feats = [torch.zeros(1, 88, 16, 16), torch.zeros(1, 96, 8, 8)]
    with torch.no_grad():
        for conv in head.convs:
            conv.weight.zero_()
            conv.bias.copy_(torch.arange(conv.bias.numel(), dtype=torch.float32))
        out = head(feats)[0, :, 0].numpy()
    np.testing.assert_array_equal(out, lay.aspect)


def test_decoding_by_hand():
    a = ssd_anchors()
    raw = torch.zeros(1, 896, 16)
    raw[0, 0, :4] = torch.tensor([16.0, -8.0, 32.0, 64.0])
    raw[0, 0, 4:6] = torch.tensor([12.8, 0.0])
    boxes, kp = decode_boxes(raw, a, 128.0)
    cx, cy = 0.5 / 16 + 0.125, 0.5 / 16 - 0.0625
    np.testing.assert_allclose(boxes[0, 0].numpy(), [cx - 0.125, cy - 0.25, cx + 0.125, cy + 0.25], atol=1e-7)
    np.testing.assert_allclose(kp[0, 0, 0].numpy(), [0.5 / 16 + 0.1, 0.5 / 16], atol=1e-7)
    assert kp.shape == (1, 896, 6, 2)
    np.testing.assert_allclose(scores_from_logits(torch.tensor([0.0, 200.0, -200.0, 3.0])).numpy(),
                               [0.5, 1 / (1 + math.exp(-100)), 1 / (1 + math.exp(100)), 1 / (1 + math.exp(-3))],
                               rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("size,kernel,stride,expected", [(64, 3, 2, (0, 1)), (128, 5, 2, (1, 2)), (16, 3, 1, (1, 1)),
                                                         (7, 3, 2, (1, 1)), (8, 2, 2, (0, 0)), (1, 1, 1, (0, 0))])
def test_same_padding_is_tensorflows(size, kernel, stride, expected):
    # TF: out = ceil(n / s); total = max((out - 1) s + k - n, 0); before = total // 2
    assert same_padding(size, kernel, stride) == expected


def test_blaze_block_residual_pads_channels_and_pools():
    block = BlazeBlock(4, 6, 2)
    with torch.no_grad():
        for p in block.parameters():
            p.zero_()
    x = torch.arange(2 * 4 * 4 * 4, dtype=torch.float32).reshape(2, 4, 4, 4)
    with torch.no_grad():
        y = block(x)
    assert y.shape == (2, 6, 2, 2)
    np.testing.assert_array_equal(y[:, :4].numpy(), torch.nn.functional.max_pool2d(x, 2).numpy())
    np.testing.assert_array_equal(y[:, 4:].numpy(), 0.0)
    with pytest.raises(ValueError):
        BlazeBlock(8, 4)


@pytest.mark.shared
def test_refuses_another_file_missing_file_and_unset_default(tflite_file, tmp_path, monkeypatch):
    from extractors import load_model
    from extractors.sources.blazeface import ENV

    other = tmp_path / "face_detection_short_range.tflite"
    data = bytearray(tflite_file.read_bytes())
    data[-1] ^= 1
    other.write_bytes(bytes(data))
    with pytest.raises(RSABridgeError, match="SHA-256"):
        load_model("blazeface", str(other))
    with pytest.raises(RSABridgeError, match="does not exist"):
        load_model("blazeface", str(tmp_path / "nothing.tflite"))
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(RSABridgeError, match=ENV):
        load_model("blazeface", "default")
    monkeypatch.setenv(ENV, str(tmp_path / "empty"))
    with pytest.raises(RSABridgeError, match="names no file"):
        load_model("blazeface", "default")
    folder = tmp_path / "weights"
    folder.mkdir()
    shutil.copy(tflite_file, folder / tflite_file.name)
    monkeypatch.setenv(ENV, str(folder))
    model = load_model("mediapipe:blazeface", "default")
    assert model.rsa_bridge_info.weights_sha256.startswith("bbff11cebd1e")
    assert model.rsa_bridge_info.source == "mediapipe"


def test_not_a_tflite_file_is_one_line(tmp_path):
    pytest.importorskip("tflite", reason="tflite not installed")
    from extractors.sources.tflite_graph import read_graph

    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(RSABridgeError, match="not a TensorFlow Lite file"):
        read_graph(bad)


def test_layers_and_hooks_read_the_blocks_like_any_network():
    from extractors import build_skeleton, load_model, run_recorded

    skeleton = build_skeleton("blazeface")
    info = skeleton.rsa_bridge_info
    assert list(info.aliases) == [f"block{i}" for i in range(1, 17)]
    assert info.aliases["block11"] == "backbone.blocks.10"
    model = load_model("blazeface", "none", seed=1)
    assert model.rsa_bridge_info.weights == "none" and model.rsa_bridge_info.seed == 1
    out = run_recorded(model, torch.zeros(2, 3, 128, 128), ["block11", "block16"])
    assert out["block11"].shape == (2, 88, 16, 16) and out["block16"].shape == (2, 96, 8, 8)
    a, b = load_model("blazeface", "none", seed=1), load_model("blazeface", "none", seed=2)
    assert not torch.equal(a.backbone.stem[0].weight, b.backbone.stem[0].weight)


def test_unknown_weights_text_is_one_line():
    from extractors import load_model

    with pytest.raises(RSABridgeError, match="neither default, none"):
        load_model("blazeface", "/no/such/state.pt")


def test_bare_name_routes_to_its_source_and_never_shadows_torchvision():
    from extractors.models import _source_spec
    from extractors.sources import bare_spec

    assert _source_spec("blazeface") == "mediapipe:blazeface" == bare_spec("blazeface")
    assert _source_spec("alexnet") is None and _source_spec("timm:resnet18") == "timm:resnet18"
    assert bare_spec("not_a_model") is None
    from extractors import load_model

    with pytest.raises(RSABridgeError, match="unknown model 'blazefac'"):
        load_model("blazefac", "none")
    with pytest.raises(RSABridgeError, match="unknown BlazeFace model"):
        load_model("mediapipe:facemesh", "none")


def test_layers_command_lists_the_blocks_at_128_px(capsys):
    from rsa_bridge.app.cli import main

    assert main(["layers", "--model", "blazeface"]) == 0
    out = capsys.readouterr().out
    assert "128x128" in out and "backbone.blocks.15" in out and "96x8x8" in out and "88x16x16" in out
