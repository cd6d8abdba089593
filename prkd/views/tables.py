"""Writers of result files: figures as PNG + PDF and tables as CSV + Markdown, atomically and byte-stable (no
timestamps), and the ``mean ± half-width`` cell format."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from prkd.utils import atomic

__all__ = ["format_ci", "save_figure", "to_markdown", "write_table"]


def format_ci(mean: float, half: float, digits: int) -> str:
    """``"mean ± half"`` (just the mean when there is one value)."""
    return f"{mean:.{digits}f}" if math.isnan(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"


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
    """Write ``rows`` (dicts with the same keys) as ``name.csv`` and ``name.md`` atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return [atomic.write_text(folder / f"{name}.csv", buf.getvalue()),
            atomic.write_text(folder / f"{name}.md", to_markdown(rows, title))]
