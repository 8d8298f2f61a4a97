"""stream_rdms writing each finished layer into an RDMStore equals its dense DataArray."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

from extractors.streaming import stream_rdms
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.options import RDMOptions
from rsa_bridge.rdm_store import RDMStore


@pytest.fixture(scope="module")
def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 10))


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(11, 3, 16, 16, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("budget", [None, 0])
def test_store_path_equals_dense_path(net, x, tmp_path, budget):
    ids = [f"img{i}" for i in range(11)]
    layers = ["0", "1", "3"]
    dense = stream_rdms(net, x, layers, RDMOptions(batch_size=4), progress=False, stimulus_ids=ids)
    with RDMStore(ids, memory_budget=budget, spill_dir=tmp_path) as store:
        got = stream_rdms(net, x, layers, RDMOptions(batch_size=4), progress=False, stimulus_ids=ids, out_store=store)
        assert got is store and store.names == layers
        assert store.spilled == ([] if budget is None else layers)
        xr.testing.assert_identical(store.to_dataarray(), dense)   # values, coords and attrs
    with RDMStore(ids, storage="float32") as store:
        stream_rdms(net, x, layers, RDMOptions(batch_size=4), progress=False, stimulus_ids=ids, out_store=store)
        assert np.abs(store.to_dataarray().values - dense.values).max() <= np.abs(dense.values).max() * 2.0 ** -24


def test_store_over_other_ids_is_refused(net, x):
    with RDMStore([f"other{i}" for i in range(11)]) as store, pytest.raises(RSABridgeError, match="other stimulus"):
        stream_rdms(net, x, ["3"], progress=False, stimulus_ids=[f"img{i}" for i in range(11)], out_store=store)
