"""The pipelined forward pass (extractors.feed): decode threads, channels-last, batch size from the memory budget.

References: the serial loop of the same code (0 decode threads, contiguous layout) for the activations and
RDMs; scipy's correlation distance for the RDM; a hand-worked batch size for the budget.
"""
from __future__ import annotations

import random
import threading
import time
import zlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.distance import pdist, squareform
from torch import nn

from extractors.extract import batch_bytes_per_stimulus, prepare_plan, run_plan
from extractors.feed import FeedOptions, auto_decode_workers, check_workers, prefetch_batches
from extractors.streaming import stream_rdms
from rsa_bridge import budget
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.options import RDMOptions
from stimuli import StimulusError


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 5, 3, stride=2),
                         nn.Flatten(), nn.Linear(5 * 3 * 3, 6)).eval()


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(11):
        path = tmp_path / f"img{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _activations(paths, feed: FeedOptions, batch_size=3, transform=_to_tensor, net=None):
    plan = prepare_plan(net or _net(), paths, ["0", "2", "4"], batch_size, "cpu", transform, False, None, feed)
    rows: dict[str, list[np.ndarray]] = {name: [] for name, _ in plan.layers}
    starts = []
    for start, _stop, batch in run_plan(plan):
        starts.append(start)
        for name, tensor in batch.items():
            rows[name].append(tensor.numpy().copy())
    return plan, starts, {name: np.concatenate(parts) for name, parts in rows.items()}


def test_threads_give_the_serial_bytes(folder):
    _, starts0, serial = _activations(folder, FeedOptions(decode_workers=0, channels_last=False))
    plan, starts2, threaded = _activations(folder, FeedOptions(decode_workers=2, channels_last=False))
    assert starts0 == starts2 == [0, 3, 6, 9]
    assert plan.workers == 2 and not plan.channels_last
    for name in serial:
        assert np.array_equal(serial[name], threaded[name])  # same function, same bytes


def test_channels_last_equals_contiguous_to_float_tolerance(folder):
    _, _, serial = _activations(folder, FeedOptions(decode_workers=0, channels_last=False))
    plan, _, fast = _activations(folder, FeedOptions(decode_workers=2))
    assert plan.channels_last and plan.feed_attrs()["memory_format"] == "channels_last"
    for name in serial:
        assert fast[name].flags.c_contiguous
        np.testing.assert_allclose(fast[name], serial[name], rtol=1e-5, atol=1e-6)
    reference = _net()(torch.stack([_to_tensor(Image.open(p).convert("RGB")) for p in folder])).detach().numpy()
    np.testing.assert_allclose(fast["4"], reference, rtol=1e-5, atol=1e-6)


def test_order_is_kept_with_shuffled_decode_times(folder):
    seen_threads = set()

    def slow(image):  # a decode time from the image's bytes: 0 to 20 ms, unrelated to its position
        seen_threads.add(threading.current_thread().name)
        time.sleep((zlib.crc32(image.tobytes()) % 5) * 0.005)
        return _to_tensor(image)

    _, _, serial = _activations(folder, FeedOptions(0, False), batch_size=1)
    _, starts, threaded = _activations(folder, FeedOptions(3, False), batch_size=1, transform=slow)
    assert starts == list(range(len(folder)))
    assert any(name.startswith("rsa-bridge-decode") for name in seen_threads)
    for name in serial:
        assert np.array_equal(serial[name], threaded[name])


def test_prefetch_keeps_order_and_stops_cleanly():
    data = torch.arange(20.0).reshape(20, 1)
    rng = random.Random(1)

    def load(a, b):
        time.sleep(rng.random() * 0.01)
        return data[a:b]

    got = list(prefetch_batches(load, 20, 3, 4))
    assert [(a, b) for a, b, _ in got] == [(s, min(s + 3, 20)) for s in range(0, 20, 3)]
    assert torch.equal(torch.cat([t for *_, t in got]), data)
    calls = []
    gen = prefetch_batches(lambda a, b: calls.append(a) or data[a:b], 20, 2, 2)
    next(gen)
    gen.close()  # the consumer stops: queued batches are dropped, the pool is shut down
    assert len(calls) <= 4 and threading.active_count() < 50


