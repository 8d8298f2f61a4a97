"""StatsOptions validated when built; the statistics planner chooses once and the results record each choice."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import pdist, squareform

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.options import StatsOptions
from rsa_bridge.rdm import COL, ROW
from rsa_bridge.stats import BootstrapOptions, PermutationOptions, subset
from rsa_bridge.stats.plan import SchemeChoice, choose_scheme, plan_statistics


# --- StatsOptions: one RSABridgeError line when built -------------------------------------------------------------

@pytest.mark.parametrize("kwargs, words", [
    ({"bootstrap": -5}, "bootstrap must be a whole number >= 0"),
    ({"permutations": -1}, "permutations must be a whole number >= 0"),
    ({"bootstrap": 2.5}, "bootstrap must be a whole number"),
    ({"bootstrap": True}, "bootstrap must be a whole number"),
    ({"ci_level": 7}, "ci_level must lie strictly between 0 and 1"),
    ({"ci_level": 0.0}, "ci_level must lie strictly between 0 and 1"),
    ({"ci_level": 1.0}, "ci_level must lie strictly between 0 and 1"),
    ({"ci_level": "0.9"}, "ci_level must lie strictly between 0 and 1"),
    ({"bootstrap_over": "subjects"}, "bootstrap_over must be one of stimuli, rdms, both"),
    ({"scheme": "fast"}, "scheme must be one of auto, exact, subset"),
    ({"normalize_by_ceiling": "middle"}, "normalize_by_ceiling must be one of upper, lower (or None)"),
    ({"seed": -1}, "seed must be a whole number from 0"),
    ({"ceiling": "yes"}, "ceiling is True or False"),
    ({"group_by": ""}, "group_by is 'auto', 'none' or a replicate coordinate name"),
])
def test_bad_stats_options_are_one_line_when_built(kwargs, words):
    with pytest.raises(RSABridgeError) as err:
        StatsOptions(**kwargs)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_good_stats_options_are_kept_and_normalised():
    options = StatsOptions(bootstrap=np.int64(10), permutations=0, seed=None, ci_level=0.9, scheme="exact",
                           bootstrap_over="both", normalize_by_ceiling="upper", group_by="subject")
    assert options.bootstrap == 10 and type(options.bootstrap) is int and options.ci_level == 0.9
    assert options.seed is None and options.scheme == "exact"
    assert options.attrs()["stats_scheme"] == "exact"


def test_the_cli_refuses_a_negative_bootstrap_in_one_line(capsys):
    from tests.helpers import cli_code

    code = cli_code(["compare", "--model", "pixels", "--area", "IT", "--bootstrap", "-5"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--bootstrap" in err and len(err.splitlines()) == 1


# --- the planner: hand-worked choices ------------------------------------------------------------------------------

@pytest.mark.parametrize("n, options, boot, perm", [
    (2000, StatsOptions(bootstrap=10, permutations=10), "exact", "exact"),        # the threshold itself: exact
    (2001, StatsOptions(bootstrap=10, permutations=10), "subset", "subset"),
    (5000, StatsOptions(bootstrap=10, permutations=10, scheme="exact"), "exact", "exact"),
    (100, StatsOptions(bootstrap=10, permutations=10, scheme="subset"), "subset", "subset"),
    (5000, StatsOptions(bootstrap=10, permutations=10, bootstrap_over="rdms"), "exact", "subset"),
    (5000, StatsOptions(bootstrap=10, permutations=10, bootstrap_over="both"), "exact", "subset"),
    (5000, StatsOptions(bootstrap=0, permutations=10), None, "subset"),
    (5000, StatsOptions(bootstrap=10, permutations=0), "subset", None),
])
def test_the_planner_chooses_each_scheme_once(n, options, boot, perm):
    plan = plan_statistics(options, n, method="pearson")
    assert (plan.bootstrap.scheme if plan.bootstrap else None) == boot
    assert (plan.permutation.scheme if plan.permutation else None) == perm
    assert plan.backend == ("numpy" if boot else None)  # pearson: the numpy dot path
    if perm == "subset":
        assert plan.permutation.subset_stimuli == min(1000, n) and plan.permutation.subsets == 1
    if boot == "subset":
        assert plan.bootstrap.subset_stimuli == min(1000, n) and plan.bootstrap.subsets == 25


def test_the_plan_is_frozen_and_records_its_choices():
    import dataclasses

    plan = plan_statistics(StatsOptions(bootstrap=10, permutations=10), 2500, method="spearman", store=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.path = "dense"
    attrs = plan.attrs()
    assert attrs["stats_path"] == "store" and attrs["permutation_subset_stimuli"] == 1000
    assert attrs["bootstrap_scheme"] == ("subset m-out-of-n: random subsets of 1000 of 2500 stimuli, 25 subsets, "
                                         "deviations scaled by sqrt(k/n)")
    assert attrs["permutation_scheme"].startswith("subset m-out-of-n: random subsets of 1000 of 2500 stimuli, "
                                                  "one subset")
    with pytest.raises(RSABridgeError):
        plan_statistics({"bootstrap": 10}, 100, method="pearson")


def test_given_index_sets_always_run_exactly():
    assert choose_scheme("bootstrap", "subset", 5000, given_indices=True).scheme == "exact"
    choice = SchemeChoice("permutation", "subset", 50, 30, 1, 40)
    assert choose_scheme("permutation", choice, 50) is choice  # a plan's choice passes through


# --- the bootstrap and the permutation test follow the plan -------------------------------------------------------

def _toy(n: int, layers: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    rates = rng.normal(size=(n, 6))
    brain = squareform(pdist(rates, "correlation"))
    model = np.stack([squareform(pdist(rates + s * rng.normal(size=rates.shape), "correlation"))
                      for s in (0.5, 3.0)[:layers]])
    return model, brain


def test_a_planned_subset_permutation_equals_the_hand_drawn_subset(monkeypatch):
    from rsa_bridge.stats import as_generator, permutation_test

    monkeypatch.setattr(subset, "EXACT_MAX_STIMULI", 40)
    monkeypatch.setattr(subset, "SUBSET_STIMULI", 30)
    model, brain = _toy(60)
    plan = plan_statistics(StatsOptions(permutations=19), 60, method="pearson")
    got = permutation_test(model, {"IT": brain[None]}, method="pearson", n_permutations=19, seed=4,
                           options=PermutationOptions(scheme=plan.permutation))
    rng = as_generator(4)  # by hand: the one subset first, then its permutations, from the same Generator
    idx = np.sort(rng.choice(60, size=30, replace=False))
    ref = permutation_test(model[:, idx][:, :, idx], {"IT": brain[idx][:, idx][None]}, method="pearson",
                           n_permutations=19, seed=rng, options=PermutationOptions(scheme="exact"))
    np.testing.assert_array_equal(got.p_value, ref.p_value)
    assert got.attrs()["permutation_subset_stimuli"] == 30 and "30 of 60" in got.attrs()["permutation_scheme"]


def test_a_planned_exact_choice_overrides_auto_above_the_threshold(monkeypatch):
    from rsa_bridge.stats import bootstrap_similarity

    monkeypatch.setattr(subset, "EXACT_MAX_STIMULI", 20)
    model, brain = _toy(30)
    plan = plan_statistics(StatsOptions(bootstrap=15, scheme="exact"), 30, method="pearson")
    got = bootstrap_similarity(model, {"IT": brain[None]}, method="pearson", n_samples=15, seed=2,
                               options=BootstrapOptions(scheme=plan.bootstrap))
    ref = bootstrap_similarity(model, {"IT": brain[None]}, method="pearson", n_samples=15, seed=2,
                               options=BootstrapOptions(scheme="exact"))
    auto = bootstrap_similarity(model, {"IT": brain[None]}, method="pearson", n_samples=15, seed=2)
    np.testing.assert_array_equal(got.samples, ref.samples)
    assert got.scheme["bootstrap_scheme"] == "exact" and auto.scheme["bootstrap_scheme"].startswith("subset")


# --- the results record the choices: 2,500 stimuli, synthetic RDMs, no forward pass --------------------------------

def _dataset_and_model(n: int, seed: int = 0):
    model, brain = _toy(n, seed=seed)
    ids = [f"s{k:05d}" for k in range(n)]
    ds = xr.Dataset({"V1": ((ROW, COL), brain, {"metric": "correlation"})}, coords={ROW: ids, COL: ids},
                    attrs={"name": "synthetic"})
    rdms = xr.DataArray(model, dims=("layer", ROW, COL), coords={"layer": ["l1", "l2"], ROW: ids, COL: ids},
                        attrs={"metric": "correlation"})
    return ds, rdms


@pytest.fixture(scope="module")
def large():
    from rsa_bridge.app.pipeline import compare_precomputed

    ds, rdms = _dataset_and_model(2500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = compare_precomputed(rdms, ["V1"], dataset=ds, method="pearson", model_name="toy",
                                     stats=StatsOptions(bootstrap=4, permutations=9, seed=1, ceiling=False))
    return ds, rdms, result


def test_results_at_2500_stimuli_record_the_permutation_scheme_and_subset_size(large):
    _, _, result = large
    attrs = result.results.attrs
    assert attrs["permutation_scheme"].startswith("subset m-out-of-n: random subsets of 1000 of 2500 stimuli")
    assert attrs["permutation_subset_stimuli"] == 1000 and attrs["permutation_exact_max_stimuli"] == 2000
    assert attrs["bootstrap_scheme"].startswith("subset m-out-of-n: random subsets of 1000 of 2500 stimuli")
    assert attrs["bootstrap_subset_stimuli"] == 1000 and attrs["bootstrap_backend"] == "numpy"
    assert attrs["stats_path"] == "dense" and attrs["stats_scheme"] == "auto"
    assert attrs["permutation_executor"] == "serial"
    p_attrs = result.results["p_value"].attrs
    assert p_attrs["permutation_scheme"] == attrs["permutation_scheme"]
    assert p_attrs["permutation_subset_stimuli"] == 1000 and p_attrs["permutation_n"] == 9
    p = result.results["p_value"].values
    assert np.all((p >= 0.1) & (p <= 1.0))  # 9 permutations: p in {0.1, 0.2, ..., 1}
    np.testing.assert_allclose(p * 10, np.round(p * 10), atol=1e-12)


def test_the_footnote_names_a_subset_permutation_scheme(large):
    from rsa_bridge.app.report import format_table

    text = format_table(large[2])
    assert "* permutation scheme: subset m-out-of-n: random subsets of 1000 of 2500 stimuli" in text
    assert "the p-values have the power of 1000 stimuli" in text
    assert "[..] bootstrap scheme: subset m-out-of-n" in text


def test_the_scheme_option_reaches_the_results_and_the_footnote(large):
    from rsa_bridge.app.pipeline import compare_precomputed
    from rsa_bridge.app.report import format_table

    ds, rdms, _ = large
    result = compare_precomputed(rdms, ["V1"], dataset=ds, method="pearson", model_name="toy",
                                 stats=StatsOptions(permutations=3, seed=1, ceiling=False, scheme="exact"))
    assert result.results.attrs["permutation_scheme"] == "exact"
    assert "permutation_subset_stimuli" not in result.results.attrs
    assert result.results["p_value"].attrs["permutation_scheme"] == "exact"
    assert "permutation scheme:" not in format_table(result)


def test_a_store_job_is_planned_on_the_store_path(monkeypatch):
    from rsa_bridge.app.pipeline import compare_precomputed
    from rsa_bridge.rdm_store import RDMStore

    monkeypatch.setattr(subset, "EXACT_MAX_STIMULI", 40)
    monkeypatch.setattr(subset, "SUBSET_STIMULI", 30)
    ds, rdms = _dataset_and_model(60)
    store = RDMStore([str(s) for s in rdms[ROW].values])
    rows, cols = np.triu_indices(60, k=1)
    for layer in ("l1", "l2"):
        store.put(layer, rdms.sel(layer=layer).values[rows, cols])
    stats = StatsOptions(bootstrap=6, permutations=9, seed=2, ceiling=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        stored = compare_precomputed(store, ["V1"], dataset=ds, method="pearson", model_name="toy", stats=stats)
        dense = compare_precomputed(rdms, ["V1"], dataset=ds, method="pearson", model_name="toy", stats=stats)
    assert stored.results.attrs["stats_path"] == "store" and dense.results.attrs["stats_path"] == "dense"
    for key in ("bootstrap_scheme", "permutation_scheme", "permutation_subset_stimuli"):
        assert stored.results.attrs[key] == dense.results.attrs[key], key
    np.testing.assert_allclose(stored.results["p_value"].values, dense.results["p_value"].values, atol=1e-12)


# --- compare_statistics takes the options whole --------------------------------------------------------------------

def test_compare_statistics_old_keywords_warn_and_equal_the_options_object():
    from rsa_bridge.stats.summary import compare_statistics

    ds, rdms = _dataset_and_model(40)
    rows = rdms.rename(layer="model_layer").assign_coords(model_layer=["toy:l1", "toy:l2"])
    new = compare_statistics(rows, ds, ["V1"], "pearson", StatsOptions(permutations=19, ceiling=False),
                             rng=np.random.default_rng(5))
    with pytest.warns(DeprecationWarning, match="pass one StatsOptions"):
        old = compare_statistics(rows, ds, ["V1"], "pearson", n_permutations=19, ceiling=False,
                                 rng=np.random.default_rng(5))
    np.testing.assert_array_equal(new.p_value, old.p_value)
    assert new.plan.permutation.scheme == "exact" and new.plan.options.permutations == 19
    with pytest.raises(TypeError, match="n_boot"):
        compare_statistics(rows, ds, ["V1"], "pearson", n_boot=3)
