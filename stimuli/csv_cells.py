"""Spreadsheet-formula cells: text that a spreadsheet would run is written with a leading ``'``.

A CSV cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is taken for a formula
by Excel, LibreOffice and Google Sheets (``=cmd|' /C calc'!A0``, ``=HYPERLINK(...)``): a stimulus or
neuroid id from a hostile data file would run when the exported table is opened. The OWASP rule is
applied to every CSV/TSV rsa-bridge writes: such a **text** cell (ids, names, labels, column and index
labels; never a number: ``-0.5`` in a numeric column stays ``-0.5``) is written as ``'`` + the text,
which spreadsheets show as text.

Readers of rsa-bridge's own CSVs remove exactly one leading ``'`` where the rest starts with one of
those characters, so ids round-trip: ``unescape_cell(escape_cell(x)) == x`` for every string ``x``.
Text that already starts with ``'`` followed by such a character (``'=x``, ``''-y``) is quoted once more
when written, so that reading it back gives the same text, never one quote less.

Example::

    >>> escape_cell("=HYPERLINK(\\"http://x\\")"), escape_cell("cat_01"), escape_cell(-0.5)
    ('\\'=HYPERLINK("http://x")', 'cat_01', -0.5)
    >>> unescape_cell("'-3"), unescape_cell("'quoted")
    ('-3', "'quoted")
"""
from __future__ import annotations

import csv
import re
from typing import Any, Iterable

import pandas as pd

#: first characters that make a spreadsheet read a cell as a formula (OWASP CSV injection)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: the character put in front of such a cell
QUOTE = "'"

_NEEDS_QUOTE = re.compile(r"'*[=+\-@\t\r]")  # optional earlier quotes, then a formula character
_QUOTED = re.compile(r"'+[=+\-@\t\r]")


def escape_cell(value: Any) -> Any:
    """``value`` as it is written to a CSV cell: a string matching ``'*[=+-@\\t\\r]...`` gets a leading ``'``;
    anything else (other text, numbers, None) is returned unchanged."""
    if isinstance(value, str) and _NEEDS_QUOTE.match(value):
        return QUOTE + value
    return value


def unescape_cell(value: Any) -> Any:
    """The inverse of :func:`escape_cell` for a cell read back: one leading ``'`` removed where the rest
    starts with a formula character (after any further quotes); anything else unchanged."""
    if isinstance(value, str) and _QUOTED.match(value):
        return value[1:]
    return value


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or isinstance(series.dtype, pd.StringDtype)


def _labels(index: pd.Index, cell) -> pd.Index:
    """Index labels and the index's names (written as a header cell) through ``cell``."""
    if isinstance(index, pd.MultiIndex):
        index = index.set_levels([_labels(level, cell) for level in index.levels])
    elif index.dtype == object or isinstance(index.dtype, pd.StringDtype):
        index = index.map(cell)
    return index.set_names([cell(name) for name in index.names])


def _frame(frame: pd.DataFrame, cell, columns: Iterable[str] | None) -> pd.DataFrame:
    out = frame.copy()
    chosen = set(out.columns if columns is None else columns)
    for name in out.columns:
        if name in chosen and _is_text(out[name]):
            out[name] = out[name].map(cell)
    out.columns = _labels(out.columns, cell)
    out.index = _labels(out.index, cell)
    return out


def escape_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` ready for ``to_csv``: :func:`escape_cell` on every text (object/string) column's
    cells and on the column and index labels; numeric columns untouched."""
    return _frame(frame, escape_cell, None)


def unescape_frame(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """A copy of a frame read from one of rsa-bridge's CSVs with :func:`unescape_cell` applied to the text
    columns (all, or ``columns``) and to the column labels."""
    return _frame(frame, unescape_cell, columns)


def frame_to_csv(frame: pd.DataFrame, target: Any = None, **options: Any) -> str | None:
    """``frame.to_csv(target, **options)`` with formula cells escaped (:func:`escape_frame`); returns the
    text when ``target`` is None, like pandas.

    A text cell holding a carriage return is not quoted by Python's csv writer (its line ends are
    ``\n``), and would split its row when read; such a frame is written with every text cell quoted
    (``csv.QUOTE_NONNUMERIC``), numbers still bare."""
    escaped = escape_frame(frame)
    if "quoting" not in options and _has_carriage_return(escaped):
        options["quoting"] = csv.QUOTE_NONNUMERIC
    return escaped.to_csv(target, **options)


def _has_carriage_return(frame: pd.DataFrame) -> bool:
    labels = [*frame.columns, *frame.index, *frame.columns.names, *frame.index.names]
    if any(isinstance(v, str) and "\r" in v for v in labels):
        return True
    return any(frame[c].map(lambda v: isinstance(v, str) and "\r" in v).any()
               for c in frame.columns if _is_text(frame[c]))


def read_own_csv(source: Any, *, columns: Iterable[str] | None = None, **options: Any) -> pd.DataFrame:
    """``pd.read_csv(source, **options)`` of a CSV rsa-bridge wrote, with :func:`unescape_frame` applied
    (to the text columns, or only ``columns``)."""
    return unescape_frame(pd.read_csv(source, **options), columns)
