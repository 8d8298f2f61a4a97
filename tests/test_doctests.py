"""The ``Examples`` in the docstrings of the main entry points run and print what they say.

Each example is a doctest checked against a hand-worked case or an independent implementation (scipy's
``pdist``, a plain forward pass) where it prints a number. Fast (a few seconds), no network, no pretrained
weights: the examples use small seeded arrays, a tiny ``nn.Sequential`` and the shipped 92-image dataset.
The API reference on the docs site shows the same examples (docs/api/*.md).
"""
from __future__ import annotations

import doctest
import importlib

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
    "rsa_bridge.options": ["RDMOptions"],
    "rsa_bridge.app.pipeline": ["compare_models"],
}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("module_name", sorted(ENTRY_POINTS))
def test_docstring_examples(module_name, monkeypatch):
    monkeypatch.setenv("RSA_BRIDGE_OFFLINE", "1")
    module = importlib.import_module(module_name)
    tests = [t for t in doctest.DocTestFinder().find(module, module_name) if t.examples]
    documented = {t.name.rsplit(".", 1)[-1] for t in tests}
    missing = [name for name in ENTRY_POINTS[module_name] if name not in documented]
    assert not missing, f"{module_name}: no doctested Examples in {missing}"
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples in {module_name} failed (output above)"
    assert result.attempted >= 2


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
