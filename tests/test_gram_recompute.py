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


def test_planner_counts_the_workers_caches():
    # a 1,508-byte layer and a 1,508-byte budget: panels of 9, 9, 9, 2; each of 2 workers keeps the whole layer
    kept = plan_gram_route(29, 13, GramSetting(2, True, 29 * 13 * 4), costs=RouteCosts(1e-3, 1.0, "given"))
    assert kept.panels == 4 and kept.recompute_images == 116 and kept.forward_s == pytest.approx(58e-3)
    assert "58 image forwards (116 without the workers' caches) instead of" in kept.reason
    one = plan_gram_route(29, 13, GramSetting(1, True, 29 * 13 * 4), costs=RouteCosts(1e-3, 1.0, "given"))
    assert one.forward_s == pytest.approx(29e-3) and "cheaper: 29 x 1 ms = 0.029 s" in one.reason


def test_planner_recompute_blocked_or_forced():
    blocked = plan_gram_route(29, 13, SETTING, costs=RouteCosts(1e-9, 1.0, "given", blocked="the layer is sketched"))
    assert blocked.route == "tiles" and "recompute cannot run: the layer is sketched" in blocked.reason
    unknown = plan_gram_route(29, 13, SETTING, costs=RouteCosts(None, 1.0))
    assert unknown.route == "tiles" and "forward time or read rate unknown" in unknown.reason
    forced = GramSetting(2, True, SETTING.panel_budget, route="recompute")
    assert plan_gram_route(29, 13, forced).route == "recompute"
    unshared = GramSetting(2, False, SETTING.panel_budget, route="recompute")  # no spill read: no shared folder
    assert plan_gram_route(29, 13, unshared).route == "recompute"
    assert plan_gram_route(29, 13, GramSetting(0, False, 1e9, route="recompute")).route == "driver"
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
        _refuses_unreadable_stimuli(client, tmp_path)
    np.testing.assert_allclose(got.values, serial.values, rtol=0, atol=1e-10)
    paths = got.attrs["gram_paths"]
    assert "0: recompute: dask tiles: 3 panels of <= 8 stimuli, 6 tiles" in paths and "on 2 worker(s)" in paths
    assert [route.route for _, route in routed.routes] == ["recompute", "recompute"]
    assert "network: sequential pickled by dask" in paths
    assert got.attrs["gram_io_read_bytes"] == 0  # no activation read back
    euclid = stream_rdms(net, images, ["0", "3"], RDMOptions(metric="euclidean", memory_budget=0, batch_size=5),
                         progress=False)
    np.testing.assert_allclose(auto.values, euclid.values, rtol=0, atol=1e-10)
    assert [route.route for _, route in slow.routes] == ["recompute", "recompute"]
    assert "cheaper: " in slow.routes[0][1].reason and "(given: --gram-read-rate)" in slow.routes[0][1].reason


def _refuses_unreadable_stimuli(client, tmp_path):
    from extractors.streaming import stream_rdms
    from rsa_bridge.app.gram_routes import RoutedGram
    from stimuli import load_stimulus_set

    make_stimuli(tmp_path / "stimuli", n=6, size=8)
    stim = load_stimulus_set(tmp_path / "stimuli")
    options = RDMOptions(memory_budget=0, spill_dir=tmp_path, batch_size=3)
    routed = RoutedGram(client, GramSetting(2, True, 1e9, route="recompute"))
    # the probe decodes image 0 only; image 2 is gone before the forward pass, when the workers check
    with pytest.raises(RSABridgeError, match=r"worker tcp://.*: a dask worker cannot read the stimulus image "):
        stream_rdms(_net(), stim, ["0"], options, transform=_Vanishing(stim.paths[2]), progress=False,
                    spilled_gram=routed)


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


def test_recompute_gram_refuses_a_layer_it_was_not_given():
    from rsa_bridge.app.gram_recompute import RecomputeJob, recompute_gram
    from rsa_bridge.gram_panels import plan_panels

    job = RecomputeJob("t-layer", "tiny", "user-module", None, "", {}, _net(), torch.zeros(3, 3, 8, 8), None,
                       ("a", "b", "c"), {"0": "0"}, 3, False, 1e6)
    with pytest.raises(RSABridgeError, match=r"layer '3' over 3 stimuli is not in the recompute job \(0 over 3"):
        recompute_gram(None, job, "3", plan_panels(3, 4, 1e6))
    with pytest.raises(RSABridgeError, match="layer '0' over 5 stimuli is not in the recompute job"):
        recompute_gram(None, job, "0", plan_panels(5, 4, 1e6))


def test_rebuilt_model_must_match_the_drivers_hash():
    from rsa_bridge.app.gram_recompute import RecomputeJob, _check

    job = RecomputeJob("t-hash", "squeezenet1_0", "none", 0, "0" * 64, {}, None, torch.zeros(3, 3, 8, 8), None,
                       ("a", "b", "c"), {"features.0": "features.0"}, 3, False, 1e6)
    reason = _check(job)
    assert "squeezenet1_0 (none) rebuilt on a worker has state-dict SHA-256" in reason
    assert "not the driver's 000000000000" in reason and "\n" not in reason


