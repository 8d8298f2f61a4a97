"""compare with the model RDMs in an RDM store (--rdm-store) equals the dense path for the same seed."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import extractors
from rsa_bridge.app.pipeline import compare_model
from rsa_bridge.options import RDMOptions, StatsOptions
from rsa_bridge.stats import subset
from tests.helpers import make_rdm_dataset, make_stimuli

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
LAYERS = ["conv1", "conv5", "fc8"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    ids = make_stimuli(root / "stimuli", n=24, size=32)
    make_rdm_dataset(root / "toy.nc", ids)
    return root, ids


@pytest.fixture(scope="module")
def alexnet():
    return extractors.load_model("alexnet", weights="none")


@pytest.fixture
def small_schemes(monkeypatch):
    """The large-N schemes at toy size: subsets of 12 of the 24 stimuli."""
    monkeypatch.setattr(subset, "EXACT_MAX_STIMULI", 16)
    monkeypatch.setattr(subset, "SUBSET_STIMULI", 12)


def _run(toy, alexnet, tmp_path, store, **rdm):
    from rsa_bridge.app.report import write_outputs

    root, _ = toy
    result = compare_model("alexnet", dataset=str(root / "toy.nc"), layers=LAYERS, model=alexnet, cache=False,
                           rdm=RDMOptions(batch_size=8, store=store, **rdm), progress=False,
                           stats=StatsOptions(bootstrap=40, permutations=30, seed=3))
    write_outputs(result, tmp_path / store)
    return result


def test_store_path_equals_the_dense_path(toy, alexnet, tmp_path, small_schemes):
    dense = _run(toy, alexnet, tmp_path, "auto")
    disk = _run(toy, alexnet, tmp_path, "disk")
    assert dense.results.attrs["rdm_store"] == "none (dense arrays)"
    assert disk.results.attrs["rdm_store"] == "disk" and disk.results.attrs["rdm_storage"] == "float64"
    assert "subset" in disk.results["similarity_bootstrap"].attrs["bootstrap_scheme"]
    for column in ("similarity", "sem", "ci_low", "ci_high", "p_value", "p_holm", "p_best"):
        np.testing.assert_allclose(disk.table[column].to_numpy(), dense.table[column].to_numpy(), rtol=0, atol=1e-12,
                                   err_msg=column)
    np.testing.assert_allclose(disk.results["similarity_bootstrap"].values,
                               dense.results["similarity_bootstrap"].values, rtol=0, atol=1e-12)
    with xr.open_dataset(tmp_path / "auto" / "model_rdms.nc") as a, xr.open_dataset(tmp_path / "disk" / "model_rdms.nc") as b:
        assert list(a["layer"].values) == list(b["layer"].values) == LAYERS
        assert list(a["stimulus_row"].values) == list(b["stimulus_row"].values)
        assert a["rdm"].dtype == b["rdm"].dtype == np.float64
        np.testing.assert_allclose(b["rdm"].values, a["rdm"].values, rtol=0, atol=1e-12)
        assert list(b["module_path"].values) == list(a["module_path"].values)


def test_float32_storage_states_its_error(toy, alexnet, tmp_path):
    dense = _run(toy, alexnet, tmp_path, "auto")
    mem = _run(toy, alexnet, tmp_path, "memory", storage="float32")
    assert mem.results.attrs["rdm_store"] == "memory" and mem.results.attrs["rdm_storage"] == "float32"
    assert "2^-24" in mem.results.attrs["rdm_storage_error"]
    # float32 entries move a Spearman similarity by far less than 1e-4 here
    np.testing.assert_allclose(mem.table["similarity"].to_numpy(), dense.table["similarity"].to_numpy(), atol=1e-4)
    with xr.open_dataset(tmp_path / "memory" / "model_rdms.nc") as b:
        assert b["rdm"].dtype == np.float32


def _cli(args, capsys):
    from rsa_bridge.app.cli import main

    try:
        code = main(args)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr()


def test_cli_rdm_store_disk_and_its_errors(toy, tmp_path, capsys):
    root, _ = toy
    base = ["compare", "--model", "alexnet", "--weights", "none", "--dataset", str(root / "toy.nc"),
            "--layers", "conv1,fc8", "--bootstrap", "20", "--quiet", "--no-cache", "--batch-size", "8"]
    code, out = _cli(base + ["--rdm-store", "disk", "--out", str(tmp_path / "out")], capsys)
    assert code == 0, out.err
    attrs = xr.open_dataset(tmp_path / "out" / "results.nc").attrs
    assert attrs["rdm_store"] == "disk" and attrs["rdm_storage"] == "float64"
    code, out = _cli(base + ["--rdm-store", "disk", "--method", "whitened_cosine"], capsys)
    assert code == 2 and "not available" in out.err and len(out.err.strip().splitlines()) == 1
    code, out = _cli(base + ["--rdm-store", "floppy"], capsys)
    assert code == 2 and "unknown RDM store 'floppy'" in out.err and len(out.err.strip().splitlines()) == 1


def test_store_that_cannot_fit_is_one_line_before_any_forward_pass(monkeypatch):
    import types

    import psutil

    from rsa_bridge.app.pipeline import compare_models
    from rsa_bridge.errors import RSABridgeError

    monkeypatch.setattr(psutil, "virtual_memory", lambda: types.SimpleNamespace(available=2 ** 20))
    monkeypatch.setattr(extractors, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(RSABridgeError, match=r"640 stimuli: even with --rdm-store disk the job needs about") as err:
        compare_models(["alexnet"], ["V4"], weights="none", cache=False, rdm=RDMOptions(store="disk"))
    assert "\n" not in str(err.value)
    with pytest.raises(RSABridgeError, match="not available when the model RDMs live in a store"):
        compare_models(["alexnet"], ["V4"], weights="none", cache=False, method="kendall_tau_a",
                       rdm=RDMOptions(store="memory"))


def test_store_path_never_holds_the_dense_layer_stack(toy, alexnet, tmp_path, monkeypatch):
    """The extraction puts each finished layer into the store (stream_rdms(out_store=)): no (layer, n, n) array
    is made and then converted, and the model-RDM cache (dense entries) is not used on the store path."""
    import extractors.streaming as streaming
    from rsa_bridge.rdm_store import RDMStore

    def refuse(*args, **kwargs):
        raise AssertionError("the store path converted a dense (layer, n, n) array")

    monkeypatch.setattr(RDMStore, "from_dataarray", classmethod(refuse))
    seen = []
    real = streaming.stream_rdms

    def spy(*args, **kwargs):
        seen.append(kwargs.get("out_store"))
        return real(*args, **kwargs)

    monkeypatch.setattr(streaming, "stream_rdms", spy)
    result = _run(toy, alexnet, tmp_path, "disk")
    assert seen and all(isinstance(s, RDMStore) for s in seen)
    assert result.results.attrs["rdm_store"] == "disk"
