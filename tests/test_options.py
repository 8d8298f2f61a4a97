"""Typed options (rsa_bridge.options): validation, hashing, the cache key, the old keywords, and equal numbers."""
from __future__ import annotations

import dataclasses
import math
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torchvision import transforms as T

import rsa_bridge
from extractors.streaming import stream_rdms
from rsa_bridge.app.cache import rdm_key
from rsa_bridge.app.pipeline import NetworkOptions, compare_model, compare_models, network_rdms
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.options import DEFAULT_MEMORY_BUDGET, RDMOptions, StatsOptions
from stimuli import load_stimulus_set
from tests.helpers import make_stimuli


def tiny_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 6, 5, stride=4), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten()).eval()


def to_tensor():
    return T.Compose([T.Resize((32, 32)), T.ToTensor()])


@pytest.mark.parametrize("bad, words", [
    ({"metric": "manhattan"}, "unknown RDM metric"), ({"precision": "float16"}, "precision"),
    ({"reduce_units": 0}, "reduce_units"), ({"reduce_units": 2.5}, "reduce_units"),
    ({"reduce_seed": -1}, "reduce_seed"), ({"memory_budget": -1}, "memory_budget"),
    ({"memory_budget": "lots"}, "memory_budget"), ({"batch_size": 0}, "batch_size"),
    ({"batch_size": True}, "batch_size"), ({"chunk_bytes": 0}, "chunk_bytes"), ({"spill_dir": 3}, "spill_dir"),
])
def test_bad_values_are_one_line_saying_what_to_pass(bad, words):
    with pytest.raises(RSABridgeError, match=words) as err:
        RDMOptions(**bad)
    assert "\n" not in str(err.value)


def test_names_resolve_and_defaults_are_the_documented_ones():
    options = RDMOptions(metric="EUCLIDEAN", precision="Float32", device=torch.device("cuda", 1))
    assert (options.metric, options.precision, options.device, options.device_type) == (
        "euclidean", "float32", "cuda:1", "cuda")
    assert DEFAULT_MEMORY_BUDGET == 64 * 2 ** 20 <= RDMOptions().budget_bytes <= 2 * 2 ** 30  # auto: tests/test_memory_budget.py
    assert RDMOptions(memory_budget=5).budget_bytes == 5
    assert RDMOptions().attrs()["rdm_memory_budget"].startswith("auto: a quarter of the memory available")
    assert RDMOptions(memory_budget=math.inf).budget_bytes == math.inf
    attrs = RDMOptions(reduce_units=64).attrs()
    assert attrs["rdm_reduce_units"] == 64 and attrs["rdm_metric"] == "correlation"
    assert RDMOptions().attrs()["rdm_reduce_units"] == "none (exact RDMs)"


