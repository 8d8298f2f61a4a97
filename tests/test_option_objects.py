"""Issue 24: the public functions that took more than 10 parameters take option objects now.

Each old keyword is a TypeError that names the option field to use (no deprecation path); the options take
effect (checked against the same call's documented result, or a hand-worked case); a wrong options type is a
one-line RSABridgeError. The readers that take ``**options`` (``read_numpy``, ``read_mat``, the CLI) still take
``allow_missing=``/``attrs=`` and group them.
"""
from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

from rsa_bridge.errors import RSABridgeError
from stimuli.keywords import refuse_keywords


def _rdms(seed=0, n=10, k=3):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(k):
        x = rng.normal(size=(n, 4))
        d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
        out.append(d)
    return np.stack(out)


def _calls():
    """(callable, keyword, options type name, the parameter that takes it) per public function."""
    from analyses.unit_attributes import unit_attributes
    from rsa_bridge.measures.predictivity import linear_predictivity
    from rsa_bridge.neural.importers import from_array
    from rsa_bridge.neural.schema import make_rates
    from rsa_bridge.neural.synthetic_time import planted_latency_rates
    from rsa_bridge.stats import bootstrap_similarity, permutation_test
    from stimuli.fractals import make_fractal_set

    r = _rdms()
    rate_kw = dict(stimulus_ids=["a", "b"], repetitions=[0, 0], neuroid_ids=["n"], region="V4")
    return [
        (lambda **kw: bootstrap_similarity(r[:2], {"IT": r[2:]}, n_samples=3, seed=0, **kw), "scheme",
         "BootstrapOptions", "options"),
        (lambda **kw: permutation_test(r[:2], {"IT": r[2:]}, n_permutations=3, seed=0, **kw), "keep_null",
         "PermutationOptions", "options"),
        (lambda **kw: linear_predictivity(np.eye(10), np.ones((10, 2)), **kw), "alphas", "PredictivityOptions",
         "options"),
        (lambda **kw: make_rates(np.ones((2, 1)), **rate_kw, **kw), "attrs", "RatesOptions", "options"),
        (lambda **kw: from_array(np.ones((1, 2, 1)), stimulus_ids="s{i}", region="V4", **kw), "allow_missing",
         "RatesOptions", "options"),
        (lambda **kw: planted_latency_rates(**kw), "n_stimuli", "LatencyDesign", "design"),
        (lambda **kw: make_fractal_set("never-written", **kw), "size", "RenderSettings", "render"),
        (lambda **kw: unit_attributes(None, None, **kw), "batch_size", "Extraction", "extraction"),
    ]


@pytest.mark.parametrize("index", range(8))
def test_an_old_keyword_is_a_type_error_naming_the_field(index):
    call, keyword, options_type, parameter = _calls()[index]
    with pytest.raises(TypeError, match=rf"unexpected keyword argument '{keyword}'.*"
                                        rf"{parameter}={options_type}\({keyword}=\.\.\.\)"):
        call(**{keyword: 1})
    with pytest.raises(TypeError, match=rf"unexpected keyword argument 'no_such_knob'.*{options_type} fields"):
        call(no_such_knob=1)


def test_refuse_keywords_by_hand():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Knobs:
        depth: int = 1
        width: int = 2

    assert refuse_keywords("f", {}, Knobs) is None
    with pytest.raises(TypeError) as err:
        refuse_keywords("f", {"zeta": 0, "width": 3}, Knobs, "knobs")
    assert str(err.value) == ("f() got an unexpected keyword argument 'width': it moved into the options; pass "
                              "knobs=Knobs(width=...)")


