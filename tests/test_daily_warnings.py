"""Issue 25 item 7: library warnings become sentences. numpy's "Mean of empty slice" and friends never reach
the user raw: the statistics avoid them (rsa_bridge.finite), and ``compare``'s note lines translate whatever
slips through (rsa_bridge.app.notes)."""
from __future__ import annotations

import argparse
import warnings

import numpy as np
import pytest
from scipy import stats

from rsa_bridge.app.notes import LIBRARY_NOTES, note, notes
from rsa_bridge.finite import finite_mean


def test_finite_mean_equals_nanmean_and_is_silent_on_empty_slices():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 5))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[:, 3] = np.nan  # an all-NaN column
    x[2, 1] = np.inf  # inf counts as missing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got0, got1, whole = finite_mean(x, axis=0), finite_mean(x, axis=1), finite_mean(x)
        assert np.isnan(finite_mean(np.full(4, np.nan)))
    y = np.where(np.isfinite(x), x, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want0, want1 = np.nanmean(y, axis=0), np.nanmean(y, axis=1)
    np.testing.assert_allclose(got0, want0, rtol=0, atol=1e-15, equal_nan=True)
    np.testing.assert_allclose(got1, want1, rtol=0, atol=1e-15, equal_nan=True)
    assert np.isnan(got0[3]) and whole == pytest.approx(np.mean(y[np.isfinite(y)]), abs=1e-15)


def test_neuroid_reliability_names_neuroids_without_one_instead_of_mean_of_empty_slice():
    from rsa_bridge.neural import schema as S
    from rsa_bridge.neural.reliability import neuroid_reliability
    from rsa_bridge.stats.split_half import spearman_brown

    rng = np.random.default_rng(0)
    values = rng.normal(size=(40, 6))
    values[8:, 2] = np.nan  # n2 measured for 2 stimuli only: no split has 3 stimuli in both halves
    rates = S.make_rates(values, stimulus_ids=np.repeat([f"s{k}" for k in range(10)], 4),
                         repetitions=[0, 1, 2, 3] * 10, neuroid_ids=[f"n{k}" for k in range(6)], region="IT",
                         options=S.RatesOptions(allow_missing=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rel = neuroid_reliability(rates, n_splits=5)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "empty slice" in m], messages  # numpy's words used to come through
    (said,) = [m for m in messages if "split-half reliability" in m]
    assert said.startswith("1 of 6 neuroids ('n2') have no split-half reliability") and "n/a" in said
    raw = neuroid_reliability(rates, n_splits=5, return_splits=True).values
    corrected = spearman_brown(raw)
    want = [np.mean(corrected[:, j]) for j in range(6) if j != 2]  # every split defined for the others
    np.testing.assert_allclose(np.delete(rel.values, 2), want, rtol=0, atol=1e-12)
    assert np.isnan(rel.values[2])


def test_library_messages_become_sentences_and_ours_pass_unchanged():
    ours = "area(s) IT have a single RDM: bootstrapping over RDMs cannot estimate their uncertainty"
    assert note(ours) == ours
    assert note("  two\n lines ") == "two lines"  # one line each
    cases = {"Mean of empty slice": "empty", "All-NaN slice encountered": "empty",
             "Degrees of freedom <= 0 for slice": "dof", "invalid value encountered in divide": "invalid",
             "divide by zero encountered in log": "divide", "overflow encountered in multiply": "overflow"}
    for message, key in cases.items():
        assert note(message) == LIBRARY_NOTES[key].sentence, message
    assert note("An input array is constant; the correlation coefficient is not defined.",
                stats.ConstantInputWarning) == LIBRARY_NOTES["constant"].sentence
    odd = note("something new", stats.DegenerateDataWarning)  # a library class, an unknown message
    assert odd.startswith("scipy reported a numerical problem (something new)")
    assert notes([("Mean of empty slice", RuntimeWarning), ("All-NaN slice encountered", RuntimeWarning),
                  (ours, RuntimeWarning)]) == [LIBRARY_NOTES["empty"].sentence, ours]  # one line per note


def test_compare_prints_sentences_not_numpys_words(monkeypatch, capsys):
    """The case that used to print ``note: Mean of empty slice``: a job whose statistics average an all-NaN
    column (here the job is stood in for, so the test checks the printing path alone)."""
    from rsa_bridge.app.commands import compare

    def job(args):
        np.nanmean(np.full((3, 2), np.nan), axis=0)  # numpy: "Mean of empty slice"
        stats.spearmanr(np.ones(5), np.arange(5.0))  # scipy: ConstantInputWarning
        warnings.warn("3 of 60 bootstrap statistics are NaN: fewer than 3 distinct stimuli", RuntimeWarning)
        return 0

    monkeypatch.setattr(compare, "_run", job)
    assert compare.run(argparse.Namespace(quiet=True)) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"rsa-bridge compare: note: {LIBRARY_NOTES['empty'].sentence}",
                     f"rsa-bridge compare: note: {LIBRARY_NOTES['constant'].sentence}",
                     "rsa-bridge compare: note: 3 of 60 bootstrap statistics are NaN: fewer than 3 distinct stimuli"]
    assert "Mean of empty slice" not in "\n".join(lines) and "constant;" not in "\n".join(lines)