def test_options_are_frozen_hashable_and_pickle():
    a, b = RDMOptions(precision="float32", reduce_units=8), RDMOptions(precision="float32", reduce_units=8)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.metric = "cosine"
    assert pickle.loads(pickle.dumps(a)) == a  # what a dask task receives
    stats = StatsOptions(bootstrap=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.bootstrap = 3
    assert dataclasses.replace(stats, progress=False).progress is False
    assert hash(stats) == hash(StatsOptions(bootstrap=10))


def test_old_import_paths_name_the_same_classes():
    from rsa_bridge.app import pipeline

    assert rsa_bridge.StatsOptions is pipeline.StatsOptions is StatsOptions
    assert rsa_bridge.RDMOptions is pipeline.RDMOptions is RDMOptions


def test_the_option_module_imports_no_torch():
    code = "import sys, rsa_bridge.options; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_cache_fields_hold_what_changes_the_numbers_only():
    base = RDMOptions()
    for same in (RDMOptions(batch_size=3), RDMOptions(memory_budget=0), RDMOptions(spill_dir="/tmp"),
                 RDMOptions(device="cpu:0")):
        assert same.cache_fields() == base.cache_fields() and same.key() == base.key()
    for other in (RDMOptions(metric="cosine"), RDMOptions(precision="float32"), RDMOptions(reduce_units=10),
                  RDMOptions(reduce_seed=1), RDMOptions(device="cuda"), RDMOptions(chunk_bytes=1000)):
        assert other.key() != base.key()


@pytest.fixture(scope="module")
def stim(tmp_path_factory):
    root = tmp_path_factory.mktemp("options_stimuli")
    make_stimuli(root, n=6, size=24)
    return load_stimulus_set(root)


def test_the_cache_key_follows_the_options_object(stim):
    net, transform = tiny_net(), to_tensor()

    def key(options):
        return rdm_key(net, stim, ["0"], options, transform)[0]

    base = key(RDMOptions())
    assert key(RDMOptions()) == base
    assert key(RDMOptions(batch_size=2, memory_budget=0, spill_dir=str(stim.root))) == base
    assert key(RDMOptions(precision="float32")) != base
    assert key(RDMOptions(metric="euclidean")) != base
    assert key(RDMOptions(reduce_units=4, reduce_seed=2)) != key(RDMOptions(reduce_units=4, reduce_seed=3))
    description = rdm_key(net, stim, ["0"], RDMOptions(precision="float32"), transform)[1]
    assert description["metric"] == "correlation" and description["device"] == "cpu"
    assert description["options"] == {"precision": "float32", "reduce_units": None, "reduce_seed": 0}


def test_old_keywords_are_refused(stim):
    """The old-style RDM keywords were removed (issue 24): a TypeError names the RDMOptions field to use."""
    net, transform = tiny_net(), to_tensor()
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'batch_size'.*RDMOptions\(batch_size=\.\.\., "
                                        r"metric=\.\.\.\)"):
        stream_rdms(net, stim, ["0", "3"], metric="euclidean", batch_size=4, transform=transform, progress=False)
    with pytest.raises(TypeError, match="network_rdms.*'metric'"):
        network_rdms(net, stim, ["0", "3"], metric="euclidean", transform=transform, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the one spelling warns about nothing
        network_rdms(net, stim, ["0"], RDMOptions(), transform=transform, progress=False)
    with pytest.raises(TypeError, match="unexpected keyword argument 'metrik'"):
        stream_rdms(net, stim, ["0"], metrik="cosine")
    with pytest.raises(RSABridgeError, match="must be an RDMOptions"):
        stream_rdms(net, stim, ["0"], "cosine")


def test_compare_model_with_rdm_options_and_the_old_call_refused():
    """The shipped 92-image set, an untrained tiny network: RDMOptions reach the RDMs; the old spelling (removed in
    issue 24) is refused before any work."""
    net, transform = tiny_net(), to_tensor()
    kw = dict(network=NetworkOptions(models=[net], transform=transform, layers=["0", "3"], cache=False),
              progress=False, stats=StatsOptions(ceiling=False))
    new = compare_model("tiny", ["IT"], rdm=RDMOptions(metric="euclidean", precision="float32", batch_size=46), **kw)
    with pytest.raises(TypeError, match=r"compare_model\(\) got an unexpected keyword argument 'batch_size'"):
        compare_model("tiny", ["IT"], metric="euclidean", batch_size=46, rdm_options={"precision": "float32"}, **kw)
    with pytest.raises(TypeError, match="'rdm_options': the dict was removed"):
        compare_model("tiny", ["IT"], rdm_options={"precision": "float32"}, **kw)
    assert len(new.table) == 2 and (new.table["n_stimuli"] == 92).all()
    assert new.results.attrs["metric"] == "euclidean"
    assert new.model_rdms["tiny|kriegeskorte2008_92images"].attrs["rdm_precision"] == "float32"
    with pytest.raises(TypeError, match="unexpected keyword argument 'batchsize'"):
        compare_models(["tiny"], ["IT"], models=[net], batchsize=3)
