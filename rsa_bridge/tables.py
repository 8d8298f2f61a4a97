"""Printed tables: one cell per (model, layer) x area, in the order the rows came.

Examples:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"model": ["m", "m"], "layer": ["l1", "l2"], "area": ["V4", "V4"]})
    >>> print(wide_table(t, ["0.1", "0.2"]).splitlines()[-1])
    l2     0.2
"""
from __future__ import annotations

import pandas as pd


def wide_table(rows: pd.DataFrame, cells: list[str]) -> str:
    """``cells`` (one string per row of ``rows``, which has columns model, layer, area) as a model/layer x area
    text table; the model level is dropped when there is one model."""
    wide = rows.assign(cell=cells).pivot_table(index=["model", "layer"], columns="area", values="cell",
                                                aggfunc="first", sort=False)
    wide = wide.reindex(list(dict.fromkeys(zip(rows["model"], rows["layer"]))))
    if rows["model"].nunique() == 1:
        wide.index = wide.index.get_level_values("layer")
    wide.columns.name = None
    return wide.to_string()
