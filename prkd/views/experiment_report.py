"""One report for every experiment spec (``prkd.experiments.spec``), written from its collected runs
(``prkd.experiments.engine.Results``); nothing here trains. Every experiment's folder holds the same files:

* ``runs`` (one row per distinct run), ``verdict`` (``prkd.experiments.verdicts.verdict_rows``), ``flatness``
  (every complete group under its schedule), ``training`` (each group's training seconds and costs) -- each as
  ``.csv``, ``.md`` and ``.json`` (``prkd.views.tables.write_table``);
* the spec's own tables (``ExperimentSpec.tables``);
* ``verdict.md``: the scope, the reading rules, the verdict table and what is not complete yet;
* ``wall_time.json``: the launches that trained the runs and their training seconds;
* ``records/``: one record per run (``prkd.registry.records``), from which a later sitting reports them again
  without their weights (``record_extra`` adds what the report would otherwise read from the weights).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Callable

from prkd.experiments import engine
from prkd.experiments.engine import Results
from prkd.experiments.readings import FLAT_DB
from prkd.experiments.stats import EQUIVALENCE_MARGIN_DB
from prkd.experiments.verdicts import flat_gain, flatness_rows, verdict_rows
from prkd.learning.rescoring import refined_columns
from prkd.registry.records import RunRecord, keep_records, write_record
from prkd.utils import atomic
from prkd.views.tables import to_markdown, write_table

__all__ = ["COMMON_TABLES", "READING_RULES", "runs_rows", "training_rows", "missing_groups",
           "default_markdown", "experiment_tables", "keep_experiment_records", "write_report"]

#: The tables every experiment's folder holds.
COMMON_TABLES = ("runs", "verdict", "flatness", "training")
#: How every verdict table is read (``prkd.experiments.readings``).
READING_RULES = (
    "Reading: Holm's adjustment within each family of the table; 'A > B (Holm p < 0.05)' is the only wording "
    "that claims a difference after correction ('before correction only' otherwise); an interval that holds "
    f"0 is 'not resolved' unless two one-sided tests put it within ±{EQUIVALENCE_MARGIN_DB:g} dB "
    f"('equivalent'). A group is 'flat under its schedule' when every run gained < {FLAT_DB} dB of "
    "validation PSNR over its last 10 % of steps, which under a cosine schedule says the schedule ran out, "
    "not that the run converged.")


def _value(value, digits: int = 4):
    return "" if value is None else round(value, digits)


def _refined(run) -> dict:
    """The run's refined scores; blank for a record kept without them (it cannot be refined again)."""
    if isinstance(run, RunRecord):
        try:
            return refined_columns(run)
        except KeyError:
            return {"refined_psnr": "", "refined_ssim": ""}
    return refined_columns(run)


def runs_rows(results: Results) -> list[dict]:
    """One row per distinct complete run (a run two groups share is listed under the first): its budget,
    group, seed and config, raw and refined test scores, validation PSNR and its last 10 % gain, the loss
    ratio and optics' diagnostics, and its training seconds. The ``group`` column gives check-results each
    group's seed spread as the tolerance of its single runs."""
    rows, seen = [], set()
    for (steps, group, seed), run in sorted(results.runs.items(), key=lambda kv: kv[0]):
        if run.id in seen:
            continue
        seen.add(run.id)
        cfg, m, t = run.config(), run.metrics(), run.config().train
        student = t.mode == "student"
        rows.append({"steps": steps, "n_train": cfg.data.n_train, "group": group, "seed": seed,
                     "run_id": run.id, "mode": t.mode, "L": cfg.optics.n_masks, "arch": cfg.net.arch,
                     "epochs": t.epochs,
                     "teacher_seed": t.teacher_seed if student else "",
                     "L_t": t.teacher_masks if student else cfg.optics.n_masks if t.mode == "teacher" else "",
                     "alpha": t.alpha, "beta": t.beta, "sigma": round(cfg.sigma, 6),
                     "cdp_loss": t.cdp_loss if student else "", "mask_init": cfg.optics.mask_init,
                     "noise": cfg.optics.noise, "test_psnr": round(m["test_psnr"], 4),
                     "test_ssim": round(m["test_ssim"], 4), **_refined(run),
                     "val_psnr": _value(m.get("val_psnr")), "val_gain_last_10pct": round(flat_gain(run), 4),
                     "kd_ratio_start": _value(m.get("kd_ratio_start")),
                     "kd_ratio_end": _value(m.get("kd_ratio_end")),
                     "speckle_contrast_start": _value(m.get("speckle_contrast_start")),
                     "speckle_contrast_end": _value(m.get("speckle_contrast_end")),
                     "init_corr_end": _value(m.get("init_corr_end")),
                     "mask_drift_rad": _value(m.get("mask_drift_rad")),
                     **(results.spec.run_columns(run) if results.spec.run_columns else {}),
                     "train_seconds": round(m["train_seconds"], 1)})
    return rows


