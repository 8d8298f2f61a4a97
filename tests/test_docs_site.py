"""The documentation site as a user reads it (issue 25 item 6).

One strict ``mkdocs build`` into a temporary folder (about 30 s; skipped without the docs extra), then the
HTML is parsed: the API reference lists no private helper and documents each object once, ``compare_model``
shows its own docstring, example and a formatted signature, formulas are MathML (no script, no network),
user pages show no machine paths, and the tutorials that have an executed copy show their figures and
tables. The pieces of ``scripts/mkdocs_hooks.py`` and ``scripts/docs_griffe_rst.py`` are also checked on
their own, without a build.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS_TOOLS = ("mkdocs", "mkdocstrings_handlers.python", "mkdocs_jupyter", "material", "latex2mathml")
#: helpers of the compare pipeline that the reference must not show (issue 25 item 6)
PRIVATE_HELPERS = ("rsa_bridge.app.rdm_stores.dense_stack", "rsa_bridge.app.rdm_stores.job_store_plans",
                   "rsa_bridge.app.rdm_stores.check_plan", "rsa_bridge.app.rdm_stores.statistics_stack",
                   "rsa_bridge.app.network.network_from_keywords", "rsa_bridge.options.options_from_keywords",
                   "rsa_bridge.app.pipeline.stimuli_for")
API_PAGES = ("compute-rdms", "compare", "statistics", "measures", "neural-data", "stimuli", "figures", "extending",
             "command-line", "analyses")


def _have_docs_tools() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in DOCS_TOOLS)


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Ids(HTMLParser):
    """Every element id of a page, and the text of each ``doc-heading`` element's ``id``."""

    def __init__(self):
        super().__init__()
        self.ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs and "doc-heading" in (attrs.get("class") or ""):
            self.ids.append(attrs["id"])


def documented(html: str) -> list[str]:
    parser = _Ids()
    parser.feed(html)
    return parser.ids


def text(html: str) -> str:
    import html as html_module

    return html_module.unescape(re.sub(r"<[^>]+>", "", html))


def section(html: str, object_id: str) -> str:
    """The HTML of one documented object: from its heading to the next heading of the same level."""
    start = html.index(f'id="{object_id}"')
    level = html.rfind("<h", 0, start)
    tag = html[level + 1:level + 3]
    end = html.find(f"<{tag} ", start + 1)
    return html[start:end if end > 0 else len(html)]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if not _have_docs_tools():
        pytest.skip('the docs tools are missing (pip install -e ".[docs]")')
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.pop("DOCS_REQUIRE_OUTPUTS", None)  # the tutorials' outputs are checked below, where they exist
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def page(site: Path, uri: str) -> str:
    return (site / uri / "index.html").read_text(encoding="utf-8")


# --- the built site -------------------------------------------------------------------------------------------

def test_api_reference_is_grouped_by_task(site):
    index = page(site, "api")
    for name in API_PAGES:
        assert f'href="../api/{name}/"' in index or f'href="{name}/"' in index, name
        assert documented(page(site, f"api/{name}")), f"api/{name} documents nothing"


def test_api_reference_lists_no_private_helper(site):
    ids = [i for name in API_PAGES for i in documented(page(site, f"api/{name}"))]
    ids += documented(page(site, "api"))
    assert len(ids) > 500  # the whole reference was read
    for helper in PRIVATE_HELPERS:
        assert helper not in ids, helper
    private = [i for i in ids if any(part.startswith("_") and not part.startswith("__") for part in i.split("."))]
    assert not private, private[:10]
    # each object once: a re-export (pipeline's RDMOptions, Piece, ...) is documented where it is defined
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})[:10]
    assert "rsa_bridge.app.pipeline.RDMOptions" not in ids and "rsa_bridge.options.RDMOptions" in ids


def test_compare_model_has_its_own_docstring_example_and_a_formatted_signature(site):
    html = page(site, "api/compare")
    body = section(html, "rsa_bridge.app.pipeline.compare_model")
    words = text(body)
    assert "Score one network's layers against brain areas" in words
    assert 'compare_model("pixels", ["IT"]' in words and "pixels IT 92" in words  # the example and its output
    signature = words[words.index("compare_model("):words.index(") -> CompareResult")]
    assert "\n    model_name: str,\n" in signature  # one parameter a line (ruff formatted it)
    for name in ("NetworkOptions", "RDMOptions", "StatsOptions", "CompareResult"):
        assert any(i.endswith(f".{name}") for i in documented(html)), name


def test_piece_attributes_are_one_table_row_each(site):
    body = section(page(site, "api/compare"), "rsa_bridge.app.piece.Piece")
    rows = re.findall(r'<tr class="doc-section-item">\s*<td><code><span title="rsa_bridge\.app\.piece\.Piece\.([^"]+)">',
                      body)
    from dataclasses import fields

    from rsa_bridge.app.piece import Piece

    # each row names one real field (the old table had rows like "similarity, sem" and "stats ... stacked")
    assert set(rows) <= {f.name for f in fields(Piece)} and len(rows) == len(set(rows)), rows
    assert {"model", "weights", "dataset", "dataset_time", "similarity", "sem", "stats", "stacked"} <= set(rows), rows


def test_formulas_are_mathml(site):
    for uri, expected in (("guide/measures", 5), ("guide/statistics", 1), ("guide/ceilings-time-nwb", 4),
                          ("guide/compare", 5)):
        html = page(site, uri)
        assert html.count("<math ") >= expected, uri
        assert 'class="arithmatex"' not in html, uri  # every formula was converted
    measures = page(site, "guide/measures")
    assert "<mfrac>" in measures and "<msqrt>" in measures  # CKA's fraction, the square root of the ceiling
    assert not re.search(r"<code>[^<]*[⟨‖²√]", measures)  # no formula left as monospace Unicode


