"""Value checks shared by every reader: real numbers, whole numbers, finite times, and the RDM checks that are
relative to the entries compared (never to the largest entry of the matrix).

Each check raises one :class:`~rsa_bridge.errors.RSABridgeError` line naming the variable and the first bad
position, so a reader that calls it needs no message of its own:

- :func:`real_numbers` -- float values; complex values, True/False and text that is not a number are refused
  (a complex value would otherwise lose its imaginary part silently); numeric text ('3') is read as its number;
- :func:`whole_numbers` -- int64 values (repetition numbers, counts); NaN, inf, fractions and text are refused
  (``astype(int64)`` would turn NaN into -2**63 and truncate 1.5 to 1);
- :func:`finite_times` -- float64 times (s) without NaN or inf (a NaN onset counts no spike at all);
- :func:`rdm_scales` / the rules of :func:`rsa_bridge.condensed.check_square`: symmetry per entry
  ``|d_ij - d_ji| <= RTOL max(|d_ij|, |d_ji|) + ATOL`` and a zero diagonal ``|d_ii| <= RTOL m_i + ATOL`` with
  m_i the median |off-diagonal| entry of row i; :func:`looks_like_similarity` tells a similarity matrix
  (diagonal 1, entries in [-1, 1]) apart, and :func:`similarity_to_dissimilarity` is the one opt-in conversion.

Example:
    >>> import numpy as np
    >>> whole_numbers([0, 1.0, 2], "repetition").tolist()
    [0, 1, 2]
    >>> whole_numbers([0, 1.5], "repetition")
    Traceback (most recent call last):
    ...
    stimuli.errors.RSABridgeError: repetition must hold whole numbers; position 1 holds 1.5
"""
from __future__ import annotations

import numpy as np

from rsa_bridge.errors import RSABridgeError

#: relative tolerance of the symmetry and zero-diagonal checks (per entry / per row)
RTOL = 1e-8
#: absolute floor of those checks: the smallest normal float64, so the rule is relative at every scale
ATOL = float(np.finfo(np.float64).tiny)
#: the attribute that records an opt-in similarity -> dissimilarity conversion
CONVERTED_ATTR = "converted_from"
#: its value
CONVERTED_VALUE = "similarity s (diagonal 1): dissimilarity = 1 - s"


def _position(index) -> str:
    index = tuple(int(i) for i in np.atleast_1d(index))
    return str(index[0]) if len(index) == 1 else "[" + ", ".join(map(str, index)) + "]"


