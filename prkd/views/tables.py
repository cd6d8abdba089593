"""Writers of result files: figures as PNG + PDF and tables as CSV + Markdown + JSON, atomically and
byte-stable (no timestamps), and the ``mean ± half-width`` cell format.

The JSON file of a table holds its numbers as numbers, unrounded: a ``mean ± half`` cell (an
:class:`Interval`) as ``{"mean": ..., "half": ...}``, a float as a float (NaN as null), text as text, and a
text of single-seed numbers (a :class:`SeedSpread`) as ``{"text": ..., "seed_sd": ...}``.
``check-results`` compares those (``prkd.checks.tolerance``), so a change in how a table is formatted
cannot change its verdict."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from prkd.checks.cell_tolerance import SeedSpread
from prkd.utils import atomic

__all__ = ["Interval", "SeedSpread", "format_ci", "json_cell", "save_figure", "to_markdown", "write_table"]


class Interval(str):
    """A ``"mean ± half"`` cell: the text a table shows, with its unrounded ``mean`` and ``half`` (NaN for one
    value) kept for the table's JSON file."""

    mean: float
    half: float

    def __new__(cls, mean: float, half: float, digits: int) -> "Interval":
        text = f"{mean:.{digits}f}" if math.isnan(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"
        cell = super().__new__(cls, text)
        cell.mean, cell.half = float(mean), float(half)
        return cell


def format_ci(mean: float, half: float, digits: int) -> Interval:
    """``"mean ± half"`` (just the mean when there is one value), keeping the unrounded numbers."""
    return Interval(mean, half, digits)


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def json_cell(value):
    """A cell as a table's JSON file holds it: an Interval as ``{"mean", "half"}``, a SeedSpread as
    ``{"text", "seed_sd"}``, a float as a float (NaN as None), an int, a bool or None as it is, anything
    else as its text."""
    if isinstance(value, Interval):
        return {"mean": _finite_or_none(value.mean), "half": _finite_or_none(value.half)}
    if isinstance(value, SeedSpread):
        spread = value.seed_sd
        return {"text": str(value), "seed_sd": None if spread is None else _finite_or_none(spread)}
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float) or hasattr(value, "__float__") and not isinstance(value, str):
        return _finite_or_none(float(value))
    return str(value)


def save_figure(fig, folder: Path, name: str, *, dpi: int = 110) -> list[Path]:
    """Write ``fig`` as ``name.png`` and ``name.pdf`` atomically (no timestamps, so a re-run gives the same
    bytes)."""
    paths = []
    for fmt, metadata in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
        paths.append(atomic.write_bytes(folder / f"{name}.{fmt}", buf.getvalue()))
    return paths


def to_markdown(rows: list[dict], title: str = "") -> str:
    """``rows`` (dicts with the same keys) as a Markdown table, under ``title`` in bold if given."""
    columns = list(rows[0])
    md = ([f"**{title}**", ""] if title else []) + ["| " + " | ".join(columns) + " |",
                                                  "|" + "|".join("---" for _ in columns) + "|"]
    md += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(md) + "\n"


def write_table(rows: list[dict], folder: Path, name: str, *, title: str = "") -> list[Path]:
    """Write ``rows`` (dicts with the same keys) as ``name.csv``, ``name.md`` and ``name.json`` (the numbers,
    ``json_cell``) atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    numbers = {"columns": list(rows[0]), "rows": [{k: json_cell(v) for k, v in row.items()} for row in rows]}
    return [atomic.write_text(folder / f"{name}.csv", buf.getvalue()),
            atomic.write_text(folder / f"{name}.md", to_markdown(rows, title)),
            atomic.write_text(folder / f"{name}.json",
                              json.dumps(numbers, indent=1, ensure_ascii=False) + "\n")]
