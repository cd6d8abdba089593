"""Whether two folders of result tables agree within the spread of their seeds (``python -m prkd
check-results``).

Float kernels differ between CPU types, so a fresh run on another machine gives the same conclusions but not
the same digits (docs/check-results.md has the measured spread). Each cell is therefore compared number by
number, with a tolerance taken from the committed cell itself:

* ``mean ± half`` (mean and 95 % t half-width over the seeds, ``prkd.views.tables.format_ci``): the fresh
  mean may move by ``MEAN_TOLERANCE_IN_HALF_WIDTHS`` committed half-widths, and the fresh half-width may be
  up to ``HALF_WIDTH_RATIO_TOLERANCE`` times larger or smaller (each give or take one unit of the last digit);
* a number without ``±`` (a single seed, or a difference of means): ``SEED_SPREAD_FACTOR`` standard
  deviations of the same quantity over seeds where the results measured one (a per-run table's group, or a
  text cell written with its ``seed_sd``), else ``SINGLE_RUN_TOLERANCE`` of its metric;
* the metric (PSNR or SSIM) is named by the column header or, where the header names none, by the row's key;
  in a ``PSNR ... / SSIM`` cell the parts around `` / `` follow that order. Numbers of no known metric
  (weights, the paper's constants) must be equal; integers (seeds, ``L_t=9``, ``95 %``) are part of the text;
* text must match once the decimal numbers are replaced by placeholders, except that a list (items between
  ``, `` or `` < ``) may come in another order: a ranking of numbers within tolerance changed, which is a
  note;
* in a claim row (one with a yes/no verdict cell), a differing verdict or a differing number-free conclusion
  (e.g. the name of the best variant) is a note when the numbers it summarises are within tolerance (its
  row's, or its table's for a row without numbers), else a failure.

Rows are matched by the ``run_id`` column if the table has one (with the fewest leading columns that tell
a run's rows apart where it has several), else by the fewest leading columns that tell the committed rows
apart (the first column, for most tables). Columns whose
header names a time, memory, the device or an optics diagnostic (mask drift, speckle contrast, init
correlation, L_cdp: ``UNCOMPARED_COLUMN_WORDS``) are left out, and so are the interval ends and p-values of
the study's beta sweep (``UNCOMPARED_COLUMNS``), whose differences are compared.
"""

from __future__ import annotations

import csv
import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from prkd.checks.cell_tolerance import (HALF_WIDTH_RATIO_TOLERANCE, MEAN_TOLERANCE_IN_HALF_WIDTHS,
                                             SINGLE_RUN_TOLERANCE, Measurement, SeedSpread, compare_cells,
                                             parse_cell)

__all__ = ["HALF_WIDTH_RATIO_TOLERANCE", "KEY_COLUMN", "MEAN_TOLERANCE_IN_HALF_WIDTHS", "SEED_SPREAD_FACTOR",
           "SINGLE_RUN_TOLERANCE", "UNCOMPARED_COLUMN_WORDS", "UNCOMPARED_COLUMNS", "CheckOutcome",
           "Measurement", "compare_cells", "compare_folders", "compare_tables", "parse_cell"]

#: A single run of a per-run table may move by this many standard deviations of its group's committed seeds
#: (the same quantity, measured): 2 keeps about 95 % of a fresh seed's draws, and a machine's float noise
#: moves a run far less than a new seed does.
SEED_SPREAD_FACTOR = 2.0
#: The column that keys the rows of a table when present (a per-run table); otherwise its first column does.
KEY_COLUMN = "run_id"
#: Columns whose (lower-case) header holds one of these are not compared: times, memory and the device are
#: measurements of the machine; the mask drift, loss ratios, flattening gains, interval ends and adjusted
#: p-values have no documented tolerance yet (the PSNR differences they come with are compared).
UNCOMPARED_COLUMN_WORDS = ("second", "time", "memory", "inference", "device", "drift", "contrast",
                           "corr", "l_cdp",
                           "ratio", "holm", "tost", "low", "high", "gain")
#: Columns (exact headers) of derived statistics that are not compared: the study's beta sweep gives each
#: difference's interval ends and p-values beside the difference itself, which is compared.
UNCOMPARED_COLUMNS = ("low", "high", "p", "q (BH)")

_METRIC = re.compile(r"psnr|ssim")
_VERDICT = re.compile(r"(yes|no)\b", re.IGNORECASE)


@dataclass
class CheckOutcome:
    """What check-results found: ``failures`` (outside tolerance) and ``notes`` (within tolerance, yet
    worth reading: a verdict or a ranking that flipped), one line each."""

    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: CheckOutcome) -> None:
        self.failures += other.failures
        self.notes += other.notes