def test_wrong_options_type_is_one_line():
    from rsa_bridge.measures.predictivity import linear_predictivity
    from rsa_bridge.neural.schema import make_rates
    from rsa_bridge.stats import BootstrapOptions, PermutationOptions, bootstrap_similarity, permutation_test

    r = _rdms()
    with pytest.raises(RSABridgeError, match="options must be a BootstrapOptions"):
        bootstrap_similarity(r[:2], {"IT": r[2:]}, n_samples=3, options=PermutationOptions())
    with pytest.raises(RSABridgeError, match="options must be a PermutationOptions"):
        permutation_test(r[:2], {"IT": r[2:]}, n_permutations=3, options=BootstrapOptions())
    with pytest.raises(RSABridgeError, match="options must be a PredictivityOptions"):
        linear_predictivity(np.eye(10), np.ones((10, 2)), options={"alphas": (1.0,)})
    with pytest.raises(RSABridgeError, match="options must be a RatesOptions"):
        make_rates(np.ones((2, 1)), stimulus_ids=["a", "b"], repetitions=[0, 0], neuroid_ids=["n"], region="V4",
                   options={"attrs": {}})


def test_the_options_take_effect():
    from rsa_bridge.neural.schema import RatesOptions, make_rates
    from rsa_bridge.stats import BootstrapOptions, PermutationOptions, bootstrap_similarity, permutation_test

    r = _rdms(1, n=12)
    given = np.sort(np.random.default_rng(5).integers(0, 12, size=(4, 12)), axis=1)
    boot = bootstrap_similarity(r[:2], {"IT": r[2:]}, n_samples=4, seed=0,
                                options=BootstrapOptions(stimulus_indices=given, scheme="exact", progress=False))
    np.testing.assert_array_equal(boot.stimulus_indices, given)
    # sample 0 by hand: Spearman over the pairs of distinct drawn stimuli, weighted by their counts
    from scipy.stats import spearmanr

    idx = given[0]
    iu = np.triu_indices(len(idx), 1)
    keep = idx[iu[0]] != idx[iu[1]]
    a, b = r[0][idx][:, idx][iu][keep], r[2][idx][:, idx][iu][keep]
    assert boot.samples[0, 0, 0] == pytest.approx(spearmanr(a, b)[0], abs=1e-10)
    perms = np.stack([np.random.default_rng(k).permutation(12) for k in range(5)])
    perm = permutation_test(r[:2], {"IT": r[2:]}, n_permutations=5, seed=0,
                            options=PermutationOptions(permutation_indices=perms, keep_null=False, progress=False))
    assert perm.null is None
    observed = spearmanr(r[0][np.triu_indices(12, 1)], r[2][np.triu_indices(12, 1)])[0]
    nulls = [spearmanr(r[0][p][:, p][np.triu_indices(12, 1)], r[2][np.triu_indices(12, 1)])[0] for p in perms]
    assert perm.p_value[0, 0] == pytest.approx((1 + sum(x >= observed for x in nulls)) / 6)
    kept = make_rates(np.array([[1.0, 2.0], [1.0, 3.0]]), stimulus_ids=["a", "b"], repetitions=[0, 0],
                      neuroid_ids=["flat", "varies"], region="V4",
                      options=RatesOptions(drop_constant=False, attrs={"source": "hand"}))
    assert list(kept["neuroid_id"].values) == ["flat", "varies"] and kept.attrs["source"] == "hand"


def test_the_readers_still_group_rates_keywords(tmp_path):
    from rsa_bridge.neural.importers import read_numpy

    array = np.arange(12.0).reshape(2, 3, 2)
    array[0, 1, 1] = np.nan  # one neuroid missing in one repetition
    np.save(tmp_path / "a.npy", array)
    with pytest.raises(RSABridgeError, match="NaN"):
        read_numpy(tmp_path / "a.npy", stimulus_ids="s{i}", region="V4")
    rates = read_numpy(tmp_path / "a.npy", stimulus_ids="s{i}", region="V4", allow_missing=True, attrs={"x": "y"})
    assert rates.attrs["missing"] == "allowed" and rates.attrs["x"] == "y" and rates.attrs["source_format"] == "numpy"


@pytest.mark.parametrize("module", ["stimuli.keywords", "rsa_bridge.stats.run_options", "rsa_bridge.measures.inputs",
                                    "rsa_bridge.neural.synthetic_time", "rsa_bridge.neural.schema",
                                    "rsa_bridge.neural.rates_options", "rsa_bridge.neural.importers",
                                    "rsa_bridge.measures.predictivity", "rsa_bridge.stats.backends"])
def test_the_new_examples_run(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