def training_rows(results: Results) -> list[dict]:
    """Per budget and group, and in all (each distinct run once): the runs' own training seconds (summed and
    per run), ms per step and peak memory, and the device they name; the launches' wall time is longer by what
    ran between runs."""
    rows = []
    for steps, group, runs in results.members():
        ms = [run.metrics() for run in runs]
        seconds = sum(m["train_seconds"] for m in ms)
        rows.append({"steps": steps, "group": group, "runs": len(ms), "training seconds": round(seconds, 1),
                     "seconds per run": round(seconds / len(ms), 1),
                     "ms per step": round(1000 * seconds / len(ms) / steps, 1),
                     "peak memory (MB)": round(statistics.fmean(m.get("peak_memory_mb", 0.0) for m in ms), 1),
                     "device": ms[0].get("device", "")})
    distinct = {run.id: run.metrics()["train_seconds"] for run in results.runs.values()}
    total = sum(distinct.values())
    rows.append({"steps": "", "group": "all", "runs": len(distinct), "training seconds": round(total, 1),
                 "seconds per run": round(total / max(1, len(distinct)), 1), "ms per step": "",
                 "peak memory (MB)": "", "device": ""})
    return rows


def missing_groups(results: Results) -> str:
    """' Not reported, runs missing: ...' for every planned group of a budget that has not all its seeds."""
    missing = [f"{group} at {steps} steps ({len(results.seeds(steps, group))} of "
               f"{len(results.planned(steps, group))} seeds)"
               for steps in results.rungs for group in results.groups()
               if results.planned(steps, group) and not results.complete(steps, group)]
    return f" Not reported, runs missing: {'; '.join(missing)}." if missing else ""


def default_markdown(results: Results, tables: dict[str, list[dict]]) -> str:
    """verdict.md of a spec without its own: the scope, the reading rules and the verdict table."""
    cfg = results.first_config()
    lines = [f"# {results.spec.title[0].upper()}{results.spec.title[1:]} `{results.preset}`", "",
             f"Scope: {cfg.data.image_size}×{cfg.data.image_size} Fashion-MNIST phase objects, n_train "
             f"{cfg.data.n_train}, noise {cfg.optics.noise}, {', '.join(map(str, results.rungs))} Adam "
             f"steps; {len(results.runs)} of {len(results.items)} planned runs "
             f"complete.{missing_groups(results)}", "",
             READING_RULES, "", to_markdown(tables["verdict"], "Verdict, paired over seeds")]
    return "\n".join(lines) + "\n"


def experiment_tables(results: Results) -> dict[str, list[dict]]:
    """Every table of the report: the common ones and the spec's own."""
    tables = {"runs": runs_rows(results),
              "verdict": (results.spec.verdict(results) if results.spec.verdict
                          else verdict_rows(results, results.spec.comparisons(results))),
              "flatness": flatness_rows(results), "training": training_rows(results)}
    return tables | {name: rows(results) for name, rows in results.spec.tables.items()}


def keep_experiment_records(results: Results, folder: Path,
                            record_extra: Callable[[Results, object], dict] | None = None) -> int:
    """A record of every run of ``results`` in ``folder`` (a record already is copied as it is) with the
    per-image test scores, the refined scores and ``record_extra(results, run)``: what the report would
    otherwise read from the run's weights. The launches' wall times go beside them. Returns how many records
    were written from the registry."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for run in {r.id: r for r in results.runs.values()}.values():
        if isinstance(run, RunRecord):
            keep_records([run], folder)
            continue
        refined_columns(run)  # computed once, kept in the run's refined.json, then in its record
        write_record(run, folder, per_image=True, extra=record_extra(results, run) if record_extra else None)
        written += 1
    if results.registry is not None:
        engine.keep_launches(results.spec, results.preset, results.registry, folder, results.records)
    return written


def write_report(results: Results, folder: Path, *,
                 markdown: Callable[[Results, dict], str] = default_markdown,
                 record_extra: Callable[[Results, object], dict] | None = None) -> dict[str, list[dict]]:
    """Write every file of the module docstring to ``folder`` (``markdown`` writes verdict.md,
    ``record_extra`` adds to each record); return the tables."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables = experiment_tables(results)
    for name, rows in tables.items():
        if rows:
            write_table(rows, folder, name)
    atomic.write_text(folder / "verdict.md", markdown(results, tables))
    keep_experiment_records(results, folder / "records", record_extra)
    launched = (engine.launches(results.spec, results.preset, results.registry, results.records)
                if results.registry is not None else {"sessions": [], "total_seconds": 0.0})
    atomic.write_json(folder / "wall_time.json", launched | {"training_seconds": tables["training"][-1][
        "training seconds"], "runs": tables["training"][-1]["runs"]})
    return tables

