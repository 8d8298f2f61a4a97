"""The layer Grams that the RDM stream accumulates equal H X X^T H of the extracted activations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from extractors import extract
from extractors.streaming import stream_rdms
from rsa_bridge.options import RDMOptions


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 10)).eval()


@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean", "sqeuclidean"])
@pytest.mark.parametrize("budget", [math.inf, 0])  # in memory / spilled to disk
def test_kernels_equal_centred_feature_gram(net, metric, budget):
    images = torch.rand(24, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    kernels = {}
    rdms = stream_rdms(net, images, ["0", "3"], RDMOptions(metric=metric, memory_budget=budget,
                                                           chunk_bytes=4 * 24 * 50),  # several unit blocks
                       kernels_out=kernels)
    acts = extract(net, images, ["0", "3"])
    for name in ("0", "3"):
        x = acts[name].values.astype(np.float64)
        x -= x.mean(axis=0)
        np.testing.assert_allclose(kernels[name], x @ x.T, atol=1e-9 * np.abs(x @ x.T).max())
    plain = stream_rdms(net, images, ["0", "3"], RDMOptions(metric=metric, memory_budget=budget,
                                                            chunk_bytes=4 * 24 * 50))
    np.testing.assert_array_equal(rdms.values, plain.values)  # the RDMs are untouched by kernels_out
