"""Positive and negative image sets from a label column of a stimulus set's manifest.

``positive`` selects the rows whose label equals it; the negatives are every other labelled row, or
only those equal to ``negative`` when it is given (rows with neither value are left out). Rows with
an empty label are left out. Without ``positive`` the column must be binary (0/1, true/false or
yes/no) and its true value is the positive one. Values are compared as text, and as numbers when the
column is numeric (so ``--positive 1`` matches 1 and 1.0).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rsa_bridge.errors import RSABridgeError, preview

_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no"}


@dataclass(frozen=True)
class LabelSplit:
    """Which stimuli are positive.

    Attributes:
        stimulus_ids: the stimuli used, in manifest order.
        is_positive: (n,) booleans aligned with ``stimulus_ids``.
        label: the column; positive / negative: descriptions of the two sets.
        n_left_out: labelled rows that were neither positive nor the requested negative, plus empty ones.
    """

    stimulus_ids: list[str]
    is_positive: np.ndarray
    label: str
    positive: str
    negative: str
    n_left_out: int


def _equals(column: pd.Series, value: str) -> pd.Series:
    text = column.astype(str).str.strip() == str(value).strip()
    if pd.api.types.is_numeric_dtype(column):
        number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
        if pd.notna(number):
            return text | (column == number)
    return text


def _default_positive(column: pd.Series, label: str) -> str:
    values = list(dict.fromkeys(column.astype(str).str.strip()))
    lowered = {v.lower() for v in values}
    if len(values) == 2 and lowered & _TRUE and lowered & _FALSE and lowered <= _TRUE | _FALSE:
        return next(v for v in values if v.lower() in _TRUE)
    raise RSABridgeError(
        f"label column {label!r} has the values {preview(values, 6)}, not a binary 0/1 or true/false; "
        "say which value is positive: --positive VALUE"
    )


def split_by_label(stimulus_set, label: str, positive: str | None = None,
                   negative: str | None = None) -> LabelSplit:
    """Positive/negative split of ``stimulus_set`` (a :class:`stimuli.StimulusSet`) by column ``label``.

    Raises:
        RSABridgeError: the column is missing (the message lists the columns), the value does not
            occur, the column is not binary and no ``positive`` is given, or a set is empty.
    """
    manifest = stimulus_set.manifest
    if label not in manifest.columns or label in ("stimulus_id", "filename"):
        columns = [c for c in manifest.columns if c not in ("stimulus_id", "filename")]
        raise RSABridgeError(
            f"stimulus set {stimulus_set.name!r} has no label column {label!r}; its label columns are "
            f"{preview(columns, 8) if columns else 'none (add one to manifest.csv)'}"
        )
    column = manifest[label]
    labelled = column.notna() & (column.astype(str).str.strip() != "")
    present = column[labelled]
    if present.empty:
        raise RSABridgeError(f"label column {label!r} is empty; fill it in manifest.csv")
    if positive is None:
        positive = _default_positive(present, label)
    pos = _equals(column, positive) & labelled
    values = list(dict.fromkeys(present.astype(str).str.strip()))
    if not pos.any():
        raise RSABridgeError(
            f"no stimulus has {label} = {positive!r}; the column's values are {preview(values, 8)}"
        )
    if negative is not None:
        neg = _equals(column, negative) & labelled & ~pos
        if not neg.any():
            raise RSABridgeError(
                f"no stimulus has {label} = {negative!r} (the negative set); the column's values are "
                f"{preview(values, 8)}"
            )
        neg_text = f"{label} = {negative}"
    else:
        neg = labelled & ~pos
        neg_text = f"{label} != {positive}"
    if not neg.any():
        raise RSABridgeError(
            f"every labelled stimulus has {label} = {positive!r}, so the negative set is empty; "
            "choose a label that splits the stimuli"
        )
    used = (pos | neg).to_numpy()
    ids = manifest["stimulus_id"].astype(str).to_numpy()[used].tolist()
    return LabelSplit(ids, pos.to_numpy()[used], label, f"{label} = {positive}", neg_text,
                      int(len(manifest) - used.sum()))
