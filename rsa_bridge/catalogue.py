"""The catalogue of shipped datasets as a small JSON index, so that listing them needs no NetCDF reader.

``rsa-bridge datasets`` prints :func:`read_index` (json and plain text only: it answers at once);
:func:`build_index` recomputes the same rows from the NetCDF files with
:func:`rsa_bridge.datasets.list_datasets`, and a test fails when the checked-in index is stale.
Refresh it with ``python -m rsa_bridge.catalogue`` after changing a shipped dataset.
"""
from __future__ import annotations

import json
from pathlib import Path

INDEX = Path(__file__).resolve().parent / "data" / "index.json"
COLUMNS = ("dataset", "area", "n_stimuli", "n_rdms", "metric", "description")


def read_index(path: Path = INDEX) -> list[dict]:
    """The rows of the checked-in index (one per dataset x area)."""
    return json.loads(Path(path).read_text())["rows"]


def build_index() -> list[dict]:
    """The same rows, computed from the shipped NetCDF files."""
    from rsa_bridge.datasets import list_datasets

    table = list_datasets()
    return [{c: (int(v) if c in ("n_stimuli", "n_rdms") else str(v)) for c, v in row.items()}
            for row in table[list(COLUMNS)].to_dict("records")]


def write_index(path: Path = INDEX) -> Path:
    """Recompute the index and write it (atomically)."""
    from rsa_bridge.io import write_text

    write_text(json.dumps({"columns": list(COLUMNS), "rows": build_index()}, indent=1) + "\n", path)
    return path


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of ``rows``, columns left-aligned (numbers right-aligned)."""
    cells = [[str(r[c]) for c in COLUMNS] for r in rows]
    widths = [max([len(c)] + [len(row[k]) for row in cells]) for k, c in enumerate(COLUMNS)]
    numeric = {COLUMNS.index("n_stimuli"), COLUMNS.index("n_rdms")}

    def line(values):
        return "  ".join(v.rjust(w) if k in numeric else v.ljust(w)
                         for k, (v, w) in enumerate(zip(values, widths))).rstrip()

    return "\n".join([line(COLUMNS)] + [line(row) for row in cells])


if __name__ == "__main__":  # pragma: no cover
    print(f"wrote {write_index()}")
