"""docs/reference/registries.md is generated from the registries; this fails when the checked-in page is stale."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("registries_doc", ROOT / "scripts" / "registries_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_registries_page_is_up_to_date():
    doc = _script()
    assert doc.PAGE.read_text() == doc.render(), "docs/reference/registries.md is stale: run python scripts/registries_doc.py"


def test_page_lists_every_registered_name():
    from rsa_bridge.definitions import COMPARISONS, METRICS
    from rsa_bridge.neural.formats import FORMATS

    text = _script().render()
    for name in [*METRICS, *COMPARISONS, *COMPARISONS.aliases, *FORMATS]:
        assert f"`{name}`" in text, name


def test_check_mode_detects_a_stale_page(tmp_path, monkeypatch):
    doc = _script()
    monkeypatch.setattr(doc, "PAGE", tmp_path / "registries.md")
    assert doc.main(["--check"]) == 1
    assert doc.main([]) == 0 and doc.main(["--check"]) == 0
