"""MkDocs hooks of the documentation site (``mkdocs.yml`` -> ``hooks``).

1. The notebooks in ``notebooks/`` are published as tutorials under ``notebooks/NAME/`` without copying
   them into ``docs/``: each is added to the site's files before mkdocs-jupyter converts it. The tutorial
   shows its outputs (tables, figures): ``tests/test_notebooks.py`` executes every notebook and saves the
   executed copy to ``build/notebooks/``, and that copy is published when it is at least as new as the
   notebook, with the machine's paths taken out of its outputs (:func:`scrub_paths`: a path into the
   checkout becomes relative, ``/tmp/`` becomes ``$TMPDIR/``; the copy the site reads is
   ``build/site_notebooks/``). Without one (the tests not run yet, or the notebook edited since), the stored notebook is
   published without outputs and the build says which; ``DOCS_REQUIRE_OUTPUTS=1`` makes that an error
   (CI sets it, after the tests).
2. Pages named in the ``nav`` that do not exist fail the strict build (mkdocs' own warning). With
   ``DOCS_ALLOW_MISSING=1`` each missing page is replaced by an in-memory placeholder instead (nothing is
   written to ``docs/``), so a branch can build while other branches still write those pages.
3. Maths is rendered at build time, with no script and no network: ``pymdownx.arithmatex`` (generic mode)
   marks ``$...$`` and ``$$...$$`` (in guide pages and docstrings alike), and each formula is converted to
   MathML by ``latex2mathml``; browsers draw MathML natively, so the site shows formulas offline. A formula
   that ``latex2mathml`` cannot convert fails the strict build with its page and its TeX.
"""
from __future__ import annotations

import html
import json
import logging
import os
import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.rsa_bridge")
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = ROOT / "build"  # build/notebooks/NAME.ipynb: executed copies written by tests/test_notebooks.py
PUBLISHED = ROOT / "build" / "site_notebooks"  # their copies without machine paths, which the site reads
#: an absolute path up to a folder of the checkout (or of an installed copy): what the outputs must not show
CHECKOUT_PATH = re.compile(r"(?<![\w.~])(?:/[\w.+-]+)+/(?=(?:rsa_bridge|stimuli|extractors|analyses|notebooks|tests)/)")
TEMP_PATH = re.compile(r"(?<![\w.~])/tmp/")


def scrub_paths(text: str) -> str:
    """``text`` without the machine's paths: into the checkout -> relative, ``/tmp/`` -> ``$TMPDIR/``.

    Example:
        >>> scrub_paths("path: /work/main/rsa_bridge/data/x.nc and /tmp/abc/out")
        'path: rsa_bridge/data/x.nc and $TMPDIR/abc/out'
    """
    return TEMP_PATH.sub("$TMPDIR/", CHECKOUT_PATH.sub("", text))


def _scrubbed(value):
    if isinstance(value, str):
        return scrub_paths(value)
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    return value


def publish_notebook(executed: Path, out_dir: Path = PUBLISHED) -> Path:
    """Copy an executed notebook into ``out_dir/notebooks/`` with :func:`scrub_paths` applied to its outputs
    (text and HTML; images are untouched). Returns the folder to publish from."""
    nb = json.loads(executed.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            for key in ("text", "traceback", "evalue"):
                if key in output:
                    output[key] = _scrubbed(output[key])
            data = output.get("data", {})
            for mime in data:
                if mime.startswith("text/"):  # not image/png: base64 may hold "/tmp/" by chance
                    data[mime] = _scrubbed(data[mime])
    target = out_dir / "notebooks" / executed.name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(target)
    return out_dir


def _nav_paths(nav) -> list[str]:
    """Every page path named in the (nested) nav, in order."""
    if isinstance(nav, str):
        return [nav] if not nav.startswith(("http://", "https://")) else []
    if isinstance(nav, dict):
        return [p for v in nav.values() for p in _nav_paths(v)]
    if isinstance(nav, list):
        return [p for v in nav for p in _nav_paths(v)]
    return []


@event_priority(100)  # before mkdocs-jupyter's on_files, which turns .ipynb files into pages
def on_files(files: Files, config) -> Files:
    stale = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        uri = f"notebooks/{path.name}"
        if files.get_file_from_path(uri) is None:
            executed = EXECUTED / uri
            fresh = executed.is_file() and executed.stat().st_mtime >= path.stat().st_mtime
            if not fresh:
                stale.append(path.name)
            src_dir = publish_notebook(executed) if fresh else ROOT
            files.append(File(uri, src_dir=str(src_dir), dest_dir=config["site_dir"],
                              use_directory_urls=config["use_directory_urls"]))
    if stale:
        message = ("tutorials published without outputs (no executed copy in build/notebooks/ newer than the "
                   "notebook; `python -m pytest tests/test_notebooks.py` makes them): " + ", ".join(stale))
        if os.environ.get("DOCS_REQUIRE_OUTPUTS") == "1":
            log.warning(message)  # a warning fails the strict build
        else:
            log.info(message)
    missing = [p for p in _nav_paths(config["nav"] or []) if files.get_file_from_path(p) is None]
    if missing and os.environ.get("DOCS_ALLOW_MISSING") == "1":
        for uri in missing:
            title = Path(uri).stem.replace("-", " ").capitalize()
            files.append(File.generated(config, uri, content=(
                f"# {title}\n\n!!! note \"Not written yet\"\n    `docs/{uri}` is written in another branch; this "
                "placeholder was generated by the docs build (`DOCS_ALLOW_MISSING=1`).\n")))
        log.info("DOCS_ALLOW_MISSING=1: placeholders for %d missing nav page(s): %s", len(missing), ", ".join(missing))
    elif missing:
        log.warning("nav pages missing from docs/: %s (DOCS_ALLOW_MISSING=1 builds with placeholders)",
                    ", ".join(missing))
    return files



#: what pymdownx.arithmatex (generic: true) writes for $...$ and $$...$$
MATH = re.compile(r'<(span|div) class="arithmatex">\s*\\([(\[])(.*?)\\[)\]]\s*</\1>', re.S)


def tex_to_mathml(tex: str, display: bool) -> str:
    """MathML for one TeX formula (``tex`` as written between the dollars, HTML-escaped by Markdown).

    Example:
        >>> tex_to_mathml("r^2", display=False)[:49]
        '<math xmlns="http://www.w3.org/1998/Math/MathML" '
    """
    from latex2mathml.converter import convert

    return convert(html.unescape(tex).strip(), display="block" if display else "inline")


def on_page_content(content: str, page, **kwargs) -> str:
    """Every arithmatex formula of the page's HTML -> MathML (a ``div`` for display maths)."""
    def one(m: re.Match) -> str:
        display = m.group(2) == "["
        try:
            mathml = tex_to_mathml(m.group(3), display)
        except Exception as exc:  # latex2mathml raises its own types; each is a broken formula in the docs
            log.warning("%s: formula %r cannot be rendered: %s", page.file.src_uri, m.group(3), exc)
            return m.group(0)
        return f'<div class="math">{mathml}</div>' if display else mathml

    return MATH.sub(one, content)
