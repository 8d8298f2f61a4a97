"""Comparison methods against scipy and rsatoolbox; alignment by stimulus_id."""
from __future__ import annotations

import numpy as np
import pytest
import rsatoolbox
from scipy import stats
from scipy.spatial.distance import squareform

from rsa_bridge import RSABridgeError, compare_rdms, compare_vectors, compute_rdm
from rsa_bridge.compare import kendall_tau_a
from rsa_bridge.rdm import rdm_dataarray


def _pair(rng, n=20):
    a = squareform(rng.random(n * (n - 1) // 2))
    b = squareform(squareform(a) + rng.normal(scale=0.3, size=n * (n - 1) // 2))
    return a, b


def test_spearman_pearson_equal_scipy(rng):
    a, b = _pair(rng)
    va, vb = squareform(a), squareform(b)
    assert compare_rdms(a, b, "spearman") == pytest.approx(stats.spearmanr(va, vb).statistic, abs=1e-10)
    assert compare_rdms(a, b, "pearson") == pytest.approx(stats.pearsonr(va, vb).statistic, abs=1e-10)


@pytest.mark.parametrize("ours, theirs", [("spearman", "spearman"), ("pearson", "corr"), ("kendall_tau_a", "tau-a")])
def test_methods_equal_rsatoolbox(ours, theirs, rng):
    a, b = _pair(rng, 15)
    # ties, as in real RDMs with quantised values
    a = np.round(a, 1)
    ra, rb = rsatoolbox.rdm.RDMs(squareform(a)[None]), rsatoolbox.rdm.RDMs(squareform(b)[None])
    expected = rsatoolbox.rdm.compare(ra, rb, method=theirs)[0, 0]
    assert compare_rdms(a, b, ours) == pytest.approx(expected, abs=1e-10)


def test_kendall_tau_a_hand_worked():
    # pairs: (1,2) C, (1,3) C, (2,3) tie in a -> neither; tau_a = 2/3
    assert kendall_tau_a(np.array([1.0, 2.0, 2.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(2 / 3)


def test_compare_vectors_matrix_equals_pairwise(rng):
    a = rng.random((4, 45))
    b = rng.random((3, 45))
    m = compare_vectors(a, b, "spearman")
    for i in range(4):
        for j in range(3):
            assert m[i, j] == pytest.approx(stats.spearmanr(a[i], b[j]).statistic, abs=1e-12)


def test_alignment_by_id_not_position(rng):
    x = rng.normal(size=(10, 30))
    y = x + rng.normal(scale=0.5, size=x.shape)
    ids = [f"s{i}" for i in range(10)]
    model = compute_rdm(x, stimulus_ids=ids)
    neural = compute_rdm(y, stimulus_ids=ids)
    perm = rng.permutation(10)
    shuffled = compute_rdm(y[perm], stimulus_ids=[ids[p] for p in perm])
    assert compare_rdms(model, shuffled) == pytest.approx(compare_rdms(model, neural), abs=1e-12)
    # positional comparison of the shuffled matrix would differ: the alignment matters
    assert compare_rdms(model.values, shuffled.values) != pytest.approx(compare_rdms(model, neural), abs=1e-3)


def test_mismatched_ids_listed(rng):
    m = rdm_dataarray(squareform(rng.random(3)), ["a", "b", "c"])
    n = rdm_dataarray(squareform(rng.random(3)), ["a", "b", "zz"])
    with pytest.raises(RSABridgeError, match=r"only in the model RDM \('c'\).*only in the neural RDM \('zz'\)"):
        compare_rdms(m, n)


def test_constant_rdm_and_unknown_method(rng):
    a, _ = _pair(rng, 6)
    with pytest.raises(RSABridgeError, match="constant"):
        compare_rdms(a, squareform(np.ones(15)), "spearman")
    with pytest.raises(RSABridgeError, match="unknown comparison method"):
        compare_rdms(a, a, "mutual_information")
