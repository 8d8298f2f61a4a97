"""Model RDMs as dask tasks on a LocalCluster: the same result as the serial compare, to the bit."""
from __future__ import annotations

import argparse

import pandas as pd
import pytest
import xarray as xr

from rsa_bridge.app.cache import RDMCache
from rsa_bridge.app.distributed import compare_many
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.app.pipeline import RDMOptions, StatsOptions, compare_models
from tests.helpers import make_rdm_dataset, make_stimuli

distributed = pytest.importorskip("dask.distributed")
MODELS = ["squeezenet1_0", "squeezenet1_1"]  # small: 1.2 M parameters each
LAYERS = ["features.0", "features.3"]  # module paths both networks have


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask")
    ids = make_stimuli(root / "stimuli", n=8)
    make_rdm_dataset(root / "toy.nc", ids)
    return root


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def _without_executor(results: xr.Dataset) -> xr.Dataset:
    out = results.copy()
    for attrs in [out.attrs] + [out[v].attrs for v in out.data_vars]:
        for key in ("bootstrap_executor", "permutation_executor"):
            attrs.pop(key, None)
    return out


@pytest.mark.slow
def test_distributed_equals_serial(toy, client, tmp_path, capsys):
    kwargs = dict(dataset=str(toy / "toy.nc"), weights="none", layers=LAYERS, rdm=RDMOptions(batch_size=4),
                  stats=StatsOptions(bootstrap=30, seed=7))
    serial = compare_models(MODELS, cache=False, progress=False, **kwargs)
    cache = RDMCache(tmp_path / "worker_cache")
    many = compare_many(MODELS, scheduler=client, cache=cache, progress=False, **kwargs)
    assert "the dask workers' results" in capsys.readouterr().err
    pd.testing.assert_frame_equal(many.table, serial.table)
    # identical but for where the bootstrap ran: 30 samples as one batch on the client's cluster
    assert serial.results.attrs["bootstrap_executor"] == "serial"
    assert many.results.attrs["bootstrap_executor"] == ("dask (1 batch of <= 30 samples on a given dask client "
                                                        "(2 workers))")
    assert many.results["similarity_bootstrap"].attrs["bootstrap_executor"] == many.results.attrs["bootstrap_executor"]
    xr.testing.assert_identical(_without_executor(many.results), _without_executor(serial.results))
    for name, rdms in serial.model_rdms.items():
        xr.testing.assert_identical(many.model_rdms[name], rdms)
    pd.testing.assert_frame_equal(many.model_differences, serial.model_differences)
    assert len(cache.entries()) == 2  # the workers filled the on-disk cache: one entry per model
    # the CLI path: --scheduler ADDRESS routes to compare_many; its workers now find their cache entries
    from rsa_bridge.app.commands import compare as compare_cmd

    parser = argparse.ArgumentParser()
    compare_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["compare", "--model", MODELS[0], "--model", MODELS[1], "--weights", "none",
                              "--dataset", str(toy / "toy.nc"), "--layers", ",".join(LAYERS), "--batch-size", "4",
                              "--bootstrap", "0", "--scheduler", client.scheduler.address,
                              "--cache", str(cache.root), "--quiet"])
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    assert err.count(f"read from {cache.root}") == 2 and err.count("the dask workers' results") == 2
    assert f"{serial.table['similarity'].iloc[0]:.3f}" in out


def test_bad_scheduler_is_a_user_error(toy):
    with pytest.raises(RSABridgeError, match="local:N"):
        compare_many(["alexnet"], dataset=str(toy / "toy.nc"), scheduler="local:zero", weights="none")
    with pytest.raises(RSABridgeError, match="name each model once"):
        compare_many(["alexnet", "alexnet"], dataset=str(toy / "toy.nc"), weights="none")
