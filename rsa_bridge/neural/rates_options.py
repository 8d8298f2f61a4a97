"""The rarer parts of a firing-rate DataArray, as one options object of :func:`rsa_bridge.neural.schema.make_rates`
and :func:`rsa_bridge.neural.importers.from_array` (issue 24: no function above 10 parameters).

Example::

    >>> "allow_missing" in RATES_OPTIONS
    True
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Sequence


@dataclass(frozen=True)
class RatesOptions:
    """The rarer parts of a firing-rate DataArray built by :func:`rsa_bridge.neural.schema.make_rates` (and
    :func:`rsa_bridge.neural.importers.from_array`).

    Attributes:
        time_bins: (start, end) in ms per time bin, when the values are 3-D.
        presentation_coords, neuroid_coords: further coordinates along those dims (name -> one value each).
        attrs: provenance (source file, citation ...).
        allow_missing: keep NaN values (a neuroid not observed in a presentation).
        drop_constant: exclude neuroids whose rate never varies (they carry no information and make
            correlations undefined), with a :class:`rsa_bridge.neural.schema.NeuralDataWarning` that counts them.

    Example::

        >>> RatesOptions(time_bins=[(0, 50), (50, 100)], allow_missing=True).drop_constant
        True
    """

    time_bins: Sequence[tuple[float, float]] | None = None
    presentation_coords: dict[str, Sequence] | None = None
    neuroid_coords: dict[str, Sequence] | None = None
    attrs: dict[str, Any] | None = None
    allow_missing: bool = False
    drop_constant: bool = True


#: the keyword names that go into :class:`RatesOptions` (readers that take ``**options`` group them)
RATES_OPTIONS = frozenset(f.name for f in fields(RatesOptions))
