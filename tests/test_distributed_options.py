"""``compare --scheduler`` gives every option to the workers and the client that the serial run gives to
``compare_models`` (issue 19: ``--tokens`` used to be dropped), and equals the serial run."""
from __future__ import annotations

import argparse
import functools
import inspect

import pandas as pd
import pytest
import xarray as xr

from rsa_bridge.app import pipeline
from rsa_bridge.app.distributed import _OWN, _normalise, compare_many
from rsa_bridge.app.network import NetworkOptions
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.options import RDMOptions
from tests.helpers import make_rdm_dataset, make_stimuli

distributed = pytest.importorskip("dask.distributed")
#: what compare_many sets itself: the cache (the workers' results), progress, the per-task dataset and module
SET_BY_COMPARE_MANY = {"cache", "progress", "models"}
PER_TASK = {"dataset", "models", "stats"}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask_options")
    ids = make_stimuli(root / "stimuli", n=8)
    make_rdm_dataset(root / "toy.nc", ids)
    return root


def test_every_compare_models_keyword_is_accepted():
    keywords = {name for name, p in inspect.signature(pipeline.compare_models).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}
    given = {k: None for k in keywords - set(_OWN)}
    _normalise(given)  # none refused, none changed
    assert given == {k: None for k in keywords - set(_OWN)}
    old = {"batch_size": 4, "tokens": "cls"}  # an old-style RDM keyword was removed (issue 24): refused
    with pytest.raises(TypeError, match=r"compare_many\(\) got an unexpected keyword argument 'batch_size'.*RDMOptions"):
        _normalise(old)
    with pytest.raises(TypeError, match="unexpected keyword argument 'tokenz'"):
        compare_many(["alexnet"], ["IT"], tokenz="cls")
    with pytest.raises(RSABridgeError, match="drop --scheduler"):
        compare_many(["alexnet"], ["IT"], measures=["rsa", "cka"])


def _flat(kw: dict) -> dict:
    """The keywords with ``network`` spread into its fields (``models``, ``cache``: set by compare_many)."""
    import dataclasses

    out = dict(kw)
    network = out.pop("network", None)
    if network is not None:
        out.update({f.name: getattr(network, f.name) for f in dataclasses.fields(network)})
    return out


def _run_cli(argv, capsys):
    from rsa_bridge.app.commands import compare as compare_cmd

    parser = argparse.ArgumentParser()
    compare_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["compare", *argv])
    assert args.func(args) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_cli_options_reach_workers_and_client(toy, monkeypatch, capsys, tmp_path):
    calls, results = [], []
    real = pipeline.compare_models

    @functools.wraps(real)  # the same signature: compare_many checks keywords against it
    def recording(names, areas=None, **kwargs):
        calls.append((list(names), kwargs))
        results.append(real(names, areas, **kwargs))
        return results[-1]

    monkeypatch.setattr(pipeline, "compare_models", recording)
    argv = ["--model", "squeezenet1_0", "--model", "pixels", "--weights", "none", "--dataset", str(toy / "toy.nc"),
            "--layers", "features.0,features.3", "--tokens", "mean", "--metric", "euclidean", "--method", "pearson",
            "--precision", "float32", "--reduce-units", "8", "--batch-size", "4", "--bootstrap", "20",
            "--permutations", "9", "--seed", "3", "--ci-level", "0.9", "--group-by", "none", "--no-cache", "--quiet"]
    serial_out = _run_cli(argv, capsys)
    (_, serial_kw), serial = calls.pop(), results.pop()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        dask_out = _run_cli(argv + ["--scheduler", cluster.scheduler_address], capsys)
    (worker_names, worker_kw), (client_names, client_kw) = calls  # one network task, then the client's call
    many = results[-1]
    assert worker_names == ["squeezenet1_0"] and client_names == ["squeezenet1_0", "pixels"]
    same = lambda kw, drop: {k: v for k, v in _flat(kw).items() if k not in drop}  # noqa: E731
    assert same(client_kw, SET_BY_COMPARE_MANY) == same(serial_kw, SET_BY_COMPARE_MANY)
    assert same(worker_kw, SET_BY_COMPARE_MANY | PER_TASK) == same(serial_kw, SET_BY_COMPARE_MANY | PER_TASK)
    assert worker_kw["network"].tokens == serial_kw["network"].tokens == "mean"
    # and the numbers: identical, the token pooling recorded; the statistics ran as dask batches
    assert dask_out == serial_out
    pd.testing.assert_frame_equal(many.table, serial.table)
    assert many.results.attrs["token_pooling"] == serial.results.attrs["token_pooling"] == "mean,n/a"
    for kind in ("bootstrap_executor", "permutation_executor"):
        assert serial.results.attrs[kind] == "serial"
        assert many.results.attrs[kind].startswith("dask (") and "remote dask scheduler (2 workers)" in \
            many.results.attrs[kind]
        many.results.attrs.pop(kind), serial.results.attrs.pop(kind)
    many.results["similarity_bootstrap"].attrs.pop("bootstrap_executor")
    serial.results["similarity_bootstrap"].attrs.pop("bootstrap_executor")
    many.results["p_value"].attrs.pop("permutation_executor")  # the p_value variable records it too (issue 24)
    serial.results["p_value"].attrs.pop("permutation_executor")
    xr.testing.assert_identical(many.results, serial.results)
