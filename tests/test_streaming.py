"""Streaming RDMs (extractors.streaming, rsa_bridge.gram) against compute_rdm, rsatoolbox and scipy."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr
from scipy import sparse
from scipy.spatial.distance import pdist, squareform
from torch import nn

from extractors import extract, load_model
from rsa_bridge.gram import GRAM_METRICS, gram_rdm
from extractors.streaming import CountSketch, stream_rdms
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.model_rdms import stack_rdms
from rsa_bridge.app.pipeline import network_rdms
from rsa_bridge.options import RDMOptions
from rsa_bridge.rdm import METRICS, compute_rdm

SCIPY = {"correlation": "correlation", "cosine": "cosine", "euclidean": "euclidean", "sqeuclidean": "sqeuclidean"}


@pytest.fixture(scope="module")
def alexnet() -> nn.Module:
    return load_model("alexnet", weights="none")


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(7, 3, 224, 224, generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def reference(alexnet, x):
    """The non-streaming path: full activations, then compute_rdm per layer."""
    return extract(alexnet, x, ["conv1", "conv5", "fc6", "fc8"], batch_size=3, progress=False)


def _rsatoolbox(data: np.ndarray, method: str) -> np.ndarray:
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm

    return calc_rdm(Dataset(np.asarray(data, dtype=np.float64)), method=method).get_matrices()[0]


def test_gram_metrics_are_the_core_metrics():
    assert sorted(GRAM_METRICS) == sorted(METRICS)


@pytest.mark.parametrize("metric", sorted(METRICS))
@pytest.mark.parametrize("budget", [math.inf, 0, 2_000_000])
def test_stream_equals_compute_rdm_scipy_and_rsatoolbox(alexnet, x, reference, metric, budget, tmp_path):
    # small blocks so that every layer is split into several unit blocks; budget 2 MB keeps some layers in memory
    options = RDMOptions(metric=metric, batch_size=3, memory_budget=budget, spill_dir=tmp_path,
                         chunk_bytes=7 * 8 * 5000)
    rdms = stream_rdms(alexnet, x, ["conv1", "conv5", "fc6", "fc8"], options, progress=False)
    assert list(rdms["layer"].values) == ["conv1", "conv5", "fc6", "fc8"]
    assert list(rdms["module_path"].values) == ["features.0", "features.10", "classifier.1", "classifier.6"]
    for layer, acts in reference.items():
        data = acts.values.astype(np.float64)
        got = rdms.sel(layer=layer).values
        assert int(rdms["n_units"].sel(layer=layer)) == data.shape[1]
        np.testing.assert_allclose(got, compute_rdm(acts, metric).values, rtol=0, atol=1e-8 * max(1, got.max()))
        np.testing.assert_allclose(got, squareform(pdist(data, SCIPY[metric])), rtol=1e-8, atol=1e-10)
        if metric == "correlation":
            np.testing.assert_allclose(got, _rsatoolbox(data, "correlation"), rtol=0, atol=1e-8)
        if metric == "sqeuclidean":  # rsatoolbox's euclidean is the squared distance divided by the units
            np.testing.assert_allclose(got / data.shape[1], _rsatoolbox(data, "euclidean"), rtol=1e-8, atol=1e-12)
    assert list(tmp_path.iterdir()) == []  # the spill folder is gone


def test_network_rdms_equals_the_old_path(alexnet, x, reference):
    new = network_rdms(alexnet, x, ["conv1", "conv5", "fc6", "fc8"], RDMOptions(batch_size=3), progress=False)
    old = stack_rdms({name: compute_rdm(acts, "correlation") for name, acts in reference.items()})
    xr.testing.assert_allclose(new.drop_attrs(), old.drop_attrs(), rtol=0, atol=1e-10)
    assert new.attrs["rdm_precision"] == "float64" and "reduce_units" not in new.attrs


def test_float32_precision_is_close(alexnet, x, reference):
    rdms = stream_rdms(alexnet, x, ["conv1", "fc8"], RDMOptions(precision="float32", batch_size=3), progress=False)
    for layer in ("conv1", "fc8"):
        exact = compute_rdm(reference[layer], "correlation").values
        np.testing.assert_allclose(rdms.sel(layer=layer).values, exact, rtol=0, atol=1e-5)
    assert rdms.attrs["rdm_precision"] == "float32"


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_gram_rdm_is_well_conditioned_with_offsets(metric):
    # a large common offset (mean >> spread): centring before the products keeps 1e-8 accuracy
    rng = np.random.default_rng(0)
    data = rng.normal(size=(20, 333)) + 1e3 * rng.normal(size=(1, 333))
    got = gram_rdm(torch.from_numpy(data), metric, chunk_bytes=20 * 8 * 50).numpy()
    expected = squareform(pdist(data, SCIPY[metric]))
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9)
    assert np.array_equal(got, got.T) and np.all(np.diag(got) == 0)


def test_count_sketch_is_the_dense_map_and_seeded():
    x = torch.randn(5, 1000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sketch = CountSketch(1000, 64, seed=7, name="conv1")
    dense = sketch.matrix().to(torch.float64)
    assert torch.equal((dense != 0).sum(dim=1), torch.ones(1000, dtype=torch.long))
    torch.testing.assert_close(sketch(x), x @ dense, rtol=0, atol=1e-12)
    again = CountSketch(1000, 64, seed=7, name="conv1")
    assert torch.equal(again.bucket, sketch.bucket) and torch.equal(again.sign, sketch.sign)
    assert not torch.equal(CountSketch(1000, 64, seed=8, name="conv1").bucket, sketch.bucket)
    assert not torch.equal(CountSketch(1000, 64, seed=7, name="conv2").bucket, sketch.bucket)


@pytest.mark.parametrize("metric", ["correlation", "euclidean"])
def test_reduced_layers_equal_the_dense_sketch_and_approximate_the_exact_rdm(alexnet, x, reference, metric):
    k = 2048
    options = RDMOptions(metric=metric, batch_size=3, reduce_units=k, reduce_seed=5, memory_budget=0)
    rdms = stream_rdms(alexnet, x, ["conv1", "conv5", "fc6", "fc8"], options, progress=False)
    assert rdms.attrs["reduce_units"] == k and rdms.attrs["reduce_seed"] == 5
    assert rdms.attrs["reduced_layers"] == "conv1,conv5,fc6"  # fc8 has 1000 units <= K: exact
    for layer, acts in reference.items():
        data = acts.values.astype(np.float64)
        exact = squareform(pdist(data, SCIPY[metric]))
        got = rdms.sel(layer=layer).values
        if layer == "fc8":
            np.testing.assert_allclose(got, exact, rtol=1e-8, atol=1e-10)
            continue
        sketch = CountSketch(data.shape[1], k, seed=5, name=layer)  # its map as a scipy sparse (p, K) matrix
        dense = sparse.csr_matrix((sketch.sign.numpy().astype(np.float64),
                                   (np.arange(data.shape[1]), sketch.bucket.numpy())), shape=(data.shape[1], k))
        if metric == "correlation":  # centre rows, sketch, cosine
            expected = squareform(pdist((data - data.mean(axis=1, keepdims=True)) @ dense, "cosine"))
        else:
            expected = squareform(pdist(data @ dense, "euclidean"))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)  # sketch stored in float32
        iu = np.triu_indices(len(data), 1)
        assert np.max(np.abs(got[iu] / exact[iu] - 1)) < 0.2  # K=2048: relative error ~ 1/sqrt(K) per entry


def test_network_rdms_records_the_reduction(alexnet, x):
    rdms = network_rdms(alexnet, x, ["conv1"], RDMOptions(batch_size=4, reduce_units=512, reduce_seed=1),
                        progress=False)
    assert rdms.attrs["reduce_units"] == 512 and "count sketch" in rdms.attrs["reduce_method"]
    assert int(rdms["n_units"].item()) == 64 * 55 * 55


def test_nan_stimulus_is_named_and_spill_is_removed(tmp_path):
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 9))
    inputs = torch.randn(6, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    inputs[4, 0, 0, 0] = float("nan")
    with pytest.raises(RSABridgeError, match="NaN or inf for stimuli.*'4'"):
        stream_rdms(net, inputs, ["1"], RDMOptions(memory_budget=0, spill_dir=tmp_path), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_constant_pattern_and_bad_options():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 9))
    inputs = torch.randn(5, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        net[1].weight[:] = 0.0  # every unit outputs the bias 1.0: each pattern is constant
        net[1].bias[:] = 1.0
    with pytest.raises(RSABridgeError, match="constant across units"):
        stream_rdms(net, inputs, ["1"], progress=False)
    for kwargs, message in [({"precision": "float16"}, "precision"), ({"reduce_units": 0}, "reduce_units"),
                            ({"metric": "manhattan"}, "unknown RDM metric"), ({"memory_budget": -1}, "memory_budget")]:
        with pytest.raises(RSABridgeError, match=message):
            stream_rdms(net, inputs, ["1"], RDMOptions(**kwargs), progress=False)


def test_progress_bars_only_when_asked(alexnet, x, capsys):
    stream_rdms(alexnet, x[:3], ["fc8"], RDMOptions(batch_size=2), progress=True)
    err = capsys.readouterr().err
    assert "activations" in err and "3/3" in err and "layer RDMs" in err
    stream_rdms(alexnet, x[:3], ["fc8"], RDMOptions(batch_size=2), progress=False)
    assert capsys.readouterr().err == ""


def test_early_exit_only_the_probe_reaches_later_modules(alexnet, x):
    """conv1-only: every module after features.0 runs once (the probe on one stimulus), never per batch."""
    calls: dict[str, int] = {}
    handles = []
    for path, module in alexnet.named_modules():
        if path and not list(module.children()):
            handles.append(module.register_forward_pre_hook(
                lambda m, args, path=path: calls.__setitem__(path, calls.get(path, 0) + 1)))
    try:
        stream_rdms(alexnet, x, ["conv1"], RDMOptions(batch_size=3), progress=False)
    finally:
        for handle in handles:
            handle.remove()
    batches = 3  # 7 stimuli in batches of 3
    assert calls["features.0"] == 1 + batches
    later = {p: c for p, c in calls.items() if p != "features.0"}
    assert later and set(later.values()) == {1}
    assert "classifier.6" in later


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("metric", sorted(METRICS))
def test_cuda_streaming_matches_cpu(x, metric):
    cpu = stream_rdms(load_model("alexnet", "none"), x, ["conv1", "fc8"], RDMOptions(metric=metric), progress=False)
    gpu = stream_rdms(load_model("alexnet", "none", device="cuda"), x, ["conv1", "fc8"],
                      RDMOptions(metric=metric, device="cuda", memory_budget=1_000_000), progress=False)
    np.testing.assert_allclose(gpu.values, cpu.values, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_clear_error(alexnet, x):
    with pytest.raises(RSABridgeError, match="CUDA is not available"):
        stream_rdms(alexnet, x, ["conv1"], RDMOptions(device="cuda"), progress=False)


def test_panelled_gram_equals_scipy_for_many_stimuli():
    # n >= 1024 splits the Gram into row panels (only i <= j panel pairs are multiplied, then mirrored)
    rng = np.random.default_rng(2)
    data = rng.normal(size=(1100, 40)) + 2.0
    for metric in ("correlation", "sqeuclidean"):
        got = gram_rdm(torch.from_numpy(data), metric, chunk_bytes=1100 * 8 * 16).numpy()
        np.testing.assert_allclose(got, squareform(pdist(data, SCIPY[metric])), rtol=1e-9, atol=1e-10)
        assert np.array_equal(got, got.T)


def test_gram_rdm_names_a_nan_stimulus():
    data = torch.randn(6, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    data[2, 7] = float("nan")
    with pytest.raises(RSABridgeError, match=r"NaN or inf.*'2'"):
        gram_rdm(data, "correlation")
