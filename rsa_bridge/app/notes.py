"""The ``note:`` lines that ``rsa-bridge compare`` prints: our own warnings as they are, a library's raw warning
(numpy's ``Mean of empty slice``, ``invalid value encountered in divide``, scipy's ``ConstantInputWarning`` ...)
as a sentence in the user's terms.

Each library message is one record in :data:`LIBRARY_NOTES` (a pattern and the sentence that replaces it); a
library warning that matches none of them still becomes a sentence, naming the library's own words. The
statistics avoid these warnings where they can (e.g. :func:`rsa_bridge.finite.finite_mean`); this is the net
under whatever slips through.

Example::

    >>> note("Mean of empty slice")
    'some averages had no valid values (e.g. no usable bootstrap sample, split or repetition): those entries are n/a (NaN) in the table and the output files'
    >>> note("area(s) IT have a single RDM: ...")  # ours: as it is
    'area(s) IT have a single RDM: ...'
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Iterable


@dataclass(frozen=True)
class LibraryNote:
    """A library warning (``pattern``, a regex searched in its message) and the sentence printed instead."""

    pattern: str
    sentence: str


_NAN = "those entries are n/a (NaN) in the table and the output files"

#: name -> record; the first whose pattern matches a library warning's message gives its sentence
LIBRARY_NOTES: dict[str, LibraryNote] = {
    "empty": LibraryNote(r"Mean of empty slice|All-NaN (slice|axis) encountered",
                         f"some averages had no valid values (e.g. no usable bootstrap sample, split or repetition): "
                         f"{_NAN}"),
    "dof": LibraryNote(r"Degrees of freedom <= 0",
                       "a spread (SEM, SD) needs at least two values and one had only one: it is n/a (NaN)"),
    "constant": LibraryNote(r"(?i)input array is constant|ConstantInput",
                            f"an RDM or response vector was constant (all values equal) within a sample, so its "
                            f"correlation is undefined: {_NAN}"),
    "near_constant": LibraryNote(r"(?i)input array is nearly constant",
                                 "an RDM or response vector was nearly constant within a sample: its correlation may "
                                 "be inaccurate"),
    "invalid": LibraryNote(r"invalid value encountered",
                           f"some values were undefined (0/0, e.g. a constant RDM or unit within a sample): {_NAN}"),
    "divide": LibraryNote(r"divide by zero encountered",
                          "a division by zero (e.g. a unit or RDM with zero variance) gave infinite or undefined "
                          f"values: {_NAN}"),
    "overflow": LibraryNote(r"overflow encountered",
                            "a value overflowed the floating-point range: check the units of the inputs (rates, "
                            "distances) for very large values"),
}

#: libraries whose warnings are translated whatever their message (their warning classes live there)
LIBRARIES = ("numpy", "scipy", "sklearn", "pandas", "xarray", "torch")


def _is_library(message: str, category: type) -> bool:
    module = getattr(category, "__module__", "") or ""
    if module.split(".")[0] in LIBRARIES:
        return True
    return any(re.search(rec.pattern, message) for rec in LIBRARY_NOTES.values())


def note(message: str, category: type = RuntimeWarning) -> str:
    """The one line printed for a warning: ours unchanged (whitespace folded), a library's as a sentence."""
    text = " ".join(str(message).split())
    if not _is_library(text, category):
        return text
    probe = f"{text} {category.__name__}"
    for rec in LIBRARY_NOTES.values():
        if re.search(rec.pattern, probe):
            return rec.sentence
    origin = (getattr(category, "__module__", "") or "a library").split(".")[0]
    return f"{origin} reported a numerical problem ({text}); values it touched may be n/a (NaN)"


def notes(warnings: Iterable[tuple[str, type]]) -> list[str]:
    """One line per distinct note, in order of first appearance (``warnings``: (message, category) pairs)."""
    return list(dict.fromkeys(note(message, category) for message, category in warnings))
