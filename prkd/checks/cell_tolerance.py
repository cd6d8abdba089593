"""One cell of a result table against its committed value (``prkd.checks.tolerance`` has the rules):
its numbers parsed as written (``parse_cell``), each compared within the tolerance of its kind
(``compare_cells``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["HALF_WIDTH_RATIO_TOLERANCE", "MEAN_TOLERANCE_IN_HALF_WIDTHS", "SINGLE_RUN_TOLERANCE",
           "Measurement", "SeedSpread", "compare_cells", "parse_cell"]

#: The fresh mean may move by this many committed 95 % half-widths: it must lie inside the committed CI.
MEAN_TOLERANCE_IN_HALF_WIDTHS = 1.0
#: The fresh 95 % half-width may be this many times larger or smaller than the committed one. Three seeds
#: estimate a spread with 2 degrees of freedom, so only a gross change (a diverged seed, seeds that collapsed
#: into one run) is caught; the cross-machine re-run measured 1.48 (0.54 -> 0.80).
HALF_WIDTH_RATIO_TOLERANCE = 3.0
#: Absolute tolerance of a number without ``±`` (one seed), by metric: about 1.8 and 1.7 seed standard
#: deviations of the committed quick Table 1 (0.28 dB, 0.030 SSIM; sd = half * sqrt(n) / t(0.975, n - 1)).
SINGLE_RUN_TOLERANCE = {"psnr": 0.5, "ssim": 0.05}
#: A number of no known metric (a weight, an SNR, a constant) must be equal, up to this relative difference:
#: float noise of an unrounded value (a table's JSON file) between machines, far below any printed digit.
UNNAMED_RELATIVE_TOLERANCE = 1e-4

_NUMBER = r"[+-]?\d+\.\d+(?:[eE][+-]?\d+)?"
_MEASUREMENT = re.compile(rf"(?<![\w.])({_NUMBER})(?:\s*±\s*({_NUMBER}))?(?![\w.])")
_METRIC = re.compile(r"psnr|ssim")
_LIST_SEPARATOR = re.compile(r", | < ")
_EPSILON = 1e-9  # keeps a difference written at the tolerance's own digits from failing on float rounding


class SeedSpread(str):
    """A text cell of single-seed numbers (e.g. each L_t's seed-0 student minus E2E) with ``seed_sd``, the
    sample standard deviation over seeds of the same quantity where the run measured one (None: not
    measured). A view writes it into its table's JSON (``prkd.views.tables.json_cell``) and check-results
    reads it back, letting each number move by ``SEED_SPREAD_FACTOR`` times it."""

    seed_sd: float | None

    def __new__(cls, text: str, seed_sd: float | None) -> "SeedSpread":
        cell = super().__new__(cls, text)
        cell.seed_sd = None if seed_sd is None else float(seed_sd)
        return cell


@dataclass(frozen=True)
class Measurement:
    """One number of a cell as written: ``value``, its ``half`` width when written ``value ± half``, and
    the decimals it was written with (its last digit is ``10 ** -decimals``)."""

    value: float
    half: float | None
    decimals: int

    @property
    def unit(self) -> float:
        return 10.0 ** -self.decimals


def parse_cell(text: str) -> tuple[str, list[Measurement]]:
    """The cell's text with each decimal number (or ``mean ± half``) replaced by ``#`` (``# ± #``), and those
    numbers in order. Integers stay in the text: they are counts and labels."""
    measurements = []

    def placeholder(match: re.Match) -> str:
        value, half = match.group(1), match.group(2)
        decimals = len(value.split(".")[1].split("e")[0].split("E")[0])
        measurements.append(Measurement(float(value), None if half is None else float(half), decimals))
        return "#" if half is None else "# ± #"

    return _MEASUREMENT.sub(placeholder, text), measurements


def _metric_of_each_number(cell: str, context: str) -> list[str | None]:
    """``"psnr"``, ``"ssim"`` or None (no known metric) for each number of ``cell``, as ``context`` (a header
    or a row key) names them; a context naming several metrics assigns them in order to the parts around `` /
    ``."""
    mentions = _METRIC.findall(context.lower())
    count = len(parse_cell(cell)[1])
    if len(set(mentions)) == 1:
        return mentions[:1] * count
    parts = cell.split(" / ")
    if mentions and len(parts) == len(mentions):
        return [metric for part, metric in zip(parts, mentions) for _ in parse_cell(part)[1]]
    return [None] * count


def _mean_and_half_outside_tolerance(old: Measurement, new: Measurement) -> list[str]:
    """Why the fresh ``mean ± half`` ``new`` is outside the tolerances of the committed ``old``."""
    reasons, digits = [], old.decimals
    tolerance = max(MEAN_TOLERANCE_IN_HALF_WIDTHS * old.half, old.unit)
    if abs(new.value - old.value) > tolerance + _EPSILON:
        reasons.append(f"{old.value:.{digits}f} -> {new.value:.{new.decimals}f}: mean moved "
                       f"{abs(new.value - old.value):.{digits}f}, tolerance {tolerance:.{digits}f} "
                       f"({MEAN_TOLERANCE_IN_HALF_WIDTHS:g} x the committed half-width)")
    low = old.half / HALF_WIDTH_RATIO_TOLERANCE - old.unit
    high = old.half * HALF_WIDTH_RATIO_TOLERANCE + old.unit
    if not low - _EPSILON <= new.half <= high + _EPSILON:
        reasons.append(f"half-width {old.half:.{digits}f} -> {new.half:.{new.decimals}f}: outside tolerance "
                       f"{max(low, 0):.{digits}f} to {high:.{digits}f} ({HALF_WIDTH_RATIO_TOLERANCE:g} x "
                       "either way)")
    return reasons


def _same(a: float | None, b: float | None) -> bool:
    """Equal up to ``UNNAMED_RELATIVE_TOLERANCE`` (float noise in an unrounded number of no metric)."""
    return a is not None and b is not None and math.isclose(a, b, rel_tol=UNNAMED_RELATIVE_TOLERANCE)


def _number_outside_tolerance(old: Measurement, new: Measurement, metric: str | None,
                              single: float | None = None) -> list[str]:
    """Why ``new`` is outside the tolerance of ``old`` for a number of ``metric`` (None: no known metric); a
    single number's tolerance is ``single`` when given (from its seed spread), else
    ``SINGLE_RUN_TOLERANCE``."""
    shown = f"{old.value:.{old.decimals}f} -> {new.value:.{new.decimals}f}"
    if metric is None:
        equal = _same(old.value, new.value) and (old.half == new.half or _same(old.half, new.half))
        return [] if equal else [f"{shown}: not a PSNR or SSIM, so it must be equal"]
    if old.half is not None:
        return _mean_and_half_outside_tolerance(old, new)
    tolerance = SINGLE_RUN_TOLERANCE[metric] if single is None else single
    moved = abs(new.value - old.value)
    if moved > tolerance + _EPSILON:
        source = "single run" if single is None else "single run; its seed spread"
        return [f"{shown}: moved {moved:.{old.decimals}f}, tolerance {tolerance:.4g} ({source})"]
    return []


def _numbers_outside_tolerance(old: str, new: str, context: str, single: float | None = None) -> list[str]:
    """Why the numbers of ``new`` are outside the tolerances of those of ``old`` (cells with the same
    text)."""
    pairs = zip(parse_cell(old)[1], parse_cell(new)[1], _metric_of_each_number(old, context))
    return [reason for o, n, metric in pairs for reason in _number_outside_tolerance(o, n, metric, single)]


def compare_cells(old: str, new: str, context: str, single: float | None = None) -> tuple[list[str], bool]:
    """``(reasons, reordered)``: why cell ``new`` is outside the tolerance of cell ``old`` (empty when
    within), and whether its list items came in another order. ``context`` names the metric (header or row
    key); ``single`` replaces ``SINGLE_RUN_TOLERANCE`` for a single number (its seed spread)."""
    if old == new:
        return [], False
    if parse_cell(old)[0] == parse_cell(new)[0]:
        return _numbers_outside_tolerance(old, new, context, single), False
    old_list, new_list = _LIST_SEPARATOR.split(old), _LIST_SEPARATOR.split(new)
    old_items = {parse_cell(item)[0]: item for item in old_list}
    new_items = {parse_cell(item)[0]: item for item in new_list}
    if not len(old_items) == len(old_list) == len(new_list) or set(old_items) != set(new_items):
        return ["the text differs (beyond its numbers)"], False
    reasons = [reason for text, item in old_items.items()
               for reason in _numbers_outside_tolerance(item, new_items[text], context, single)]
    return reasons, True