def _is_conclusion(old: str, new: str) -> bool:
    """A verdict (yes/no ...) or a statement without numbers (e.g. the name of the best variant)."""
    no_numbers = not parse_cell(old)[1] and not parse_cell(new)[1]
    return bool(_VERDICT.match(old) or _VERDICT.match(new)) or no_numbers


def _compare_row(table: str, key: str, old_row: dict, new_row: dict, columns: list[str],
                 spreads: dict | None = None) -> tuple[CheckOutcome, list[str], bool]:
    """Compare the row keyed ``key`` of ``table`` (committed ``old_row``, fresh ``new_row``) over ``columns``:
    ``(outcome, changed conclusions, whether the row holds numbers of its own)``. The conclusions are left
    for the caller to judge (``_judge_conclusions``). ``spreads`` (``_seed_spreads``) gives a single run's
    tolerance by its group and column."""
    result, conclusions, where = CheckOutcome(), [], f"{table}: {key}"
    claim_row = any(_VERDICT.match(value or "") for value in old_row.values())
    has_numbers = False
    for column in columns:
        old, new = old_row.get(column) or "", new_row.get(column)
        if new is None:
            result.failures.append(f"{where} / {column}: the column is missing from the fresh run")
            continue
        conclusion = claim_row and _is_conclusion(old, new)
        has_numbers = has_numbers or (not conclusion and bool(parse_cell(old)[1]))
        if old == new:
            continue
        line = f"{where} / {column}: committed {old!r}, fresh {new!r}"
        if conclusion:
            conclusions.append(line)
            continue
        single = _single_run_tolerance(old, old_row.get("group"), column, spreads)
        reasons, reordered = compare_cells(old, new, column if _METRIC.search(column.lower())
                                           else key, single)
        if reasons:
            result.failures.append(f"{line}: {'; '.join(reasons)}")
        elif reordered:
            result.notes.append(f"note: {line}: the order changed; every number is within tolerance")
    return result, conclusions, has_numbers


def _single_run_tolerance(cell: str, group: str | None, column: str, spreads: dict | None) -> float | None:
    """The tolerance of a single number in ``cell``: from the seed spread written with the cell (a
    ``SeedSpread`` read from a table's JSON file), else from its group's seeds in a per-run table, else None
    (``SINGLE_RUN_TOLERANCE``)."""
    seed_sd = getattr(cell, "seed_sd", None)
    if seed_sd is not None and not math.isnan(seed_sd):
        return SEED_SPREAD_FACTOR * seed_sd
    return (spreads or {}).get((group, column))


def _seed_spreads(rows: list[dict], columns: list[str]) -> dict[tuple[str, str], float]:
    """A single run's tolerance in a per-run table (one with ``group`` and ``seed`` columns), by group and
    PSNR or SSIM column: ``SEED_SPREAD_FACTOR`` sample standard deviations of the committed group's seeds (at
    least two seeds that each hold one number in the column)."""
    if "group" not in columns or "seed" not in columns:
        return {}
    spreads = {}
    for column in (c for c in columns if _METRIC.search(c.lower())):
        by_group: dict[str, list[float]] = {}
        for row in rows:
            numbers = parse_cell(row.get(column) or "")[1]
            if len(numbers) == 1 and numbers[0].half is None:
                by_group.setdefault(row.get("group"), []).append(numbers[0].value)
        for group, values in by_group.items():
            if len(values) >= 2:
                spreads[(group, column)] = SEED_SPREAD_FACTOR * statistics.stdev(values)
    return spreads


def _judge_conclusions(conclusions: list[str], numbers_failed: bool, where_numbers: str) -> CheckOutcome:
    """Changed conclusions are notes when the numbers they summarise (``where_numbers``: their row's, or
    their table's) are within tolerance, else failures."""
    result = CheckOutcome()
    for line in conclusions:
        if numbers_failed:
            result.failures.append(f"{line}: a conclusion from numbers outside tolerance ({where_numbers})")
        else:
            result.notes.append(f"note: {line}: a conclusion from numbers within tolerance ({where_numbers})")
    return result


def _key_columns(columns: list[str], rows: list[dict]) -> list[str]:
    """The columns that name a row: the fewest leading columns whose values are unique over the committed
    rows (a sweep's series and its weights, e.g.), after ``KEY_COLUMN`` where present (alone when it names
    each row once; with the leading columns where a run has several rows, e.g. one per quantisation
    level)."""
    first = [KEY_COLUMN] if KEY_COLUMN in columns else []
    rest = [c for c in columns if c != KEY_COLUMN]
    for n in range(0 if first else 1, len(rest) + 1):
        keys = first + rest[:n]
        if len({tuple(row.get(c) for c in keys) for row in rows}) == len(rows):
            return keys
    return first or columns[:1]


