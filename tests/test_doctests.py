"""The ``Examples`` in the docstrings of the main entry points run and print what they say.

Each example is a doctest checked against a hand-worked case or an independent implementation (scipy's
``pdist``, a plain forward pass) where it prints a number. Fast (a few seconds), no network, no pretrained
weights: the examples use small seeded arrays, a tiny ``nn.Sequential`` and the shipped 92-image dataset.
The API reference on the docs site shows the same examples (docs/api/*.md).
"""
from __future__ import annotations

import doctest
import importlib
import re

import pytest

#: module -> the entry points in it that must carry a doctested ``Examples`` section
ENTRY_POINTS = {
    "rsa_bridge.rdm": ["compute_rdm"],
    "rsa_bridge.compare": ["compare_rdms"],
    "rsa_bridge.align": ["align_rdms"],
    "rsa_bridge.datasets": ["load_dataset"],
    "rsa_bridge.stats.bootstrap": ["bootstrap_similarity"],
    "rsa_bridge.stats.permutation": ["permutation_test"],
    "rsa_bridge.stats.ceiling": ["noise_ceiling"],
    "rsa_bridge.stats.split_half": ["split_half_reliability"],
    "extractors.extract": ["extract"],
    "extractors.streaming": ["stream_rdms"],
    "rsa_bridge.options": ["RDMOptions", "StatsOptions"],
    "rsa_bridge.app.pipeline": ["compare_models", "compare_model"],
    "rsa_bridge.app.network": ["NetworkOptions"],
    "rsa_bridge.app.gram_routes": ["plan_gram_route"],
    "rsa_bridge.stats.plan": ["plan_statistics"],
    "rsa_bridge.stats.summary": ["compare_statistics"],
}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


class PortableChecker(doctest.OutputChecker):
    """Text must match, except that each number printed may differ from the expected one by the last bits.

    BLAS kernels sum in an order that depends on the CPU, so ``1.0`` can print as ``0.9999999999999999`` on
    another machine. A printed number matches an expected one when they agree to 1e-12 relative (1e-12
    absolute for numbers below 1); everything else must match exactly.
    """

    def check_output(self, want, got, optionflags):
        if super().check_output(want, got, optionflags):
            return True
        want_numbers, got_numbers = _NUMBER.findall(want), _NUMBER.findall(got)
        if len(want_numbers) != len(got_numbers):
            return False
        if not super().check_output(_NUMBER.sub("#", want), _NUMBER.sub("#", got), optionflags):
            return False
        return all(_close(w, g) for w, g in zip(want_numbers, got_numbers))


def _close(want: str, got: str) -> bool:
    w, g = float(want), float(got)
    return abs(w - g) <= 1e-12 * max(1.0, abs(w), abs(g))


@pytest.mark.parametrize("module_name", sorted(ENTRY_POINTS))
def test_docstring_examples(module_name, monkeypatch):
    monkeypatch.setenv("RSA_BRIDGE_OFFLINE", "1")
    module = importlib.import_module(module_name)
    tests = [t for t in doctest.DocTestFinder().find(module, module_name) if t.examples]
    documented = {t.name.rsplit(".", 1)[-1] for t in tests}
    missing = [name for name in ENTRY_POINTS[module_name] if name not in documented]
    assert not missing, f"{module_name}: no doctested Examples in {missing}"
    runner = doctest.DocTestRunner(checker=PortableChecker(), optionflags=FLAGS)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples in {module_name} failed (output above)"
    assert result.attempted >= 2


def test_portable_checker_forgives_only_the_last_bits():
    checker = PortableChecker()
    assert checker.check_output("(1.0, 1.0)\n", "(0.9999999999999999, 1.0000000000000002)\n", FLAGS)
    assert not checker.check_output("(1.0, 1.0)\n", "(0.99999, 1.0)\n", FLAGS)
    assert not checker.check_output("r 1.0\n", "p 1.0\n", FLAGS)
    assert not checker.check_output("[1.0]\n", "[1.0, 2.0]\n", FLAGS)


def test_docs_rst_habits_become_markdown():
    """The docs build's griffe extension (scripts/docs_griffe_rst.py): roles, simple tables, ``::``."""
    pytest.importorskip("griffe")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        from docs_griffe_rst import rst_to_markdown
    finally:
        sys.path.pop(0)
    text = """See :func:`compute_rdm` and :mod:`.schema`:

===== ================= =====
name  definition        peer
===== ================= =====
a     first line        ``x``
      continued
b     a | b             y
===== ================= =====

Example::

    code
"""
    out = rst_to_markdown(text).split("\n")
    assert out[0] == "See `compute_rdm` and `schema`:"
    assert out[2:6] == ["| name | definition | peer |", "|---|---|---|",
                        "| a | first line continued | ``x`` |", "| b | a \\| b | y |"]
    assert "Example:" in out and "    code" in out