def test_user_pages_show_no_machine_paths(site):
    pages = [p for p in site.rglob("index.html") if not p.relative_to(site).parts[0] in ("api", "notebooks")]
    assert len(pages) > 20
    for path in pages:
        words = text(path.read_text(encoding="utf-8"))
        for leak in ("/tmp/h18", "/tmp/planted", "/work/", "team's machines", "these machines"):
            assert leak not in words, f"{path.relative_to(site)}: {leak}"


def test_tutorials_show_their_outputs(site):
    executed = [p for p in sorted((ROOT / "build" / "notebooks").glob("*.ipynb"))
                if (ROOT / "notebooks" / p.name).is_file()
                and p.stat().st_mtime >= (ROOT / "notebooks" / p.name).stat().st_mtime]
    if not executed:
        pytest.skip("no executed notebooks in build/notebooks/ (tests/test_notebooks.py writes them)")
    for nb in executed:
        html = page(site, f"notebooks/{nb.stem}")
        outputs = json.loads(nb.read_text(encoding="utf-8"))
        n_images = sum("image/png" in o.get("data", {}) for c in outputs["cells"] for o in c.get("outputs", []))
        assert html.count("data:image/png;base64") >= n_images > 0, nb.name  # every figure is on the page
        assert "Out[" in text(html) or "<table" in html, nb.name
        assert "/work/" not in text(html) and "/tmp/" not in text(html), nb.name


# --- the hooks on their own ----------------------------------------------------------------------------------

def test_tex_becomes_mathml_and_a_broken_formula_is_reported(caplog):
    pytest.importorskip("mkdocs", reason='the docs tools are missing (pip install -e ".[docs]")')
    pytest.importorskip("latex2mathml", reason='the docs tools are missing (pip install -e ".[docs]")')
    hooks = _load("docs_hooks_under_test", ROOT / "scripts" / "mkdocs_hooks.py")

    class Page:
        class file:
            src_uri = "guide/x.md"

    html = ('<p>a <span class="arithmatex">\\(r^2 &lt; 1\\)</span></p>'
            '<div class="arithmatex">\\[\n\\sqrt{R}\n\\]</div>')
    out = hooks.on_page_content(html, page=Page)
    assert "arithmatex" not in out
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline">' in out
    assert "<msup><mi>r</mi><mn>2</mn></msup>" in out and "&#x0003C;" in out  # r^2 < 1, the < unescaped once
    assert '<div class="math"><math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in out
    assert "<msqrt><mrow><mi>R</mi></mrow></msqrt>" in out
    # a formula latex2mathml cannot read stays as it was and is a warning (which fails the strict build)
    broken = '<span class="arithmatex">\\(x^\\)</span>'
    with caplog.at_level("WARNING", logger="mkdocs.hooks.rsa_bridge"):
        assert hooks.on_page_content(broken, page=Page) == broken
    assert "guide/x.md: formula 'x^' cannot be rendered" in caplog.text


def test_scrub_paths_keeps_images_and_relativises_paths(tmp_path):
    pytest.importorskip("mkdocs", reason='the docs tools are missing (pip install -e ".[docs]")')
    hooks = _load("docs_hooks_under_test2", ROOT / "scripts" / "mkdocs_hooks.py")
    assert hooks.scrub_paths("x /home/u/repo/rsa_bridge/data/a.nc y") == "x rsa_bridge/data/a.nc y"
    assert hooks.scrub_paths("/tmp/abc/out") == "$TMPDIR/abc/out"
    assert hooks.scrub_paths("https://example.org/tmp/x and ~/tmp/") == "https://example.org/tmp/x and ~/tmp/"
    png = "iVBORw0K/tmp/AAAA"  # base64 may hold "/tmp/" by chance: images are not touched
    nb = {"cells": [{"cell_type": "code", "source": "print(p)", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": ["/srv/x/stimuli/a.png\n"]},
        {"output_type": "display_data", "data": {"image/png": png, "text/plain": ["/tmp/q"]}, "metadata": {}}]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    src = tmp_path / "n.ipynb"
    src.write_text(json.dumps(nb))
    out_dir = hooks.publish_notebook(src, tmp_path / "pub")
    got = json.loads((out_dir / "notebooks" / "n.ipynb").read_text())
    outputs = got["cells"][0]["outputs"]
    assert outputs[0]["text"] == ["stimuli/a.png\n"]
    assert outputs[1]["data"] == {"image/png": png, "text/plain": ["$TMPDIR/q"]}
    assert got["cells"][0]["source"] == "print(p)"


def test_documented_once_hides_only_project_reexports():
    griffe = pytest.importorskip("griffe", reason='the docs tools are missing (pip install -e ".[docs]")')

    ext = _load("docs_griffe_under_test", ROOT / "scripts" / "docs_griffe_rst.py")
    loader = griffe.GriffeLoader(search_paths=[str(ROOT)], extensions=griffe.load_extensions(ext.DocumentedOnce))
    pkg = loader.load("rsa_bridge")
    pipeline = pkg["app.pipeline"]
    assert pipeline["RDMOptions"].is_alias and not pipeline["RDMOptions"].is_public  # re-exported from options
    assert pipeline["compare_model"].is_public  # defined there
    assert pkg["options"]["RDMOptions"].is_public
