"""Paired bootstrap differences between layers/models and the probability of being the best layer."""
from __future__ import annotations

import numpy as np
import pytest

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats import best_layer, bootstrap_pair_p, bootstrap_similarity, paired_difference
from rsa_bridge.stats.layers import pairwise_p

from _stats_reference import model_like, real_rdms


def test_pair_p_equals_rsatoolbox_bootstrap_pair_tests():
    from rsatoolbox.util.inference_util import bootstrap_pair_tests

    rng = np.random.default_rng(0)
    evaluations = np.round(rng.normal(size=(300, 4)) + [0, 0.1, 0.3, 0.0], 1)  # rounding makes ties
    evaluations[:150, 3] = evaluations[:150, 0]  # half the samples tied
    ref = bootstrap_pair_tests(evaluations)
    for i in range(4):
        for j in range(4):
            if i != j:
                assert bootstrap_pair_p(evaluations[:, i], evaluations[:, j]) == pytest.approx(ref[i, j], abs=1e-12)


def _boot(n_stimuli=40, n_samples=300, seed=0):
    it, hit = real_rdms(n_stimuli)
    good = model_like(it[0], 1, seed=1, noise=(0.3,))
    bad = model_like(it[0], 1, seed=2, noise=(3.0,))
    labels = np.concatenate([good, bad, model_like(it[0], 1, seed=3, noise=(3.0,))])
    return bootstrap_similarity(labels, {"IT": it, "hIT": hit}, n_samples=n_samples, seed=seed)


def test_paired_difference_of_a_planted_better_layer():
    boot = _boot()
    diff = paired_difference(boot, "0", "1", "IT")
    assert diff.difference == pytest.approx(boot.observed[0, 0] - boot.observed[1, 0])
    samples = boot.samples[:, 0, 0] - boot.samples[:, 1, 0]
    assert (diff.ci_low, diff.ci_high) == pytest.approx(tuple(np.quantile(samples, [0.025, 0.975])))
    assert diff.ci_low > 0 and diff.p_value == pytest.approx(1 / 300)
    assert diff.as_dict()["area"] == "IT" and "samples" not in diff.as_dict()
    matrix = pairwise_p(boot, "IT")
    assert matrix[0, 1] == diff.p_value and np.all(np.diag(matrix) == 1)


def test_equal_layers_are_rarely_called_different():
    """Two layers with the same expected similarity: the bootstrap pair test rejects at about alpha."""
    it, _ = real_rdms(30)
    rejections = 0
    for seed in range(40):
        layers = model_like(it[0], 2, seed=100 + seed, noise=(1.5, 1.5))
        boot = bootstrap_similarity(layers, {"IT": it}, n_samples=200, seed=seed)
        rejections += paired_difference(boot, "0", "1", "IT").p_value <= 0.05
    assert rejections / 40 <= 0.15


def test_best_layer_probabilities_count_the_winners():
    boot = _boot()
    table = best_layer(boot)
    assert list(table.columns) == ["area", "layer", "similarity", "p_best", "is_best", "n_samples"]
    for k, area in enumerate(boot.areas):
        rows = table[table["area"] == area]
        winners = np.argmax(boot.samples[:, :, k], axis=1)
        np.testing.assert_allclose(rows["p_best"], np.bincount(winners, minlength=3) / boot.n_samples)
        assert rows["p_best"].sum() == pytest.approx(1.0)
    best = table[table["is_best"]]
    assert list(best["layer"]) == ["0", "0"] and (best["p_best"] > 0.9).all()
    restricted = best_layer(boot, rows=["1", "2"])
    assert set(restricted["layer"]) == {"1", "2"}


def test_ties_share_the_best_layer_credit_and_unknown_names_fail():
    boot = _boot(n_samples=20)
    boot.samples[:, 2] = boot.samples[:, 0]  # an exact copy of the best layer
    table = best_layer(boot)
    it_rows = table[table["area"] == "IT"].set_index("layer")
    assert it_rows.loc["0", "p_best"] == pytest.approx(it_rows.loc["2", "p_best"])
    with pytest.raises(RSABridgeError, match="no layer"):
        paired_difference(boot, "0", "conv9", "IT")
    with pytest.raises(RSABridgeError, match="no area"):
        paired_difference(boot, "0", "1", "V4")