def _as_numbers(values, name: str) -> np.ndarray:
    """An ndarray of a numeric dtype; text or objects that are not plain real numbers are one error line."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iuf":
        return arr
    if arr.dtype.kind == "b":
        raise RSABridgeError(f"{name} must be numbers, not True/False values (dtype bool)")
    if arr.dtype.kind == "c":
        bad = np.argwhere(np.imag(arr) != 0)
        where = f"; position {_position(bad[0])} holds {arr[tuple(bad[0])]}" if bad.size else ""
        raise RSABridgeError(f"{name} must be real numbers, not complex ({arr.dtype}{where}); take the real part "
                             "or the magnitude yourself before importing")
    flat = arr.ravel()
    out = np.empty(flat.shape, dtype=np.float64)
    for k, v in enumerate(flat):
        if isinstance(v, (str, bytes, np.str_, np.bytes_)):  # numeric text ('3', '0.5') is read as its number
            try:
                out[k] = float(v)
                continue
            except ValueError:
                pass
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            kind = "complex" if isinstance(v, (complex, np.complexfloating)) else type(v).__name__
            raise RSABridgeError(f"{name} must be numbers; position {_position(np.unravel_index(k, arr.shape))} "
                                 f"holds {str(v)[:40]!r} ({kind})")
        out[k] = float(v)
    return out.reshape(arr.shape)


def real_numbers(values, name: str) -> np.ndarray:
    """``values`` as floats (any shape; float32/float64 kept, anything else float64); complex, text or object
    values that are not plain numbers are one error line naming ``name`` and a position.

    NaN and inf pass (whether they are allowed is the caller's rule).
    """
    arr = _as_numbers(values, name)
    return arr if arr.dtype.kind == "f" else arr.astype(np.float64)


def whole_numbers(values, name: str, limit: int | None = None) -> np.ndarray:
    """``values`` as int64; NaN, inf, fractions, text, complex or values beyond int64 (or beyond ``limit`` in size,
    e.g. 2**53 for repetition numbers, which are labels) are one error line naming the first position."""
    arr = _as_numbers(values, name)
    why = "" if limit is None else f" (labels: whole numbers of at most {_power_of_two(limit)} in size)"
    if arr.dtype.kind in "iu":
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            raise RSABridgeError(f"{name} holds {int(arr.max())}, beyond the 64-bit integer range")
        out = arr.astype(np.int64)
        if limit is not None and out.size and (np.abs(out) > limit).any():
            first = np.argwhere(np.abs(out) > limit)[0]
            raise RSABridgeError(f"{name} must hold whole numbers; position {_position(first)} holds "
                                 f"{int(out[tuple(first)])}{why}")
        return out
    bound = 2.0 ** 63 if limit is None else float(limit)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(arr) | (arr != np.round(arr)) | (np.abs(arr) >= 2.0 ** 63) | (np.abs(arr) > bound)
    if bad.any():
        first = np.argwhere(bad)[0]
        raise RSABridgeError(f"{name} must hold whole numbers; position {_position(first)} holds "
                             f"{arr[tuple(first)]:g}{why}")
    return arr.astype(np.int64)


def _power_of_two(limit: int) -> str:
    k = int(limit).bit_length() - 1
    return f"2**{k}" if limit == 2 ** k else f"{limit:,}"


def finite_times(values, name: str) -> np.ndarray:
    """``values`` (seconds) as float64 with no NaN or inf (one error line naming ``name`` and the row)."""
    arr = real_numbers(values, name)
    bad = ~np.isfinite(arr)
    if bad.any():
        first = np.argwhere(bad)[0]
        raise RSABridgeError(f"{name} must be finite times; row {_position(first)} holds {arr[tuple(first)]:g} "
                             f"({int(bad.sum())} such rows); fix or drop those rows")
    return arr


def asymmetric(a: np.ndarray, b: np.ndarray, rtol: float = RTOL) -> np.ndarray:
    """Mask of entries where a and its mirror b differ: ``|a - b| > rtol max(|a|, |b|) + ATOL`` (no squares)."""
    return np.abs(a - b) > rtol * np.maximum(np.abs(a), np.abs(b)) + ATOL


def row_scales(panel: np.ndarray, first_row: int) -> np.ndarray:
    """Median |off-diagonal| entry of each row of a row panel (rows first_row ... of a square matrix)."""
    a = np.abs(panel)
    rows = np.arange(a.shape[0])
    a[rows, first_row + rows] = np.nan
    with np.errstate(all="ignore"):
        return np.nanmedian(a, axis=1) if a.shape[1] > 1 else np.zeros(a.shape[0])


def looks_like_similarity(diagonal: np.ndarray, lo: float, hi: float) -> bool:
    """Whether a square matrix with this diagonal and off-diagonal range [lo, hi] is a similarity matrix:
    every diagonal entry 1 (to 1e-6) and every entry in [-1, 1]."""
    diagonal = np.asarray(diagonal, dtype=np.float64)
    return bool(diagonal.size and np.all(np.abs(diagonal - 1.0) <= 1e-6) and lo >= -1.0 - 1e-9 and hi <= 1.0 + 1e-9)


def similarity_message(name: str) -> str:
    """The one line that refuses a similarity matrix where dissimilarities are expected."""
    return (f"the {name} RDM has a non-zero diagonal of 1 and entries in [-1, 1]: it looks like a similarity "
            "matrix, not dissimilarities; "
            "convert it with 1 - s if that is what it is (--similarity-to-dissimilarity, or "
            "rsa_bridge.value_checks.similarity_to_dissimilarity)")


def similarity_to_dissimilarity(values):
    """1 - s of a similarity matrix (or a stack of them, ``(..., n, n)``), the diagonal set to exactly 0.

    ``values`` may be an ndarray, an ``xarray.DataArray`` or an RDM ``xarray.Dataset`` (every area variable); the
    xarray results carry ``attrs['converted_from']`` saying so.

    Example:
        >>> import numpy as np
        >>> similarity_to_dissimilarity(np.array([[1.0, 0.25], [0.25, 1.0]])).tolist()
        [[0.0, 0.75], [0.75, 0.0]]
    """
    if hasattr(values, "data_vars"):
        out = values.copy()
        for name in values.data_vars:
            if values[name].ndim >= 2:
                out[name] = similarity_to_dissimilarity(values[name])
        return out
    if hasattr(values, "dims"):
        out = values.copy(data=similarity_to_dissimilarity(np.asarray(values.values)))
        out.attrs[CONVERTED_ATTR] = CONVERTED_VALUE
        return out
    s = real_numbers(values, "the similarity matrix")
    d = 1.0 - s
    n = d.shape[-1]
    d[..., np.arange(n), np.arange(n)] = 0.0
    return d
