"""The study's preconditions, as notebook 07 shows them before any verdict: did the masks learn, has training
flattened, and what the teacher's mean CDP asks of a student (``prkd.learning.diagnostics``)."""

from __future__ import annotations

import torch

from prkd.config import make
from prkd.data import load_splits
from prkd.experiments.engine import Results
from prkd.learning import diagnostics
from prkd.physics.system import PRSystem
from prkd.registry.records import RunRecord
from prkd.utils.device import default_device

__all__ = ["PRECONDITION_GROUPS", "cdp_probe", "cdp_probe_rows", "median_learned_drift", "precondition_rows",
           "probe_teachers"]

#: The groups whose masks and curves the precondition table shows.
PRECONDITION_GROUPS = ("e2e", "random", "KD", "L_cdp only", "L_feat only", "e2e normal", "KD normal",
                       "KD standardized")


def _median(values: list[float]) -> float:
    """The middle value (the upper of the two middle ones for an even count)."""
    return sorted(values)[len(values) // 2]


def _last_quarter_gain(histories: list[list[dict]]) -> tuple[int, float]:
    """Epochs in the last quarter of training, and the mean validation-PSNR gain over them (nan if too
    short)."""
    quarter = max(1, len(histories[0]) // 4)
    if len(histories[0]) <= quarter:
        return quarter, float("nan")
    gains = [h[-1]["val_psnr"] - h[-1 - quarter]["val_psnr"] for h in histories]
    return quarter, sum(gains) / len(gains)


def precondition_rows(results: Results, groups: tuple[str, ...] = PRECONDITION_GROUPS) -> list[dict]:
    """Per group, the median over seeds of the mask drift (rad), the speckle contrast at start and end and the
    initialization's correlation at the end, and the mean validation-PSNR gain over the last quarter of
    epochs."""
    rows = []
    for group in groups:
        runs = list(results.group(group).values())
        metrics = [r.metrics() for r in runs]

        def med(key: str) -> float:
            return _median([m[key] for m in metrics])
        quarter, gain = _last_quarter_gain([r.history() for r in runs])
        rows.append({"group": group, "seeds": len(metrics),
                     "mask drift (rad)": f"{med('mask_drift_rad'):.3f}",
                     "speckle contrast start → end":
                         f"{med('speckle_contrast_start'):.2f} → {med('speckle_contrast_end'):.2f}",
                     "init corr end": f"{med('init_corr_end'):.3f}",
                     f"val PSNR gain, last {quarter} epochs (dB)": f"{gain:+.2f}"})
    return rows


def median_learned_drift(results: Results) -> tuple[float, int]:
    """The median mask drift (rad) of the study's distinct learned-mask runs, and how many there are."""
    distinct = {r.id: r for r in results.runs.values()}
    learned = [r.metrics()["mask_drift_rad"] for r in distinct.values() if r.config().train.mode != "random"]
    return _median(learned), len(learned)


def probe_teachers(results: Results) -> dict[str, str]:
    """The teachers whose mean CDP ``cdp_probe`` measures, by the mask initialisation of their students."""
    L = results.plan.table_teacher
    return {"uniform": f"teacher L_t={L}", "normal": f"teacher L_t={L} normal"}


def cdp_probe(results: Results, init: str, *, images: int = 256,
              device: torch.device | None = None) -> dict[str, float]:
    """``diagnostics.cdp_target_report`` of the table teacher of ``init`` masks against a fresh E2E student
    with such masks, on the first ``images`` validation images; a teacher kept only as a record answers with
    the report its record kept (``prkd.views.study_records``)."""
    run = results.group(probe_teachers(results)[init])[0]
    if isinstance(run, RunRecord):
        return run.extra["cdp_probe"]
    preset, device = results.plan.preset, device or default_device()
    val = load_splits(make(preset).data).val[:images].to(device)
    student = PRSystem(make(preset, mode="e2e", seed=0, mask_init=init)).to(device)
    report = diagnostics.cdp_target_report(run.load_system(device), student, val)
    return {k: float(v) for k, v in report.items()}


def cdp_probe_rows(results: Results, *, images: int = 256,
                   device: torch.device | None = None) -> list[dict]:
    """What the table teacher's mean CDP asks of a fresh E2E student, for each mask initialisation
    (``cdp_probe``)."""
    return [{"masks": init, **{k: f"{v:.3f}" for k, v in cdp_probe(results, init, images=images,
                                                                     device=device).items()}}
            for init in probe_teachers(results)]
