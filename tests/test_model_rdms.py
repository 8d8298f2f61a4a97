"""Precomputed model RDMs from .mat and NetCDF files."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio
from scipy import stats
from scipy.spatial.distance import squareform

from rsa_bridge import RSABridgeError, load_dataset, read_model_rdms
from rsa_bridge.app.pipeline import compare_precomputed
from rsa_bridge.rdm import ROW


def _write_mat(path, rng, n=92):
    structs = np.zeros((1, 2), dtype=[("RDM", object), ("reprName", object), ("measModelName", object)])
    vecs = [rng.random(n * (n - 1) // 2) for _ in range(2)]
    for k, (name, meas) in enumerate([("conv1", "complete"), ("conv1", "smooth1sepFeat")]):
        structs[0, k] = (vecs[k][None, :], np.array([name]), np.array([meas]))
    sio.savemat(path, {"modelRDMs": structs})
    return vecs


def test_mat_struct_needs_ids_then_compares_by_id(tmp_path, rng):
    path = tmp_path / "m.mat"
    vecs = _write_mat(path, rng)
    with pytest.raises(RSABridgeError, match="without stimulus ids"):
        read_model_rdms(path)
    ids = [str(s) for s in load_dataset("kriegeskorte2008_92images")[ROW].values]
    rdms = read_model_rdms(path, stimulus_ids=ids)
    assert list(rdms["layer"].values) == ["conv1", "conv1:smooth1sepFeat"]
    result = compare_precomputed(rdms, ["IT"])
    it = load_dataset("kriegeskorte2008_92images")["IT"].values
    expected = stats.spearmanr(vecs[0], squareform(it)).statistic
    assert result.table.loc[0, "similarity"] == pytest.approx(expected, abs=1e-10)
    with pytest.raises(RSABridgeError, match="3 stimulus ids given for 92x92"):
        read_model_rdms(path, stimulus_ids=ids[:3])


def test_reversed_ids_change_nothing_but_order(tmp_path, rng):
    path = tmp_path / "m.mat"
    _write_mat(path, rng)
    ids = [str(s) for s in load_dataset("kriegeskorte2008_92images")[ROW].values]
    forward = compare_precomputed(read_model_rdms(path, stimulus_ids=ids), ["IT"]).table["similarity"]
    # Same file, but the user says its rows are in reverse order: a different (by-id) alignment.
    backward = compare_precomputed(read_model_rdms(path, stimulus_ids=ids[::-1]), ["IT"]).table["similarity"]
    assert not np.allclose(forward, backward)


def test_corrupt_mat(tmp_path):
    bad = tmp_path / "bad.mat"
    bad.write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 10)
    with pytest.raises(RSABridgeError, match="cannot read"):
        read_model_rdms(bad, stimulus_ids=["a"])


def test_real_a2020_file_against_rsatoolbox(shared_data):
    import rsatoolbox

    src = shared_data / "kriegeskorte2008_92images"
    ids = [str(s) for s in load_dataset("kriegeskorte2008_92images")[ROW].values]
    rdms = read_model_rdms(src / "modelRDMs_A2020.mat", stimulus_ids=ids)
    assert rdms.sizes["layer"] == 63
    result = compare_precomputed(rdms.sel(layer=["conv1", "fc8"]), ["IT"], dataset="kriegeskorte2008_92images")
    mit = rsatoolbox.rdm.RDMs(load_dataset("kriegeskorte2008_92images")["IT"].values[None])
    for layer, sim in zip(result.table["layer"], result.table["similarity"]):
        theirs = rsatoolbox.rdm.compare(rsatoolbox.rdm.RDMs(rdms.sel(layer=layer).values[None]), mit, "spearman")
        assert sim == pytest.approx(theirs[0, 0], abs=1e-10)
