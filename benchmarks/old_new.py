"""Two checkouts of prkd timed one after the other: the loop, the ratio and the JSON that
``study_slice.py`` and ``reproduce_wall.py`` share."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Callable

#: The checkout these scripts belong to: ``--new`` by default.
REPO = Path(__file__).resolve().parents[1]


def checkout_parser(description: str) -> argparse.ArgumentParser:
    """A parser with the options every old-against-new script has: ``--old``, ``--new`` and ``--out``."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", type=Path, required=True,
                        help="the other checkout (e.g. a git worktree of an older commit)")
    parser.add_argument("--new", type=Path, default=REPO, help="default: this checkout")
    parser.add_argument("--out", type=Path, default=None, help="write the record here as JSON")
    return parser


def machine_line() -> str:
    """The machine as the records name it: CPU model, vector extensions, bfloat16 units, cores and the GEMM
    rate on one thread (``machine.py``), so that a reader can scale the seconds to their own machine."""
    from machine import gemm_gflops, facts  # imports torch: only when a record is made
    found = facts()
    units = found["bfloat16_units"]
    return (f"{found['cpu_model']} ({found['vector_extensions']}; bfloat16 units: {units}), "
            f"{os.cpu_count()} cores, "
            f"gemm_gflops_1thread {gemm_gflops(1):.1f}")


def alternate(measure: Callable[[Path], dict], old: Path, new: Path, repeats: int, record: dict,
              ratio_name: str, out: Path | None) -> dict:
    """Call ``measure(checkout)`` for ``old`` then ``new``, ``repeats`` times; add the results to ``record``
    under "old" and "new" and the ratio of their summed "seconds" under ``ratio_name`` (below 1 when the new
    checkout is faster); print each and write ``record`` to ``out`` as JSON if given."""
    record.update(old=[], new=[])
    for _ in range(repeats):
        for which, code in (("old", old), ("new", new)):
            result = measure(code.resolve())
            record[which].append(result)
            print(f"{which}: {result['seconds']} s {result.get('runs', result.get('prkd', ''))}", flush=True)
    seconds = {which: sum(r["seconds"] for r in record[which]) for which in ("old", "new")}
    record[ratio_name] = round(seconds["new"] / seconds["old"], 4)
    print(f"{ratio_name}: {record[ratio_name]}")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2) + "\n")
        print(f"written: {out}")
    return record
