"""compare --measure procrustes/cca/svcca/pwcca/mutual_knn/cknna: one forward pass, scores, bootstrap, permutation
p-values and ceilings equal to feature-space computations on the network's own activations (issue 28)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from extractors import extract
from rsa_bridge.app.network import NetworkOptions
from rsa_bridge.app.pipeline import RDMOptions, StatsOptions, compare_model
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.measures import MEASURES
from rsa_bridge.measures.ceilings import half_means, mean_responses
from rsa_bridge.measures.scoring import MeasureOptions
from rsa_bridge.stats.resample import as_generator, bootstrap_stimuli, permutations
from tests.test_shape_measure import ref_cov_whiten, ref_shape_cv
from tests.test_gram_measures import (ref_canonical, ref_cov_cca, ref_mutual_knn, ref_pca,
                                      ref_procrustes_similarity, ref_pwcca)
from tests.test_measures_compare import N, Counting, _transform, toy  # noqa: F401  (toy: a fixture)

GRAM_MEASURES = [n for n, m in MEASURES.items() if m.gram_score is not None]
LAYERS = ["conv", "relu", "fc"]

#: feature-space references of each registered Gram measure (layer features x, neural responses r)
REFERENCES = {
    "procrustes": ref_procrustes_similarity,
    "shape": lambda x, r: ref_procrustes_similarity(ref_cov_whiten(x, 0.5), ref_cov_whiten(r, 0.5)),
    "shape_cv": lambda x, r: ref_shape_cv(x, r, 0.5, 5, seed=0),       # the run's --folds 5, --seed 0
    "cca": lambda x, r: ref_canonical(x, r)[0].mean(),
    "svcca": lambda x, r: ref_cov_cca(ref_pca(x, 0.99), ref_pca(r, 0.99)).mean(),
    "pwcca": ref_pwcca,
    "mutual_knn": lambda x, r: ref_mutual_knn(x, r, 10),
}


def feature_procrustes(x, r):
    """||Xc^T Rc||_* / (|Xc| |Rc|) in feature space (fast for wide layers; scipy's Procrustes is checked against
    the same number in tests/test_gram_measures.py)."""
    xc, rc = x - x.mean(0), r - r.mean(0)
    return np.linalg.svd(xc.T @ rc, compute_uv=False).sum() / (np.linalg.norm(xc) * np.linalg.norm(rc))


def _compare(toy, measures, bootstrap=0, permutations=0):
    root, ids, rates = toy
    network = NetworkOptions(layers=LAYERS, models=[Counting()], transform=_transform)
    return compare_model("toy", ["V1"], dataset=str(root / "toy.nc"), network=network, progress=False,
                         rdm=RDMOptions(batch_size=8), measures=measures,
                         measure_options=MeasureOptions(responses=rates, n_splits=5),
                         stats=StatsOptions(bootstrap=bootstrap, permutations=permutations, seed=0))


def _activations(toy):
    root, ids, rates = toy
    images = [Image.open(root / "stimuli" / f"{s}.png").convert("RGB") for s in ids]
    acts = extract(Counting(), torch.stack([_transform(im) for im in images]), LAYERS, stimulus_ids=ids,
                   batch_size=8)
    return {layer: acts[layer].values.astype(np.float64) for layer in LAYERS}


def test_registered_gram_measures():
    assert set(GRAM_MEASURES) == {"procrustes", "shape", "shape_cv", "cca", "svcca", "pwcca", "mutual_knn", "cknna"}
    for name in GRAM_MEASURES:
        m = MEASURES[name]
        assert m.needs_responses and m.definition and m.peers and m.reference and m.ceiling_short


def test_all_gram_measures_from_one_pass(toy):
    root, ids, rates = toy
    result = _compare(toy, ["rsa", *GRAM_MEASURES])
    t = result.table
    assert list(dict.fromkeys(t["measure"])) == ["rsa", *GRAM_MEASURES]
    acts = _activations(toy)
    resp = mean_responses(rates).sel(stimulus_id=ids).values
    for name, ref in REFERENCES.items():
        for layer in LAYERS:
            row = t[(t["measure"] == name) & (t["layer"] == layer)].iloc[0]
            assert row["similarity"] == pytest.approx(ref(acts[layer], resp), abs=1e-8), (name, layer)
            assert row["method"] == name
    assert list(result.results["measure"].values) == ["rsa", *GRAM_MEASURES]
    attrs = result.results.attrs           # each measure's settings recorded with the results
    assert (attrs["measure_shape_alpha"], attrs["measure_cknna_topk"], attrs["measure_svcca_keep"],
            attrs["measure_shape_cv_n_splits"]) == (0.5, 10, 0.99, 5)
    assert attrs["measure_statistics_scheme"].startswith("exact")
    assert (result.results["measure_definition"].values[1:] == [MEASURES[m].definition for m in GRAM_MEASURES]).all()


def test_bootstrap_permutation_and_ceiling_equal_feature_space(toy):
    root, ids, rates = toy
    result = _compare(toy, ["procrustes"], bootstrap=20, permutations=15)
    rows = result.table[result.table["measure"] == "procrustes"].set_index("layer").loc[LAYERS]
    acts = _activations(toy)
    resp = mean_responses(rates).sel(stimulus_id=ids).values
    rng = as_generator(0)
    samples = np.array([[feature_procrustes(acts[l][i], resp[i]) for l in LAYERS]
                        for i in bootstrap_stimuli(N, 20, rng)])
    observed = np.array([feature_procrustes(acts[l], resp) for l in LAYERS])
    null = np.array([[feature_procrustes(acts[l], resp[p]) for l in LAYERS] for p in permutations(N, 15, rng)])
    np.testing.assert_allclose(rows["ci_low"], np.percentile(samples, 2.5, axis=0), atol=1e-8)
    np.testing.assert_allclose(rows["ci_high"], np.percentile(samples, 97.5, axis=0), atol=1e-8)
    np.testing.assert_allclose(rows["p_best"], np.bincount(samples.argmax(1), minlength=3) / 20, atol=1e-12)
    np.testing.assert_allclose(rows["p_value"], (1 + (null >= observed - 1e-12).sum(0)) / 16, atol=1e-12)
    ceiling = np.mean([feature_procrustes(a, b) for a, b in half_means(rates, 10, 0, ids)])
    assert rows["measure_ceiling"].iloc[0] == pytest.approx(ceiling, abs=1e-10)
    np.testing.assert_allclose(rows["score_over_ceiling"], observed / ceiling, atol=1e-8)
    from rsa_bridge.app.report import format_table

    printed = format_table(result)
    assert "MEASURE procrustes: Procrustes similarity (procrustes)" in printed
    assert f"ceiling for V1: {ceiling:.4f} (split-half procrustes)" in printed
    assert "bootstrap samples over stimuli" in printed


def test_cli_measure_choices_come_from_the_registry(toy, tmp_path, capsys):
    from rsa_bridge.app.cli import main

    with pytest.raises(SystemExit) as info:
        main(["compare", "--help"])
    assert info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for name in MEASURES:
        assert name in help_text
    with pytest.raises(SystemExit) as info:
        main(["compare", "--model", "alexnet", "--area", "V4", "--measure", "netrep"])
    assert info.value.code == 2
    assert "procrustes" in capsys.readouterr().err     # argparse lists the registry's choices


def test_knn_measures_refuse_too_few_stimuli():
    with pytest.raises(RSABridgeError, match="at least 12 stimuli"):
        MEASURES["cknna"].check(11, MeasureOptions(), None)
    MEASURES["cknna"].check(12, MeasureOptions(), None)


@pytest.mark.parametrize("name", GRAM_MEASURES)
def test_a_constant_layer_scores_nan_with_a_warning(name):
    from rsa_bridge.measures.gram_scoring import gram_stats, layer_scores

    rng = np.random.default_rng(0)
    x, r = rng.normal(size=(15, 20)), rng.normal(size=(15, 4))
    kernels = np.stack([x @ x.T, np.full((15, 15), 2.0)])       # the second layer is constant over the stimuli
    with pytest.warns(RuntimeWarning, match=f"constant over the stimuli; its {name} is NaN"):
        score = layer_scores(MEASURES[name], kernels, r @ r.T)
        boot = 0 if MEASURES[name].resample_refusal else 5     # k-NN: refused (tests/test_shape_measure.py)
        st = gram_stats(MEASURES[name], kernels, r @ r.T, score, n_bootstrap=boot, n_permutations=3,
                        rng=np.random.default_rng(1))
    assert np.isfinite(score[0]) and np.isnan(score[1])
    if boot:
        assert np.isfinite(st.samples[:, 0]).all() and np.isnan(st.samples[:, 1]).all()
