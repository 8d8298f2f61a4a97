"""A griffe extension for the docs build: the reST habits of the docstrings, rendered as Markdown.

The docstrings are Google style (read by mkdocstrings' Google parser) but use three reST habits that
Markdown would show literally; before a docstring is parsed this rewrites, in its text only:

- roles ``:func:`x```, ``:mod:`x```, ``:class:`x```, ``:data:`x```, ... -> the code span ``x``;
- simple tables (``=== ===`` borders; a row whose first cell is blank continues the row above) -> a
  Markdown table;
- a paragraph ending in ``::`` (a literal block follows) -> ending in ``:``.

The source files are not changed. Used by mkdocs.yml (mkdocstrings -> python -> options -> extensions).

A second extension, :class:`DocumentedOnce`, keeps each object on one page: a name that a module imports
from another module of the project and re-exports (in its ``__all__``) is not documented again there
(mkdocs.yml's ``filters: public`` would otherwise show it twice); it stays documented where it is defined.
"""
from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|mod|class|data|meth|attr|exc|obj|const)?:`~?\.?([^`]+)`")
BORDER = re.compile(r"^(\s*)(=+)((?: +=+)+)\s*$")


def _columns(border: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"=+", border)]


def _cells(line: str, cols: list[tuple[int, int]]) -> list[str]:
    out = []
    for k, (start, stop) in enumerate(cols):
        end = cols[k + 1][0] if k + 1 < len(cols) else len(line)
        out.append(line[start:end].strip())
    return out


def _table(lines: list[str], indent: str) -> list[str]:
    """Markdown rows of one reST simple table (its lines, borders included)."""
    cols = _columns(lines[0])
    borders = [i for i, ln in enumerate(lines) if BORDER.match(ln)]
    header_end = borders[1] if len(borders) >= 3 else None
    rows: list[list[str]] = []
    header: list[str] | None = None
    for i, ln in enumerate(lines):
        if i in borders:
            if header_end is not None and i == header_end and header is None:
                header = [" ".join(c.split()) for c in (rows[0] if rows else [""] * len(cols))]
                rows = []
            continue
        if not ln.strip():
            continue
        cells = _cells(ln, cols)
        if rows and not cells[0]:
            rows[-1] = [(a + " " + b).strip() for a, b in zip(rows[-1], cells)]
        else:
            rows.append(cells)
    if header is None:
        header = [""] * len(cols)
    fmt = lambda cells: indent + "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"  # noqa: E731
    return [fmt(header), indent + "|" + "---|" * len(cols)] + [fmt(r) for r in rows]


def rst_to_markdown(text: str) -> str:
    """The docstring ``text`` with roles, simple tables and ``::`` rewritten (see the module docstring)."""
    text = ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = BORDER.match(lines[i])
        if m:
            j, n_borders = i + 1, 1
            while j < len(lines) and n_borders < 3:
                if BORDER.match(lines[j]):
                    n_borders += 1
                    if n_borders == 3 or j + 1 >= len(lines) or not lines[j + 1].strip():
                        break
                j += 1
            block = lines[i:j + 1]
            if out and out[-1].strip():
                out.append("")
            out.extend(_table(block, m.group(1)))
            i = j + 1
            continue
        line = lines[i]
        if line.rstrip().endswith("::") and i + 1 < len(lines) and not lines[i + 1].strip():
            line = line.rstrip()[:-1]
        out.append(line)
        i += 1
    return "\n".join(out)


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring's reST habits before mkdocstrings parses it."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)


OWN_PACKAGES = ("stimuli", "rsa_bridge", "extractors", "analyses")


def _modules(mod: griffe.Module):
    yield mod
    for member in mod.members.values():
        if not member.is_alias and member.is_module:
            yield from _modules(member)


class DocumentedOnce(griffe.Extension):
    """Hide the re-exports of the project's own objects: each is documented where it is defined."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for mod in _modules(pkg):
            for member in mod.members.values():
                target = getattr(member, "target_path", "")
                if (member.is_alias and not member.inherited and target.split(".")[0] in OWN_PACKAGES
                        and target.rsplit(".", 1)[0] != mod.path):
                    member.public = False