def _rows_by_key(rows: list[dict], keys: list[str], table: str, side: str,
                 result: CheckOutcome) -> dict[str, dict]:
    by_key = {}
    for row in rows:
        label = " / ".join(str(row.get(k)) for k in keys)
        if label in by_key:
            result.failures.append(f"{table}: row {label!r} appears twice in {side}")
        by_key[label] = row
    return by_key


def compare_tables(name: str, old: list[dict], new: list[dict],
                   skip_rows: tuple[str, ...] = ()) -> CheckOutcome:
    """Compare table ``name``'s committed rows ``old`` with the fresh rows ``new`` (dicts as csv.DictReader
    gives), leaving out rows whose key starts with one of ``skip_rows``. A changed conclusion in a row without
    numbers of its own (e.g. the name of the best variant) is judged by the numbers of the whole table."""
    result, without_numbers = CheckOutcome(), []
    columns = list(old[0]) if old else []
    keys = _key_columns(columns, old)
    compared = [c for c in columns if c not in keys and c not in UNCOMPARED_COLUMNS
                and not any(word in c.lower() for word in UNCOMPARED_COLUMN_WORDS)]
    spreads = _seed_spreads(old, columns)
    old_rows = _rows_by_key(old, keys, name, "the committed results", result)
    new_rows = _rows_by_key(new, keys, name, "the fresh run", result)
    for label in sorted(set(old_rows) | set(new_rows), key=lambda k: (k not in old_rows, str(k))):
        if str(label).startswith(skip_rows):
            continue
        if label not in new_rows or label not in old_rows:
            where = "the fresh run" if label not in new_rows else "the committed results"
            result.failures.append(f"{name}: row {label!r} is missing from {where}")
            continue
        row, conclusions, has_numbers = _compare_row(name, label, old_rows[label], new_rows[label], compared,
                                                     spreads)
        result.extend(row)
        if has_numbers:
            result.extend(_judge_conclusions(conclusions, bool(row.failures), "this row's"))
        else:
            without_numbers += conclusions
    result.extend(_judge_conclusions(without_numbers, bool(result.failures), "this table's"))
    return result


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _canonical(cell) -> str:
    """A cell of a table's JSON file (``prkd.views.tables.json_cell``) as text at six decimals, whatever the
    table printed: ``mean ± half`` for an interval, a float with its six decimals, a text with its seed
    spread as that text (carrying ``seed_sd``), anything else as it is."""
    if isinstance(cell, dict) and "text" in cell:
        return SeedSpread(cell["text"], cell.get("seed_sd"))
    if isinstance(cell, dict):
        mean, half = (math.nan if cell.get(k) is None else cell[k] for k in ("mean", "half"))
        return f"{mean:.6f}" if math.isnan(half) else f"{mean:.6f} ± {half:.6f}"
    if isinstance(cell, float):
        return f"{cell:.6f}"
    return "" if cell is None else str(cell)


def _read_table(folder: Path, name: str, numbers: bool) -> list[dict]:
    """The rows of table ``name``: from its JSON file (every number unrounded, ``_canonical``) when
    ``numbers``, else from its CSV file as printed."""
    if not numbers:
        return _read_csv(folder / f"{name}.csv")
    table = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    return [{column: _canonical(row.get(column)) for column in table["columns"]} for row in table["rows"]]


def compare_folders(committed: Path, fresh: Path,
                    measured_on_the_machine: dict | None = None) -> CheckOutcome:
    """Compare every CSV table of folder ``committed`` with the same-named table of ``fresh``.

    ``measured_on_the_machine`` (``prkd.views.paper_comparison.MEASURED_ON_THE_MACHINE``): ``"tables"`` left
    out entirely and
    ``"comparison_rows"``, key prefixes of rows left out of any table. Raises FileNotFoundError naming a table
    that ``fresh`` lacks, or when ``committed`` has none.
    """
    committed, fresh = Path(committed), Path(fresh)
    skip = measured_on_the_machine or {}
    names = sorted(p.stem for p in committed.glob("*.csv"))
    if not names:
        raise FileNotFoundError(f"no tables (*.csv) in {committed}")
    result = CheckOutcome()
    for name in names:
        if name in skip.get("tables", ()):
            continue
        if not (fresh / f"{name}.csv").is_file():
            raise FileNotFoundError(f"{fresh / f'{name}.csv'} is missing (run notebook 06 for this preset)")
        numbers = (committed / f"{name}.json").is_file() and (fresh / f"{name}.json").is_file()
        result.extend(compare_tables(name, _read_table(committed, name, numbers),
                                     _read_table(fresh, name, numbers),
                                     tuple(skip.get("comparison_rows", ()))))
    return result
