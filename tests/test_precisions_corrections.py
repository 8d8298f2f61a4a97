"""Precisions and multiple-comparison corrections are one registry each (issue 24 item 3): the old tables are
views of them, and each record's numbers agree with numpy / torch / a hand-worked case."""
from __future__ import annotations

import numpy as np
import pytest

from rsa_bridge.corrections import CORRECTIONS
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.precisions import PRECISIONS


@pytest.mark.parametrize("name", list(PRECISIONS))
def test_each_precision_matches_numpy_and_torch(name):
    import torch

    p = PRECISIONS[name]
    info = np.finfo(name)
    assert p.numpy_dtype() == np.dtype(name) and p.itemsize == np.dtype(name).itemsize
    assert p.mantissa_bits == info.nmant + 1 and p.unit_roundoff == info.eps / 2
    assert torch.empty(0, dtype=getattr(torch, p.torch_name)).element_size() == p.itemsize
    assert str(getattr(torch, p.torch_name)) == f"torch.{name}"


def test_the_old_precision_tables_are_views_of_the_registry():
    from rsa_bridge import gram, options, rdm_store

    assert dict(options.PRECISIONS) == dict(options.RDM_STORAGES) == {n: p.itemsize for n, p in PRECISIONS.items()}
    assert gram.DTYPES == {n: getattr(__import__("torch"), p.torch_name) for n, p in PRECISIONS.items()}
    assert rdm_store.STORAGE == {n: p.numpy_dtype() for n, p in PRECISIONS.items()}
    assert options.RDMOptions(precision="FLOAT32", storage="float32").storage_itemsize == 4
    assert gram.check_precision("float32") is __import__("torch").float32
    with pytest.raises(RSABridgeError, match="unknown RDM precision 'float16'; choose one of float64, float32"):
        options.RDMOptions(precision="float16")


def test_compare_precision_choices_come_from_the_registry():
    import argparse

    from rsa_bridge.app.commands import compare

    parser = argparse.ArgumentParser()
    compare.register(parser.add_subparsers(dest="command"))
    sub = parser._subparsers._group_actions[0].choices["compare"]
    for flag in ("--precision", "--rdm-storage"):
        action = next(a for a in sub._actions if flag in a.option_strings)
        assert list(action.choices) == list(PRECISIONS)


def test_corrections_by_hand():
    """p = (0.01, 0.04, 0.03, NaN): Holm multiplies the ascending p by 3, 2, 1 and keeps the running maximum;
    BH multiplies by 3/1, 3/2, 3/3 and keeps the running minimum from the top; NaN is not counted."""
    p = np.array([0.01, 0.04, 0.03, np.nan])
    np.testing.assert_allclose(CORRECTIONS["holm"](p), [0.03, 0.06, 0.06, np.nan], rtol=1e-12)
    np.testing.assert_allclose(CORRECTIONS["fdr_bh"](p), [0.03, 0.04, 0.04, np.nan], rtol=1e-12)
    np.testing.assert_array_equal(CORRECTIONS["none"](p), p)
    assert CORRECTIONS["none"](p) is not p


def test_bh_equals_scipy(rng):
    from scipy.stats import false_discovery_control

    p = rng.uniform(size=40) ** 3
    np.testing.assert_allclose(CORRECTIONS.get_record("fdr")(p), false_discovery_control(p, method="bh"), rtol=1e-12)


def test_one_corrections_table_for_stats_and_figures():
    from rsa_bridge.figures import comparison
    from rsa_bridge.stats import permutation

    assert permutation.CORRECTIONS is CORRECTIONS and comparison.CORRECTIONS is CORRECTIONS
    p = np.array([[0.01, 0.2], [0.04, 0.01], [0.03, 0.5]])
    np.testing.assert_allclose(permutation.correct(p, "fdr_bh"),
                               np.stack([CORRECTIONS["fdr_bh"](p[:, j]) for j in range(2)], axis=1))
    np.testing.assert_array_equal(comparison._correct(p[:, 0], "fdr"), CORRECTIONS["fdr_bh"](p[:, 0]))
    with pytest.raises(RSABridgeError, match="unknown correction 'hollm'.*did you mean 'holm'"):
        comparison._correct(p[:, 0], "hollm")


@pytest.mark.parametrize("module_name", ["rsa_bridge.precisions", "rsa_bridge.corrections", "rsa_bridge.neural.formats",
                                         "rsa_bridge.neural", "rsa_bridge.options"])
def test_examples_of_the_registry_modules_run(module_name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
