"""The ``recompute`` Gram route (compare --scheduler --gram-tiles): workers re-run the forward pass per panel.

Checked against the serial out-of-core Gram of the same pass (stream_rdms without dask), on a LocalCluster of
2 process workers; the planner's choice on both sides of the break-even with given costs; the refusals.
"""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

from rsa_bridge.app.gram_routes import GramSetting, RouteCosts, plan_gram_route
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.options import RDMOptions
from tests.helpers import make_rdm_dataset, make_stimuli

# 29 stimuli x 13 units, panels 8, 8, 8, 5: 10 tiles read 6032 bytes, recompute runs 116 image forwards
SETTING = GramSetting(workers=2, shared_storage=True, panel_budget=3 * 4 * 13 * 8)


@pytest.mark.parametrize("per_image, rate, route", [
    (1e-3, 6032 / 0.115, "tiles"),       # 116 x 1 ms = 0.116 s of forwards > 0.115 s of reads
    (1e-3, 6032 / 0.117, "recompute"),   # 0.116 s < 0.117 s
    (1e-6, 1e12, "tiles"),               # fast storage: 6 ns of reads
])
def test_planner_break_even(per_image, rate, route):
    got = plan_gram_route(29, 13, SETTING, costs=RouteCosts(per_image, rate, "given"))
    assert got.route == route and got.recompute_images == 116 and got.tile_read_bytes == 6032
    assert got.forward_s == pytest.approx(116 * per_image) and got.read_s == pytest.approx(6032 / rate)
    assert f"116 x {per_image * 1e3:.3g} ms = {116 * per_image:.3g} s of forwards vs 6032 bytes" in got.reason
    assert ("cheaper: " if route == "recompute" else "reading is cheaper: ") in got.reason


def test_planner_recompute_blocked_or_forced():
    blocked = plan_gram_route(29, 13, SETTING, costs=RouteCosts(1e-9, 1.0, "given", blocked="the layer is sketched"))
    assert blocked.route == "tiles" and "recompute cannot run: the layer is sketched" in blocked.reason
    unknown = plan_gram_route(29, 13, SETTING, costs=RouteCosts(None, 1.0))
    assert unknown.route == "tiles" and "forward time or read rate unknown" in unknown.reason
    forced = GramSetting(2, True, SETTING.panel_budget, route="recompute")
    assert plan_gram_route(29, 13, forced).route == "recompute"
    assert plan_gram_route(29, 13, GramSetting(2, True, 1e9, route="recompute"), in_memory=True).route == "driver"
    tiles = GramSetting(2, True, SETTING.panel_budget, route="tiles")
    assert plan_gram_route(29, 13, tiles, costs=RouteCosts(1e-9, 1.0, "given")).route == "tiles"
    with pytest.raises(RSABridgeError, match="--gram-route is one of auto, tiles, recompute"):
        GramSetting(2, True, 1e9, route="gpu")
    with pytest.raises(RSABridgeError, match="--gram-read-rate is bytes per second > 0"):
        GramSetting(2, True, 1e9, read_rate=0)


class Unpicklable(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 9))
        self.lock = __import__("threading").Lock()  # a lock does not pickle

    def forward(self, x):
        return self.body(x)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 9)).eval()


def test_recompute_equals_serial_on_two_workers(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    from extractors.streaming import stream_rdms
    from rsa_bridge.app.gram_routes import RoutedGram

    net = _net()
    images = torch.rand(23, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    # every layer spills; "0": 144 units, "3": 9 units; batches of 5 do not line up with the 8-stimulus panels
    options = RDMOptions(metric="correlation", memory_budget=0, gram_budget=2 * 4 * 23 * 62, spill_dir=tmp_path,
                         batch_size=5)
    serial = stream_rdms(net, images, ["0", "3"], options, progress=False)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        routed = RoutedGram(client, GramSetting(2, True, 3 * 4 * 144 * 8, route="recompute"))
        try:
            got = stream_rdms(net, images, ["0", "3"], options, progress=False, spilled_gram=routed)
        finally:
            routed.close()
        # auto with 1 byte/s: recompute wins on the costs, for both layers
        slow = RoutedGram(client, GramSetting(2, True, 3 * 4 * 144 * 8, read_rate=1.0))
        try:
            auto = stream_rdms(net, images, ["0", "3"], RDMOptions(metric="euclidean", memory_budget=0,
                                                                   spill_dir=tmp_path, batch_size=5),
                               progress=False, spilled_gram=slow)
        finally:
            slow.close()
        unpicklable = RoutedGram(client, GramSetting(2, True, 1e9, route="recompute"))
        with pytest.raises(RSABridgeError, match="cannot be rebuilt on the workers: .* does not pickle"):
            stream_rdms(Unpicklable().eval(), images, ["body.0"], options, progress=False, spilled_gram=unpicklable)
    np.testing.assert_allclose(got.values, serial.values, rtol=0, atol=1e-10)
    paths = got.attrs["gram_paths"]
    assert "0: recompute: dask tiles: 3 panels of <= 8 stimuli, 6 tiles" in paths and "on 2 worker(s)" in paths
    assert [route.route for _, route in routed.routes] == ["recompute", "recompute"]
    assert got.attrs["gram_io_read_bytes"] == 0  # no activation read back
    euclid = stream_rdms(net, images, ["0", "3"], RDMOptions(metric="euclidean", memory_budget=0, batch_size=5),
                         progress=False)
    np.testing.assert_allclose(auto.values, euclid.values, rtol=0, atol=1e-10)
    assert [route.route for _, route in slow.routes] == ["recompute", "recompute"]
    assert "cheaper: " in slow.routes[0][1].reason and "(given: --gram-read-rate)" in slow.routes[0][1].reason


def test_recompute_refuses_unreadable_stimuli(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    from extractors.streaming import stream_rdms
    from rsa_bridge.app.gram_routes import RoutedGram
    from stimuli import load_stimulus_set
    from torchvision import transforms as T

    make_stimuli(tmp_path / "stimuli", n=6, size=8)
    stim = load_stimulus_set(tmp_path / "stimuli")
    options = RDMOptions(memory_budget=0, spill_dir=tmp_path, batch_size=3)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        routed = RoutedGram(client, GramSetting(2, True, 1e9, route="recompute"))
        missing = stim.paths[2]
        # the probe decodes image 0 only; image 2 is gone before the forward pass, when the workers check
        loader = _Vanishing(missing)
        with pytest.raises(RSABridgeError, match=r"worker tcp://.*: a dask worker cannot read the stimulus image "):
            stream_rdms(_net(), stim, ["0"], options, transform=loader, progress=False, spilled_gram=routed)


class _Vanishing:
    """A transform that removes another image file when the probe decodes image 0 (the workers then miss it)."""

    def __init__(self, path):
        self.path = path

    def __call__(self, image):
        from torchvision.transforms.functional import resize, to_tensor

        self.path.unlink(missing_ok=True)
        return to_tensor(resize(image, [8, 8]))


def _compare(args):
    from rsa_bridge.app.commands import compare as compare_cmd

    parser = argparse.ArgumentParser()
    compare_cmd.register(parser.add_subparsers(dest="command"))
    parsed = parser.parse_args(["compare", *args])
    return parsed.func(parsed)


def test_cli_refuses_gram_route_without_tiles(tmp_path):
    with pytest.raises(RSABridgeError, match="--gram-route and --gram-read-rate choose where --gram-tiles runs"):
        _compare(["--model", "pixels", "--area", "IT", "--gram-route", "recompute", "--out", str(tmp_path / "x")])
