"""The paired training check of a faster arithmetic or gradient: the budget ladder's 512-step main comparison
(E2E, KD and random on 5 paired seeds, KD distilling teacher seed 0) retrained with one change, each group
against its committed float32 / plain-backward runs (``docs/results/ladder/records``).

    python benchmarks/arithmetic_check.py --variant truncated      # teacher with backward "truncated", K = 5
    PRKD_EMULATED_BFLOAT16=1 python benchmarks/arithmetic_check.py --variant bfloat16   # where no BF16 units

* ``bfloat16``: every run (teacher, E2E, random, KD) with ``precision = "bfloat16"``.
* ``truncated``: the teacher with ``backward = "truncated"`` (``backward_iterations`` K, default 5), its KD
  students distilling it (their own backward plain: at L = 1 the truncated gradient is far from the exact one,
  docs/performance.md); E2E and random are the committed runs themselves (their configs are unchanged).

Runs train through a registry (``--registry``; resumable: run it again to continue) and are kept as records in
``docs/results/arithmetic-check/<variant>/records``; the comparison is written beside them (``check.md``,
``check.json``) from the records alone, so ``--report-only`` regenerates it without training. Per group: the
new mean test PSNR minus the committed one with a paired t interval over the seeds, beside the committed
group's seed spread (sample standard deviation over its seeds); and KD - E2E new against committed, each with
its interval.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from prkd.config import Config, make
from prkd.data import load_splits
from prkd.experiments.stats import paired_seeds
from prkd.learning import STUDENT_ALPHA, STUDENT_BETA
from prkd.learning.train import get_or_train
from prkd.registry import open_registry
from prkd.registry.records import keep_records, read_records
from prkd.registry.run import run_id_for
from prkd.utils import atomic
from prkd.utils.paths import RESULTS_DIR

SEEDS = (0, 1, 2, 3, 4)
#: the 512-step rung of the ladder: 16 epochs of the ladder preset's 32 steps
RUNG = dict(epochs=16)
COMMITTED = RESULTS_DIR / "ladder" / "records"
VARIANTS = ("bfloat16", "truncated")
GROUPS = ("e2e", "random", "KD")


def configs(variant: str, K: int = 5, *, changed: bool = True) -> dict[str, object]:
    """The teacher and ``{(group, seed): config}`` of the rung, changed by ``variant`` (or the committed ones
    with ``changed`` false). KD students name their teacher through ``teacher_run`` (returned with them)."""
    change = {}
    if changed:
        change = ({"precision": "bfloat16"} if variant == "bfloat16"
                  else {"backward": "truncated", "backward_iterations": K})
    teacher_change = change
    run_change = change if variant == "bfloat16" else {}
    teacher = make("ladder", mode="teacher", n_masks=9, seed=0, **RUNG, **teacher_change)
    runs: dict[tuple[str, int], Config] = {}
    for s in SEEDS:
        runs["e2e", s] = make("ladder", mode="e2e", seed=s, **RUNG, **run_change)
        runs["random", s] = make("ladder", mode="random", seed=s, **RUNG, **run_change)
        runs["KD", s] = make("ladder", mode="student", alpha=STUDENT_ALPHA, beta=STUDENT_BETA,
                             teacher_masks=9, teacher_seed=0, seed=s, **RUNG, **run_change)
    return {"teacher": teacher, "runs": runs}


def _run_id(cfg: Config, teacher: Config) -> str:
    return run_id_for(cfg, run_id_for(teacher)) if cfg.train.mode == "student" else run_id_for(cfg)


def train(variant: str, K: int, registry_root: Path | None, folder: Path,
          groups: tuple[str, ...] = GROUPS) -> None:
    """Train (or take from the registry) the changed runs of ``groups`` and keep their records in
    ``folder``."""
    registry = open_registry(registry_root)
    plan = configs(variant, K)
    teacher_cfg, runs = plan["teacher"], plan["runs"]
    data = load_splits(teacher_cfg.data)
    kept = read_records(folder)
    teacher = get_or_train(teacher_cfg, registry=registry, data=data)
    keep_records([teacher], folder)
    for (group, seed), cfg in runs.items():
        if (_run_id(cfg, teacher_cfg) in kept or (variant == "truncated" and group != "KD")
                or group not in groups):
            continue
        run = get_or_train(cfg, registry=registry, data=data,
                           teacher_run=teacher.id if group == "KD" else None)
        keep_records([run], folder)


def _scores(records: dict, plan: dict) -> dict[str, dict[int, float]]:
    """Test PSNR by group and seed of the plan's runs that ``records`` holds (a check still training has
    some)."""
    out: dict[str, dict[int, float]] = {group: {} for group in GROUPS}
    for (group, seed), cfg in plan["runs"].items():
        record = records.get(_run_id(cfg, plan["teacher"]))
        if record is not None:
            out[group][seed] = record.metrics()["test_psnr"]
    teacher = records.get(run_id_for(plan["teacher"]))
    out["teacher"] = {0: teacher.metrics()["test_psnr"]} if teacher is not None else {}
    return out


def _group_row(group: str, new: dict[int, float], old: dict[int, float]) -> dict:
    """A group's new mean against its committed mean over the seeds it has so far, beside the committed seed
    spread (all five seeds)."""
    seeds = sorted(new)
    spread = statistics.stdev(old.values())
    row = {"group": group, "seeds": len(seeds), "seed_spread": spread}
    if len(seeds) < 2:
        return {**row, "committed_mean": None, "new_mean": None, "mean_shift": None, "beyond_spread": False,
                "new_minus_committed": f"not trained yet ({len(seeds)} of {len(SEEDS)} seeds)"}
    a, b = [new[s] for s in seeds], [old[s] for s in seeds]
    row |= {"committed_mean": statistics.mean(b), "new_mean": statistics.mean(a)}
    if a == b:  # the variant leaves this group's configs as committed: the same runs
        return {**row, "new_minus_committed": "the committed runs", "mean_shift": 0.0, "beyond_spread": False}
    d = paired_seeds(a, b)
    return {**row, "new_minus_committed": d.format(), "mean_shift": d.mean,
            "beyond_spread": abs(d.mean) > spread}


def compare(variant: str, K: int, folder: Path) -> dict:
    """The check's table from the records: the new runs' (``folder``) against the committed ones, each group
    over the seeds it has so far (``complete`` when every group has every seed of ``SEEDS``)."""
    committed = read_records(COMMITTED)
    new_records = {**committed, **read_records(folder)}  # the truncated variant reuses committed E2E, random
    old = _scores(committed, configs(variant, K, changed=False))
    new = _scores(new_records, configs(variant, K))
    rows = [_group_row(group, new[group], old[group]) for group in GROUPS]
    kd_old = paired_seeds([old["KD"][s] for s in SEEDS], [old["e2e"][s] for s in SEEDS])
    shared = sorted(set(new["KD"]) & set(new["e2e"]))
    kd_new = paired_seeds([new["KD"][s] for s in shared], [new["e2e"][s] for s in shared]) if len(
        shared) > 1 else None
    inside = kd_new is not None and kd_old.low <= kd_new.mean <= kd_old.high
    complete = all(sorted(new[g]) == list(SEEDS) for g in GROUPS) and bool(new["teacher"])
    return {"variant": variant, "backward_iterations": K if variant == "truncated" else None, "rows": rows,
            "complete": complete, "teacher_committed": old["teacher"][0],
            "teacher_new": new["teacher"].get(0), "kd_minus_e2e_committed": kd_old.format(),
            "kd_minus_e2e_new": kd_new.format() if kd_new else "not trained yet",
            "kd_minus_e2e_new_inside_committed_interval": inside,
            "passes": complete and inside and not any(r["beyond_spread"] for r in rows)}


def write_report(result: dict, folder: Path) -> None:
    inside = "inside" if result["kd_minus_e2e_new_inside_committed_interval"] else "outside"
    where = ("" if result["kd_minus_e2e_new"] == "not trained yet"
             else f"; the new mean is {inside} the committed interval")
    lines = [f"# Paired check: the ladder's 512-step main comparison, variant `{result['variant']}`", "",
             "Written by `python benchmarks/arithmetic_check.py --variant "
             f"{result['variant']} --report-only` from the records beside it and the committed ladder's.", "",
             "Every group is compared over the seeds it has."
             + ("" if result["complete"] else " Incomplete: not every run is trained yet."), "",
             "| group | seeds | committed mean (dB) | new mean (dB) | new − committed, paired 95 % | "
             "committed seed spread (SD, 5 seeds) | moved beyond spread |", "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        means = [("—" if m is None else f"{m:.2f}") for m in (r["committed_mean"], r["new_mean"])]
        lines.append(f"| {r['group']} | {r['seeds']} | {means[0]} | {means[1]} | "
                     f"{r['new_minus_committed']} | {r['seed_spread']:.2f} | "
                     f"{'yes' if r['beyond_spread'] else 'no'} |")
    teacher = "not trained yet" if result["teacher_new"] is None else f"{result['teacher_new']:.2f} dB"
    lines += ["", f"Teacher L_t = 9, seed 0: committed {result['teacher_committed']:.2f} dB, new {teacher} "
              "(one seed: no interval).", "",
              f"KD − E2E committed {result['kd_minus_e2e_committed']}, new {result['kd_minus_e2e_new']}"
              f"{where}.", "",
              _outcome(result)]
    atomic.write_text(folder / "check.md", "\n".join(lines) + "\n")
    atomic.write_text(folder / "check.json", json.dumps(result, indent=1) + "\n")


def _outcome(result: dict) -> str:
    if not result["complete"]:
        return "No outcome yet: the check has not trained every seed."
    if result["passes"]:
        return ("Check passed: no group's mean moved beyond its seed spread and KD − E2E stayed inside its "
                "committed interval.")
    return ("Check failed: a group's mean moved beyond its seed spread or KD − E2E left its committed "
            "interval.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--backward-iterations", type=int, default=5, help="K of the truncated backward")
    parser.add_argument("--registry", type=Path, default=None, help="run registry (default prkd's)")
    parser.add_argument("--report-only", action="store_true", help="compare the kept records; train nothing")
    parser.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS),
                        help="train only these groups (a sitting too short for all; default all)")
    args = parser.parse_args(argv)
    folder = RESULTS_DIR / "arithmetic-check" / args.variant
    records = folder / "records"
    if not args.report_only:
        records.mkdir(parents=True, exist_ok=True)
        train(args.variant, args.backward_iterations, args.registry, records, tuple(args.groups))
    result = compare(args.variant, args.backward_iterations, records)
    write_report(result, folder)
    print((folder / "check.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