def test_cli_recompute_equals_serial(tmp_path, capsys):
    """squeezenet rebuilt by name on 2 process workers (state hash checked); 1 byte/s makes recompute cheaper."""
    distributed = pytest.importorskip("dask.distributed")
    ids = make_stimuli(tmp_path / "stimuli", n=12)
    make_rdm_dataset(tmp_path / "toy.nc", ids)
    common = ["--model", "squeezenet1_0", "--weights", "none", "--dataset", str(tmp_path / "toy.nc"),
              "--area", "IT", "--layers", "features.0,features.3", "--batch-size", "5", "--bootstrap", "20",
              "--no-cache", "--quiet"]
    assert _compare([*common, "--out", str(tmp_path / "serial")]) == 0
    budget = 3 * 4 * 4 * 96 * 109 * 109  # features.0: three 4-stimulus panels per task -> 3 panels, 6 tiles
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        assert _compare([*common, "--scheduler", cluster.scheduler_address, "--gram-tiles", "--memory-budget",
                         "20000000", "--gram-budget", str(budget), "--gram-read-rate", "1", "--spill-dir",
                         str(tmp_path), "--out", str(tmp_path / "recomputed")]) == 0
    capsys.readouterr()
    assert (tmp_path / "recomputed" / "results.csv").read_text() == (tmp_path / "serial" / "results.csv").read_text()
    with xr.open_dataarray(tmp_path / "serial" / "model_rdms.nc") as a, \
            xr.open_dataarray(tmp_path / "recomputed" / "model_rdms.nc") as b:
        np.testing.assert_allclose(b.values, a.values, rtol=0, atol=1e-10)
        assert "features.0: recompute: dask tiles: 3 panels of <= 4 stimuli, 6 tiles" in b.attrs["gram_paths"]
        assert "network: squeezenet1_0 (none) rebuilt by name, state SHA-256 " in b.attrs["gram_paths"]
    with xr.open_dataset(tmp_path / "recomputed" / "results.nc") as results:
        routes = results.attrs["gram_routes"]
        # the budget holds the whole layer: each worker runs each image at most once, 2 x 12 < 36 forwards
        assert routes.startswith("layer000.f32: recompute (6 tiles of 3 panels <= 4 stimuli on 2 worker(s): 24 image "
                                 "forwards (36 without the workers' caches) instead of "
                                 f"{36 * 96 * 109 * 109 * 4} bytes read (3.00x the file); cheaper: 24 x ")
        assert "at 1 B/s (given: --gram-read-rate)" in routes
        assert "'route': 'auto'" in results.attrs["gram_route_setting"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("rsa-bridge-spill")] == []


@pytest.mark.parametrize("device, sketched, why", [
    ("cpu", {"0"}, "count-sketched layers"),
    ("meta", set(), "the driver's pass ran on meta; workers recompute on the CPU"),
])
def test_forced_recompute_refused_before_the_pass(device, sketched, why):
    from types import SimpleNamespace

    from rsa_bridge.app.gram_routes import RoutedGram

    bound = SimpleNamespace(plan=SimpleNamespace(device=torch.device(device)), sketched=frozenset(sketched))
    with pytest.raises(RSABridgeError, match=f"--gram-route recompute cannot run: {why}"):
        RoutedGram(None, GramSetting(2, True, 1e9, route="recompute")).bind_pass(bound)


class Twice(nn.Module):
    """One module called twice (per-call layers ``block@0``, ``block@1``)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.block = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.block(torch.relu(self.block(self.stem(x))))


def test_worker_rows_equal_the_drivers_per_call_layers():
    """The worker side in this process: per-call layers, batches of 4 across a panel 3..9."""
    from extractors.extract import prepare_plan, run_plan
    from extractors.streaming import SpilledPass
    from rsa_bridge.app.gram_recompute import _release, _rows, _worker, recompute_job

    torch.manual_seed(0)
    net = Twice().eval()
    images = torch.rand(11, 3, 6, 6, generator=torch.Generator().manual_seed(2))
    plan = prepare_plan(net, images, ["block@1", "block@0"], 4, "cpu", None, False, None)
    want = {name: torch.cat([b[name] for _, _, b in run_plan(plan)]).numpy() for name, _ in plan.layers}
    job = recompute_job(SpilledPass(images, None, plan, frozenset()), cache_bytes=1e9)
    state = _worker(job)
    for name, _ in plan.layers:
        got, computed = _rows(job, state, name, 3, 9)
        np.testing.assert_array_equal(got, want[name][3:9])
        assert computed == 11  # the driver's batches 0..3, 4..7, 8..10 cover 3..8; none kept yet
        assert _rows(job, state, name, 5, 11)[1] == 0  # all kept
    _release(job.token)
    small = recompute_job(SpilledPass(images, None, plan, frozenset()), cache_bytes=1)  # keeps the last batch only
    tight = _worker(small)
    assert _rows(small, tight, "block@1", 3, 9)[1] == 11
    got, computed = _rows(small, tight, "block@1", 3, 9)
    assert computed == 11 and list(tight.batches) == [("block@1", 2)]  # each new batch pushes out the last
    assert tight.held == 3 * 4 * 6 * 6 * 4  # the kept batch 8..10: 3 images x 144 float32 units
    np.testing.assert_array_equal(got, want["block@1"][3:9])
    _release(small.token)
