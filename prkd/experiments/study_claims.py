"""The study's answer: each claim of the paper as a paired difference with its 95 % interval and a verdict --
the study's verdict table (``prkd.experiments.study.STUDY``'s ``verdict``).

Everything here reads the study's collected runs (``prkd.experiments.engine.Results``); nothing trains. A
comparison of two configurations A and B uses the seeds they share (seed s of both has the same data order,
initial masks, filter and U-Net), through ``prkd.experiments.stats``:

* over seeds -- the paired t interval of the mean difference of the runs' test PSNR (the primary figure,
  since it includes what changes when the study is run again), and
* over images -- a BCa bootstrap interval of the mean per-image difference, each image's difference first
  averaged over the shared seeds (test-set sampling only).

The teachers are single runs (seed 0), and runs with different numbers of masks do not share their initial
U-Net (the seed's generator draws the masks first), so a teacher comparison has no pairing. Its interval
borrows the seed spread of the E2E baseline's seeds: difference +- t(0.975, n - 1) s sqrt(2) (or
s sqrt(1 + 1/n) against the mean of the n E2E seeds, the L_t = 1 point), with s their standard deviation --
an assumption, stated in the table.

The verdict reads the primary interval: "holds" when it lies above 0 on the claimed side, "refuted" when it
lies on the other side, "not resolved at this precision" otherwise; the reading beside it comes from the one
Holm-and-reading step of every experiment (``prkd.experiments.verdicts.read_family``). A plateau claim ("about
equal") is an equivalence test (two one-sided tests: the 90 % interval within +- ``EQUIVALENCE_MARGIN_DB``).
Beside every verdict stand the numbers that say whether the comparison could show anything: how far the masks
moved, their speckle contrast, the initialization's correlation with the truth and L_cdp against the teacher.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy import stats as scipy_stats

from prkd.experiments.engine import Results
from prkd.experiments.readings import scoped_verdict
from prkd.experiments.spec import Comparison
from prkd.experiments.stats import EQUIVALENCE_MARGIN_DB, PairedResult, equivalence_seeds, paired_images, \
    paired_seeds
from prkd.experiments.verdicts import read_family, seed_pairs
from prkd.registry import Run

__all__ = ["PairedComparison", "compare", "compare_teachers", "claims", "scope", "verdict_rows"]

#: Interval of an equivalence (plateau) claim: two one-sided tests at 5 % each.
PLATEAU_CONFIDENCE = 0.90


@dataclass(frozen=True)
class PairedComparison:
    """A - B on the seeds both have: over seeds (PSNR, SSIM) and over images (PSNR), with the optics'
    state."""

    a: str
    b: str
    seeds: tuple[int, ...]
    psnr: PairedResult
    ssim: PairedResult
    images: PairedResult
    optics: dict
    #: two one-sided tests of |A - B| >= EQUIVALENCE_MARGIN_DB in PSNR over the seeds: (p, reading)
    equivalence: tuple[float, str] = (math.nan, "equivalence not shown")

    def primary(self, metric: str = "psnr") -> PairedResult:
        """The interval a verdict reads: over seeds (or, for single runs, with the E2E seeds' spread)."""
        return self.ssim if metric == "ssim" else self.psnr


def _median(runs, key: str) -> float:
    values = [r.metrics().get(key) for r in runs]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else math.nan


def _optics(runs_a: list[Run], runs_b: list[Run]) -> dict:
    """Median over seeds of the diagnostics of both sides (see ``prkd.learning.diagnostics``)."""
    out = {}
    for side, runs in (("a", runs_a), ("b", runs_b)):
        for key in ("mask_drift_rad", "speckle_contrast_start", "speckle_contrast_end", "init_corr_end",
                    "val_cdp_end", "val_cdp_std_end"):
            out[f"{key}_{side}"] = _median(runs, key)
    return out


def _per_image_mean(metrics: list[dict]) -> list[float]:
    """Each test image's PSNR averaged over the runs (the same test images, in the same order)."""
    return [statistics.fmean(values) for values in zip(*(m["test_psnr_per_image"] for m in metrics))]


def compare(results: Results, a: str, b: str, seeds: tuple[int, ...] | None = None, *,
            confidence: float = 0.95) -> PairedComparison:
    """Paired comparison of groups ``a`` and ``b`` on their shared seeds (``verdicts.seed_pairs``) or
    ``seeds``."""
    ga, gb = results.group(a), results.group(b)
    shared = tuple(s for s, _ in seed_pairs(results, Comparison("", a, b))) if seeds is None else tuple(seeds)
    if not shared:
        raise ValueError(f"groups {a!r} and {b!r} share no seed")
    ma, mb = [ga[s].metrics() for s in shared], [gb[s].metrics() for s in shared]
    psnr_a, psnr_b = [m["test_psnr"] for m in ma], [m["test_psnr"] for m in mb]
    equivalence = (equivalence_seeds(psnr_a, psnr_b, EQUIVALENCE_MARGIN_DB) if len(shared) > 1
                   else (math.nan, "equivalence not shown"))
    return PairedComparison(a, b, shared,
                      psnr=paired_seeds(psnr_a, psnr_b, confidence=confidence),
                      ssim=paired_seeds([m["test_ssim"] for m in ma], [m["test_ssim"] for m in mb],
                                        confidence=confidence),
                      images=paired_images(_per_image_mean(ma), _per_image_mean(mb), confidence=confidence),
                      optics=_optics([ga[s] for s in shared], [gb[s] for s in shared]),
                      equivalence=equivalence)


def _single_run_interval(results: Results, a: float, b: float, *, b_is_e2e_mean: bool,
                         key: str) -> PairedResult:
    """a - b for single runs, with the seed spread s of the E2E seeds: +- t s sqrt(2), or s sqrt(1 + 1/n) when
    b is the mean of the n E2E seeds."""
    e2e = [r.metrics()[key] for r in results.group("e2e").values()]
    n = len(e2e)
    if n < 2:
        return PairedResult(a - b, math.nan, math.nan, 1, math.nan, "single runs (no E2E seed spread)")
    spread = math.sqrt(1 + 1 / n if b_is_e2e_mean else 2)
    half = scipy_stats.t.ppf(0.975, n - 1) * statistics.stdev(e2e) * spread
    return PairedResult(a - b, a - b - half, a - b + half, 1, math.nan,
                        f"single runs ± E2E spread ({n} seeds)")


def compare_teachers(results: Results, a: str, b: str) -> PairedComparison:
    """Teacher ``a`` (one run) against teacher ``b`` or, for ``b == "e2e"``, the mean of the E2E seeds."""
    run_a = results.group(a)[0]
    runs_b = list(results.group(b).values())
    ma, mb = run_a.metrics(), [r.metrics() for r in runs_b]
    versus_mean = b == "e2e"
    intervals = {key: _single_run_interval(results, ma[key], statistics.fmean(m[key] for m in mb),
                                           b_is_e2e_mean=versus_mean, key=key)
                                           for key in ("test_psnr", "test_ssim")}
    return PairedComparison(a, b, (0,), psnr=intervals["test_psnr"], ssim=intervals["test_ssim"],
                      images=paired_images(ma["test_psnr_per_image"], _per_image_mean(mb)),
                      optics=_optics([run_a], runs_b))


def _equivalence(result: PairedResult, margin: float) -> str:
    if math.isnan(result.low):
        return "not resolved at this precision"
    if -margin < result.low and result.high < margin:
        return "holds"
    if result.low > margin or result.high < -margin:
        return "refuted"
    return "not resolved at this precision"


def claims(plan) -> list[tuple[str, str, str, str]]:
    """(claim, A, B, kind) of every row of the verdict of ``plan`` (a ``study.StudyPlan``). kind: 'greater'
    (A > B in PSNR), 'greater ssim' (in SSIM), 'teacher' (A > B, single teacher runs) or 'plateau' (A = B
    within the margin)."""
    L = plan.table_teacher
    rows = [
        (f"student (KD, L_t = {L}) > E2E", "KD", "e2e", "greater"),
        (f"student (KD, L_t = {L}) > random", "KD", "random", "greater"),
        ("E2E > random (learned optics help at all)", "e2e", "random", "greater"),
        ("Table 1: L_cdp only > neither (E2E)", "L_cdp only", "e2e", "greater"),
        ("Table 1: L_feat only > neither (E2E)", "L_feat only", "e2e", "greater"),
        ("Table 1: L_cdp + L_feat > L_cdp only (the paper's best PSNR)", "KD", "L_cdp only", "greater"),
        ("Table 1: L_cdp + L_feat > L_feat only", "KD", "L_feat only", "greater"),
        ("Table 1: L_cdp only > L_feat only", "L_cdp only", "L_feat only", "greater"),
        ("Table 1 (SSIM): L_cdp only > L_cdp + L_feat (the paper's best SSIM)", "L_cdp only", "KD",
         "greater ssim"),
    ]
    masks = sorted(set(plan.teacher_masks) | {1, L})
    rows += [(f"Fig. 2: teacher PSNR rises with L_t: L_t = {hi} > L_t = {lo}"
              + (" (E2E, mean of its seeds)" if lo == 1
              else ""), f"teacher L_t={hi}", "e2e" if lo == 1 else f"teacher L_t={lo}", "teacher")
             for lo, hi in zip(masks, masks[1:])]
    for Ls in plan.student_masks:
        rows.append((f"Fig. 3: student of L_t = {Ls} > E2E", f"KD L_t={Ls}", "e2e", "greater"))
    big = max(plan.student_masks)
    if big > L:
        rows.append((f"Fig. 3: students plateau: student of L_t = {big} = student of L_t = {L} "
                     f"(within ±{EQUIVALENCE_MARGIN_DB} dB)", f"KD L_t={big}", "KD", "plateau"))
    rows += [
        ("beyond the paper: KD > E2E with masks drawn N(0, 1)", "KD normal", "e2e normal", "greater"),
        ("beyond the paper: KD with the standardized L_cdp > E2E", "KD standardized", "e2e", "greater"),
        ("beyond the paper: KD, standardized L_cdp, N(0, 1) masks > E2E, N(0, 1) masks",
         "KD normal standardized", "e2e normal", "greater"),
        ("beyond the paper: E2E with N(0, 1) masks > E2E with U[0, 2π) masks", "e2e normal",
         "e2e", "greater"),
    ]
    return rows


def _fmt(x: float, digits: int = 2) -> str:
    return "nan" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def _judge(results: Results, a: str, b: str, kind: str) -> tuple[PairedComparison, str]:
    """The comparison a claim rests on and its verdict."""
    if kind == "teacher":
        c = compare_teachers(results, a, b)
        return c, c.psnr.verdict(claim_sign=+1)
    if kind == "plateau":
        c = compare(results, a, b, confidence=PLATEAU_CONFIDENCE)
        supported = max(abs(c.psnr.low), abs(c.psnr.high))
        return c, f"{_equivalence(c.psnr, EQUIVALENCE_MARGIN_DB)} (90 % CI within ±{supported:.2f} dB)"
    c = compare(results, a, b)
    return c, c.primary("ssim" if kind == "greater ssim" else "psnr").verdict(claim_sign=+1)


def scope(results: Results) -> str:
    """The scale every row of the verdict speaks for: steps, images, training split, noise, teacher seed."""
    cfg = next(iter(results.runs.values())).config()
    noise = "noise-free" if cfg.optics.noise == "none" else f"{cfg.optics.noise} noise"
    return (f"{cfg.total_steps} steps, {cfg.data.image_size}×{cfg.data.image_size} Fashion-MNIST, n_train "
            f"{cfg.data.n_train}, {noise}, one teacher seed")


def verdict_rows(results: Results) -> list[dict]:
    """One row per claim: the paired differences, the interval's verdict with its scope, the p-value and its
    Holm adjustment over every seed-level test of the table (the single-run teacher rows and the plateau's
    equivalence test have none), the reading they allow (``prkd.experiments.readings.reading``: an interval
    that holds 0 is called equivalent only by two one-sided tests within ±``EQUIVALENCE_MARGIN_DB``), and the
    optics' state on both sides."""
    untested = {"teacher": "single runs, no seed-level test: see verdict",
                "plateau": "an equivalence test: see verdict"}
    rows = []
    for claim, a, b, kind in claims(results.plan):
        c, verdict = _judge(results, a, b, kind)
        tested = c.primary("ssim" if kind == "greater ssim" else "psnr")
        p = tested.p_value if kind in ("greater", "greater ssim") else math.nan
        o = c.optics
        rows.append({
            "claim": claim, "A": a, "B": b, "seeds": len(c.seeds),
            "ΔPSNR (dB, CI)": c.psnr.format(2, ""), "interval": c.psnr.method if kind != "plateau" else
            "t over seeds, 90 %",
            "ΔPSNR over images (dB, 95% CI)": c.images.format(2, ""),
            "ΔSSIM (CI)": c.ssim.format(3, ""),
            "verdict": scoped_verdict(verdict), "p": p,
            "p TOST ±0.25": c.equivalence[0] if kind == "greater" else math.nan,
            "mask drift A / B (rad)": f"{_fmt(o['mask_drift_rad_a'])} / {_fmt(o['mask_drift_rad_b'])}",
            "speckle contrast A: start → end": f"{_fmt(o['speckle_contrast_start_a'])} → "
                                               f"{_fmt(o['speckle_contrast_end_a'])}",
            "init corr A / B": f"{_fmt(o['init_corr_end_a'], 3)} / {_fmt(o['init_corr_end_b'], 3)}",
            "L_cdp (paper) A / B": f"{_fmt(o['val_cdp_end_a'], 3)} / {_fmt(o['val_cdp_end_b'], 3)}",
            "_untested": untested.get(kind, ""), "_result": None if kind in untested else tested,
            "_equivalence": c.equivalence[1] if kind == "greater" else "equivalence not shown",
        })
    read_family(rows)
    return rows
