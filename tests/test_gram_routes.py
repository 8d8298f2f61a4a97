"""compare --scheduler --gram-tiles: the per-layer Gram planner, and the tiled run equal to the serial one."""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from rsa_bridge.app.gram_routes import GramSetting, ROUTES, plan_gram_route, shared_storage
from rsa_bridge.errors import RSABridgeError
from tests.helpers import make_rdm_dataset, make_stimuli

LAYERS = "features.0,features.3"


def test_planner_numbers_by_hand():
    # 29 stimuli x 13 units, three panels of 8 rows fit: panels 8, 8, 8, 5; tiles (i <= j): 4 + 6 = 10
    route = plan_gram_route(29, 13, GramSetting(workers=2, shared_storage=True, panel_budget=3 * 4 * 13 * 8))
    assert route.route == "tiles" and (route.panels, route.tiles, route.workers) == (4, 10, 2)
    rows = [8, 8, 8, 5]
    reads = sum(rows) + sum(rows[i] + rows[j] for i in range(4) for j in range(i + 1, 4))  # diagonal + pairs
    assert reads == 29 + 3 * 29 and route.tile_read_bytes == reads * 13 * 4 and route.recompute_images == reads
    assert (route.flops, route.file_bytes) == (29 * 29 * 13, 29 * 13 * 4)
    assert "10 tiles of 4 panels <= 8 stimuli on 2 worker(s): 6032 bytes read (4.00x the file)" in route.reason
    assert route.describe().startswith("tiles (") and set(ROUTES) == {"driver", "tiles", "recompute"}


@pytest.mark.parametrize("setting, in_memory, why", [
    (GramSetting(2, False, 1e9), False, "cannot read the spill folder"),
    (GramSetting(0, True, 1e9), False, "no dask worker"),
    (GramSetting(2, True, 1e9), True, "fit the memory budget"),
])
def test_planner_keeps_the_driver(setting, in_memory, why):
    route = plan_gram_route(10, 7, setting, in_memory=in_memory)
    assert route.route == "driver" and why in route.reason and route.tiles == 0


def test_planner_refusals():
    small = plan_gram_route(10, 7, GramSetting(2, True, 3 * 4 * 7 - 1))  # after the forward pass: not lost
    assert small.route == "driver" and "cannot hold 3 one-stimulus panels of 7 units" in small.reason
    assert plan_gram_route(10, 7, GramSetting(2, True, 3 * 4 * 7)).panels == 10  # one stimulus per panel

    class Remote:
        def scheduler_info(self):
            return {"workers": {"tcp://10.0.0.5:4000": {}, "tcp://127.0.0.1:4001": {}}}

    with pytest.raises(RSABridgeError, match="needs --spill-dir DIR on storage every worker"):
        shared_storage(Remote(), None)
    assert shared_storage(Remote(), "/shared/scratch")


def _compare(args):
    from rsa_bridge.app.commands import compare as compare_cmd

    parser = argparse.ArgumentParser()
    compare_cmd.register(parser.add_subparsers(dest="command"))
    parsed = parser.parse_args(["compare", *args])
    return parsed.func(parsed)


def test_cli_gram_tiles_equal_serial(tmp_path, capsys):
    distributed = pytest.importorskip("dask.distributed")
    ids = make_stimuli(tmp_path / "stimuli", n=12)
    make_rdm_dataset(tmp_path / "toy.nc", ids)
    common = ["--model", "squeezenet1_0", "--weights", "none", "--dataset", str(tmp_path / "toy.nc"),
              "--area", "IT", "--layers", LAYERS, "--batch-size", "6", "--bootstrap", "20", "--no-cache", "--quiet"]
    assert _compare([*common, "--out", str(tmp_path / "serial")]) == 0
    # features.0: 96 x 109 x 109 units; three 4-stimulus panels per task -> 3 panels, 6 tiles
    budget = 3 * 4 * 4 * 96 * 109 * 109
    with pytest.raises(RSABridgeError, match="add --scheduler"):
        _compare([*common, "--gram-tiles"])
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        # features.3 (128 x 54 x 54 units, 17.9 MB for 12 stimuli) fits 20 MB and stays in memory: route driver;
        # features.0 (54.8 MB) spills: route tiles
        assert _compare([*common, "--scheduler", cluster.scheduler_address, "--gram-tiles", "--memory-budget", "20000000",
                         "--gram-budget", str(budget), "--spill-dir", str(tmp_path), "--out",
                         str(tmp_path / "tiled")]) == 0
    capsys.readouterr()
    serial_csv = (tmp_path / "serial" / "results.csv").read_text()
    assert (tmp_path / "tiled" / "results.csv").read_text() == serial_csv  # the table, byte for byte
    with xr.open_dataarray(tmp_path / "serial" / "model_rdms.nc") as a, \
            xr.open_dataarray(tmp_path / "tiled" / "model_rdms.nc") as b:
        np.testing.assert_allclose(b.values, a.values, rtol=0, atol=1e-10)
        assert "features.0: tiles: dask tiles: 3 panels of <= 4 stimuli" in b.attrs["gram_paths"]
        assert "features.3: in memory (syrk)" in b.attrs["gram_paths"]
        assert "in memory" in a.attrs["gram_paths"]
    with xr.open_dataset(tmp_path / "tiled" / "results.nc") as results:
        routes = results.attrs["gram_routes"]
        assert routes.startswith("layer000.f32: tiles (6 tiles of 3 panels <= 4 stimuli on 2 worker(s): "
                                 f"{36 * 96 * 109 * 109 * 4} bytes read (3.00x the file)")
        assert "layer001" not in routes and "'workers': 2" in results.attrs["gram_route_setting"]
    assert not pd.read_csv(tmp_path / "tiled" / "results.csv").empty
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("rsa-bridge-spill")] == []