def test_stream_rdms_threads_equal_serial_and_scipy(folder):
    serial = stream_rdms(_net(), folder, ["2", "4"], RDMOptions(batch_size=4, decode_workers=0),
                         transform=_to_tensor, progress=False)
    threaded = stream_rdms(_net(), folder, ["2", "4"], RDMOptions(decode_workers=2), transform=_to_tensor,
                           progress=False)
    np.testing.assert_allclose(threaded.values, serial.values, atol=1e-6)
    assert list(threaded["stimulus_row"].values) == [p.stem for p in folder]
    x = torch.stack([_to_tensor(Image.open(p).convert("RGB")) for p in folder])
    reference = squareform(pdist(_net()(x).detach().numpy().astype(np.float64), "correlation"))
    np.testing.assert_allclose(threaded.sel(layer="4").values, reference, atol=1e-5)
    attrs = threaded.attrs
    assert attrs["forward_decode_workers"] == 2 and attrs["forward_memory_format"] == "channels_last"
    assert attrs["forward_batch_size_from"].startswith("memory budget") and attrs["forward_batch_size"] == 11
    assert serial.attrs["forward_batch_size"] == 4 and serial.attrs["forward_batch_size_from"] == "given"


def test_a_corrupt_image_in_a_worker_is_the_serial_one_line_error(folder):
    folder[7].write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    messages = []
    for workers in (0, 2):
        with pytest.raises(StimulusError) as err:
            stream_rdms(_net(), folder, ["2"], RDMOptions(batch_size=2, decode_workers=workers),
                        transform=_to_tensor, progress=False)
        assert isinstance(err.value, RSABridgeError) and "\n" not in str(err.value)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "img07.png" in messages[0]


def test_batch_size_from_a_tiny_budget(folder, monkeypatch):
    net = _net()
    first = _to_tensor(Image.open(folder[0]).convert("RGB"))[None]
    # hand-worked: 3*10*10 inputs, units 4*8*8 + 5*3*3 + 6 = 307 captured -> 4*300 + 12*307 = 4884 bytes
    assert batch_bytes_per_stimulus(first, [torch.zeros(1, 4, 8, 8), torch.zeros(1, 45), torch.zeros(1, 6)]) == 4884
    monkeypatch.setattr("psutil.virtual_memory", lambda: SimpleNamespace(available=4884 * 40))
    plan = prepare_plan(net, folder, ["0", "2", "4"], None, "cpu", _to_tensor, False, None)
    assert plan.batch_size == 4  # 10% of 40 images' bytes
    assert not plan.batch_size_given
    monkeypatch.setattr("psutil.virtual_memory", lambda: SimpleNamespace(available=5000))
    assert prepare_plan(net, folder, ["4"], None, "cpu", _to_tensor, False, None).batch_size == 1
    monkeypatch.setattr("psutil.virtual_memory", lambda: SimpleNamespace(available=1000))
    with pytest.raises(RSABridgeError, match="one image's activations need"):
        prepare_plan(net, folder, ["0"], None, "cpu", _to_tensor, False, None)


def test_auto_batch_size_bounds():
    assert budget.auto_batch_size(1e3, 640, available=1e12) == budget.MAX_AUTO_BATCH
    assert budget.auto_batch_size(1e3, 5, available=1e12) == 5
    assert budget.auto_batch_size(1e6, 640, available=2.5e7) == 2
    assert budget.auto_batch_size(1e6, 640, available=1e6) == 1


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_bad_worker_counts_are_refused(bad):
    with pytest.raises(RSABridgeError, match="whole number"):
        FeedOptions(decode_workers=bad)
    with pytest.raises(RSABridgeError):
        RDMOptions(decode_workers=bad)
    with pytest.raises(RSABridgeError):
        check_workers(bad)


def test_bad_options_are_refused_before_any_decode(folder):
    with pytest.raises(RSABridgeError, match="channels_last"):
        FeedOptions(channels_last="yes")
    with pytest.raises(RSABridgeError, match="batch size"):
        prepare_plan(_net(), folder, ["0"], 0, "cpu", _to_tensor, False, None)
    assert auto_decode_workers(1) == 1 and auto_decode_workers(6) == 3


def test_a_tensor_and_a_non_image_model_skip_channels_last():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).eval()
    x = torch.randn(5, 12, generator=torch.Generator().manual_seed(0))
    plan = prepare_plan(net, x, ["1"], 2, "cpu", None, False, None, FeedOptions(decode_workers=2))
    assert not plan.channels_last
    out = torch.cat([b["1"] for *_, b in run_plan(plan)])
    assert torch.allclose(out, net(x), atol=1e-6)


@pytest.mark.parametrize("value", ["-1", "1.5", "many"])
def test_cli_refuses_bad_decode_workers_in_one_line(value, capsys):
    from rsa_bridge.app.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["compare", "--model", "alexnet", "--area", "V4", "--decode-workers", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "--decode-workers" in err[0]
