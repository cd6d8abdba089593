"""A reading says no more than its interval: an interval that holds 0 is "not resolved" unless two one-sided
tests showed equivalence, never a tie or a difference; a difference that Holm's adjustment does not keep is
"before correction only"; a run's end is "flat under its schedule", never "converged" unless a doubled budget
moved it within the margin. Checked on ``prkd.experiments.readings`` and on every committed verdict and
flatness table."""

import math
import re

import pytest

from conftest import REPO
from prkd.experiments.readings import FLAT_DB, flatness_reading, reading
from prkd.experiments.stats import PairedResult

ALLOWED_WHEN_ZERO_INSIDE = ("not resolved", "equivalent within")
FORBIDDEN = re.compile(r"\b(tie|ties|tied|level with|same as|no different|converged)\b", re.IGNORECASE)


def _result(low: float, high: float) -> PairedResult:
    return PairedResult((low + high) / 2, low, high, 5, 0.5, "t over seeds")


@pytest.mark.parametrize("low, high", [(-0.6, 0.34), (-0.01, 0.01), (0.0, 0.5), (-0.5, 0.0), (-2.0, 1.9)])
@pytest.mark.parametrize("holm_p", [0.04, 0.2, 1.0])
def test_an_interval_holding_zero_is_not_resolved_or_equivalent(low, high, holm_p):
    for equivalence in ("equivalence not shown", "equivalent within ±0.25"):
        said = reading(_result(low, high), holm_p if holm_p >= 0.05 else 0.2, equivalence)
        assert said.startswith(ALLOWED_WHEN_ZERO_INSIDE), said
        assert said.startswith("equivalent") == equivalence.startswith("equivalent"), said


def test_a_difference_holm_does_not_keep_is_before_correction_only():
    said = reading(_result(0.1, 0.9), 0.3, "equivalence not shown")
    assert said == "A > B before correction only (Holm p = 0.30)"
    assert reading(_result(-0.9, -0.1), 0.01, "equivalence not shown") == "A < B (Holm p < 0.05)"
    assert reading(PairedResult(0.2, math.nan, math.nan, 1, math.nan, "t over seeds"), 1.0,
                   "equivalence not shown").startswith("not resolved")


def test_a_flat_end_is_flat_under_its_schedule_and_converged_only_after_a_doubling():
    assert flatness_reading(FLAT_DB / 2) == "flat under its schedule"
    assert flatness_reading(FLAT_DB / 2, "equivalence not shown") == "flat under its schedule"
    assert flatness_reading(FLAT_DB / 2, "equivalent within ±0.25").startswith("converged: a doubling")
    assert flatness_reading(FLAT_DB) == "still rising at its end"
    assert flatness_reading(2 * FLAT_DB, "equivalent within ±0.25") == "still rising at its end"
    assert flatness_reading(math.nan) == "not measured"


@pytest.mark.parametrize("experiment", ["study", "ladder", "unrolled"])
def test_every_experiment_folder_holds_the_same_tables_and_reads_its_flatness(experiment):
    from prkd.views.experiment_report import COMMON_TABLES
    folder = REPO / "docs" / "results" / experiment
    assert {f"{name}.{ext}" for name in COMMON_TABLES for ext in ("csv", "md", "json")} <= {
        p.name for p in folder.iterdir()}
    assert (folder / "records").is_dir() and (folder / "wall_time.json").is_file()
    for row in _tables(folder / "flatness.md"):
        assert row["reading"] in ("flat under its schedule", "still rising at its end"), row


def _tables(path):
    """The rows of every Markdown table in ``path`` as dicts of its header's columns."""
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header = [c.strip() for c in line.strip("|").split("|")]
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                yield dict(zip(header, (c.strip() for c in row.strip("|").split("|"))))


def _interval(row: dict) -> tuple[float, float] | None:
    """(low, high) from separate columns, or from a 'mean [low, high]' cell (the study's)."""
    if row.get("low") not in (None, "", "nan") and row.get("high") not in (None, "", "nan"):
        return float(row["low"]), float(row["high"])
    ssim = "(SSIM)" in row.get("claim", "")  # the study's SSIM claims are read from the SSIM interval
    cell = row.get("ΔSSIM (CI)" if ssim else "ΔPSNR (dB, CI)", "")
    found = re.search(r"\[([^,\]]+),\s*([^\]]+)\]", cell.replace("−", "-"))
    if not found or "nan" in found.group(0):
        return None
    return float(found.group(1)), float(found.group(2))


@pytest.mark.parametrize("experiment", ["study", "ladder", "unrolled"])
def test_every_committed_reading_says_no_more_than_its_interval(experiment):
    checked = 0
    for path in sorted((REPO / "docs" / "results" / experiment).glob("*.md")):
        for row in _tables(path):
            said = row.get("reading", "")
            if said.endswith("see verdict"):  # the study's single-run and equivalence rows: read the verdict
                said = row["verdict"]
            assert not FORBIDDEN.search(said), (path.name, row)
            interval = _interval(row) if said else None
            if interval is None:
                continue
            checked += 1
            low, high = interval
            if low <= 0 <= high:
                assert said.startswith(ALLOWED_WHEN_ZERO_INSIDE), (path.name, row)
            else:
                assert not said.startswith("equivalent") or max(abs(low), abs(high)) <= 0.25, (path.name, row)
    assert checked >= 5, f"no readings found for {experiment}"
