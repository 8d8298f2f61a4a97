"""Floating-point precisions: one :class:`Precision` record per name, in one registry (:data:`PRECISIONS`).

The RDM working precision (``RDMOptions.precision``, ``--precision``: the Gram products of
:mod:`rsa_bridge.gram`) and the values an RDM store keeps (``RDMOptions.storage``, ``--rdm-storage``:
:mod:`rsa_bridge.rdm_store`) choose from the same records; ``options.PRECISIONS``, ``options.RDM_STORAGES``,
``gram.DTYPES`` and ``rdm_store.STORAGE`` are views of this registry. The module imports only the standard
library (the numpy dtype is looked up on first use), so a command-line parser can be built from it.

Example::

    >>> from rsa_bridge.precisions import PRECISIONS
    >>> p = PRECISIONS.get_record("FLOAT32")
    >>> p.name, p.itemsize, str(p.numpy_dtype()), p.unit_roundoff == 2.0 ** -24
    ('float32', 4, 'float32', True)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rsa_bridge.registry import Registry

__all__ = ["PRECISIONS", "Precision"]


@dataclass(frozen=True)
class Precision:
    """One IEEE-754 floating-point precision.

    Attributes:
        name: the name users type (``float64``); also the numpy dtype name.
        itemsize: bytes per value (8, 4).
        torch_name: the attribute of ``torch`` that is its dtype (``torch.float64``; looked up by the torch
            backends, :data:`rsa_bridge.gram.DTYPES`, since the core imports torch only there).
        mantissa_bits: significand bits including the implicit one (53, 24); the unit roundoff is 2^-bits.
        description: one line for help texts and the reference page.
    """

    name: str
    itemsize: int
    torch_name: str
    mantissa_bits: int
    description: str

    @property
    def unit_roundoff(self) -> float:
        """Relative rounding error bound of one stored value, 2^-mantissa_bits."""
        return 2.0 ** -self.mantissa_bits

    def numpy_dtype(self) -> Any:
        """The ``numpy.dtype``."""
        import numpy as np

        return np.dtype(self.name)


_PRECISIONS = (
    Precision("float64", 8, "float64", 53, "double precision: equals the float64 reference computations to ~1e-12"),
    Precision("float32", 4, "float32", 24, "single precision: half the memory and faster; each value within "
              "|d| 2^-24 when stored, ~1e-6 absolute on correlation distances when computed"),
)

#: precision name -> its record
PRECISIONS: Registry[Precision] = Registry("precision", {p.name: p for p in _PRECISIONS})
