"""RDM metrics against scipy.spatial.distance.pdist and rsatoolbox.rdm.calc_rdm."""
from __future__ import annotations

import numpy as np
import pytest
import rsatoolbox
import xarray as xr
from scipy.spatial.distance import pdist, squareform

from rsa_bridge import RSABridgeError, compute_rdm, upper_triangle
from rsa_bridge.rdm import COL, ROW


@pytest.mark.parametrize("metric", ["correlation", "euclidean", "sqeuclidean", "cosine"])
def test_metrics_equal_scipy(metric, rng):
    x = rng.normal(size=(23, 301)) + 3.0
    ours = compute_rdm(x, metric)
    np.testing.assert_allclose(ours.values, squareform(pdist(x, metric)), rtol=0, atol=1e-8)
    assert ours.dims == (ROW, COL)
    assert ours.attrs["metric"] == metric


@pytest.mark.parametrize("metric", ["correlation", "euclidean", "sqeuclidean", "cosine"])
def test_chunked_equals_unchunked(metric, rng):
    x = rng.normal(size=(17, 250)).astype(np.float32)
    whole = compute_rdm(x, metric)
    chunked = compute_rdm(x, metric, chunk_elements=17 * 7)  # 7 units per chunk
    np.testing.assert_allclose(chunked.values, whole.values, rtol=0, atol=1e-10)


def test_correlation_and_euclidean_equal_rsatoolbox(rng):
    x = rng.normal(size=(30, 120))
    data = rsatoolbox.data.Dataset(x)
    corr = rsatoolbox.rdm.calc_rdm(data, method="correlation").get_matrices()[0]
    np.testing.assert_allclose(compute_rdm(x, "correlation").values, corr, atol=1e-8)
    # rsatoolbox's "euclidean" is the squared distance divided by the number of channels
    eucl = rsatoolbox.rdm.calc_rdm(data, method="euclidean").get_matrices()[0]
    np.testing.assert_allclose(compute_rdm(x, "sqeuclidean").values / x.shape[1], eucl, atol=1e-8)


def test_large_offset_keeps_precision(rng):
    # Activations with a large common offset: the Gram trick must not lose the distances.
    x = rng.normal(size=(12, 64)) + 1e4
    np.testing.assert_allclose(compute_rdm(x, "euclidean").values, squareform(pdist(x)), rtol=1e-9, atol=1e-8)


def test_dataarray_input_keeps_ids_and_attrs(rng):
    acts = xr.DataArray(rng.normal(size=(5, 8)), dims=("presentation", "neuroid"),
                        coords={"stimulus_id": ("presentation", list("edcba"))}, attrs={"layer": "conv1"})
    rdm = compute_rdm(acts)
    assert list(rdm[ROW].values) == list("edcba")
    assert rdm.attrs["layer"] == "conv1"
    assert np.all(np.diag(rdm.values) == 0) and np.array_equal(rdm.values, rdm.values.T)


def test_upper_triangle_is_squareform_order(rng):
    m = squareform(rng.random(10))
    np.testing.assert_array_equal(upper_triangle(m), squareform(m))


@pytest.mark.parametrize(
    "x, metric, message",
    [
        (np.vstack([np.ones(5), np.arange(5.0), np.arange(5.0) ** 2]), "correlation", "constant"),
        (np.vstack([np.zeros(5), np.arange(5.0), np.arange(5.0) ** 2]), "cosine", "all zero"),
        (np.array([[1.0, np.nan], [2, 3], [4, 5]]), "euclidean", "NaN"),
        (np.ones((2, 4)), "euclidean", "at least 3"),
        (np.ones((4, 4)), "manhattan", "unknown RDM metric"),
    ],
)
def test_bad_input_is_one_clear_error(x, metric, message):
    with pytest.raises(RSABridgeError, match=message):
        compute_rdm(x, metric)


def test_duplicate_ids_rejected(rng):
    with pytest.raises(RSABridgeError, match="duplicate"):
        compute_rdm(rng.normal(size=(3, 4)), stimulus_ids=["a", "b", "a"])
