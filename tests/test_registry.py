"""One helper for names (rsa_bridge.registry) and one record per metric / comparison method (definitions)."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import xarray as xr
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from rsa_bridge.compare import METHODS, compare_vectors
from rsa_bridge.definitions import COMPARISONS, DOT_METHODS, METRICS, RANK_METHODS
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.rdm import compute_rdm
from rsa_bridge.registry import Registry, close_matches, resolve_name, unknown_name


def test_resolve_exact_alias_case_and_did_you_mean():
    r = Registry("comparison method", {"spearman": 1, "pearson": 2}, aliases={"corr": "pearson"})
    assert r.resolve("pearson") == "pearson"
    assert r.resolve("corr") == "pearson"
    assert r.resolve("CORR") == "pearson"
    assert r.resolve("Spearman") == "spearman"
    with pytest.raises(RSABridgeError) as err:
        r.resolve("pearsn")
    assert str(err.value) == ("unknown comparison method 'pearsn'; choose one of spearman, pearson; "
                              "did you mean 'pearson'?")
    with pytest.raises(RSABridgeError) as err:  # close to an alias: the canonical name is suggested
        r.resolve("corrr")
    assert str(err.value).endswith("did you mean 'pearson'?")
    with pytest.raises(RSABridgeError) as err:
        r.resolve("xyz")
    assert "did you mean" not in str(err.value)
    assert "corr" not in r and "pearson" in r and list(r) == ["spearman", "pearson"]


def test_case_variants_that_are_ambiguous_are_refused():
    r = Registry("area", {"IT": 1, "it": 2})
    assert r.resolve("it") == "it"
    with pytest.raises(RSABridgeError, match="unknown area 'iT'"):
        r.resolve("iT")


def test_unknown_name_and_helpers():
    assert close_matches("it", ["V4", "IT", "hIT"]) == ["IT", "hIT"]
    assert unknown_name("area", "V5", ["V4", "IT"], hint="see `rsa-bridge datasets`") == (
        "unknown area 'V5'; choose one of V4, IT; did you mean 'V4'? (see `rsa-bridge datasets`)")
    assert resolve_name("format", "CSV", ["csv", "mat"]) == "csv"


def test_argparse_type_accepts_aliases_and_leaves_refusal_to_the_library(capsys):
    parser = argparse.ArgumentParser(prog="x")
    parser.add_argument("--method", type=COMPARISONS.argparse_type, choices=COMPARISONS.argparse_choices())
    assert parser.parse_args(["--method", "corr"]).method == "pearson"
    assert parser.parse_args(["--method", "tau-a"]).method == "kendall_tau_a"
    assert parser.parse_args(["--method", "spearmn"]).method == "spearmn"  # the library refuses it, in one line
    with pytest.raises(RSABridgeError, match="did you mean 'spearman'?"):
        compare_vectors(np.arange(4.0), np.arange(4.0), "spearmn")
    parser.print_help()
    assert "{" + ",".join(COMPARISONS) + "}" in capsys.readouterr().out


def test_alias_alias_points_to_a_record():
    with pytest.raises(ValueError):
        Registry("x", {"a": 1}, aliases={"b": "c"})


def test_every_rsatoolbox_name_is_accepted_and_means_the_same_method():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 3, 45))
    for name, record in COMPARISONS.items():
        if not record.rsatoolbox:  # a method rsatoolbox does not have
            continue
        assert COMPARISONS.resolve(record.rsatoolbox) == name
        np.testing.assert_array_equal(compare_vectors(a, b, record.rsatoolbox), compare_vectors(a, b, name))
    # an alias computes what scipy computes under that name
    np.testing.assert_allclose(compare_vectors(a[0], b[0], "corr")[0, 0], stats.pearsonr(a[0], b[0]).statistic,
                               atol=1e-12)
    np.testing.assert_allclose(compare_vectors(a[0], b[0], "SPEARMAN")[0, 0], stats.spearmanr(a[0], b[0]).statistic,
                               atol=1e-12)


def test_methods_are_built_from_the_records():
    from rsa_bridge import methods
    from rsa_bridge.chunked_compare import CHUNKED
    from rsa_bridge.stats import weighted
    from rsa_bridge.stats.ceiling import POOLS
    from rsa_bridge.stats.stores import STORE_METHODS

    assert list(METHODS) == list(COMPARISONS) == list(methods.METHODS) and len(COMPARISONS) >= 7
    for name, record in COMPARISONS.items():
        assert isinstance(record, methods.Method) and record.name == name
        assert METHODS[name] is record.similarity  # the view hands out the record's own function
        assert record.bootstrap == ("dot" if record.dot is not None else "masked")
        assert POOLS[name] is record.pool
    # every derived list is the records' capability, whatever methods exist
    assert DOT_METHODS == tuple(n for n, c in COMPARISONS.items() if c.dot is not None) == methods.names_with("dot")
    assert RANK_METHODS == tuple(n for n, c in COMPARISONS.items() if c.transform == "ranks")
    assert STORE_METHODS == tuple(CHUNKED) == tuple(n for n, c in COMPARISONS.items() if c.chunked is not None)
    assert weighted.DOT_METHODS == DOT_METHODS and weighted.RANK_METHODS == RANK_METHODS
    assert set(weighted.PREPARE) == set(DOT_METHODS)
    # one module per built-in method, holding its record
    for name, record in COMPARISONS.items():
        if record.source.startswith("rsa_bridge."):
            assert record.source == f"rsa_bridge.methods.{name}"


@pytest.mark.parametrize("name", list(METRICS))
def test_each_metric_definition_equals_scipy(name):
    x = np.random.default_rng(1).normal(size=(7, 20))
    got = compute_rdm(x, name.upper()).values  # case ignored
    np.testing.assert_allclose(got, squareform(pdist(x, METRICS[name].peers["scipy"])), atol=1e-12)
    assert compute_rdm(x, name.upper()).attrs["metric"] == name


@pytest.mark.parametrize("name", list(METRICS))
def test_what_a_constant_pattern_gets_follows_the_record(name):
    x = np.random.default_rng(2).normal(size=(5, 8))
    x[2] = 0.0  # constant and zero
    record = METRICS[name]
    if record.undefined_for is None:
        np.testing.assert_allclose(compute_rdm(x, name).values, squareform(pdist(x, record.peers["scipy"])),
                                   atol=1e-12)
    else:
        with pytest.raises(RSABridgeError, match=record.undefined_message()) as err:
            compute_rdm(x, name)
        assert "'2'" in str(err.value)


def test_unknown_metric_suggests_the_close_name():
    with pytest.raises(RSABridgeError, match="did you mean 'correlation'"):
        compute_rdm(np.eye(4), "corelation")


def test_compute_rdm_finds_the_stimulus_dimension_by_its_stimulus_id_coordinate():
    x = np.random.default_rng(3).normal(size=(6, 10))
    ids = [f"s{i}" for i in range(6)]
    units_first = xr.DataArray(x.T, dims=("neuroid", "presentation"),
                               coords={"stimulus_id": ("presentation", ids)})
    rdm = compute_rdm(units_first)
    np.testing.assert_allclose(rdm.values, squareform(pdist(x, "correlation")), atol=1e-12)
    assert list(rdm["stimulus_row"].values) == ids
    as_dim = xr.DataArray(x.T, dims=("unit", "stimulus_id"), coords={"stimulus_id": ids})
    np.testing.assert_allclose(compute_rdm(as_dim).values, rdm.values, atol=0)
