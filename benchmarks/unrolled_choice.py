"""Which stage count K (``unroll_stages``) and width (``unroll_width``) the unrolled reconstructor should
use, by measurement.

    python benchmarks/unrolled_choice.py --preset ladder --epochs 8 --stages 1 2 3 5 --widths 8 16 \\
        --seeds 0 1 --out outputs/benchmarks/unrolled-choice.csv

Trains the unrolled E2E system (L = 1) of notebook 10 (``unrolled.plan_config``: its Poisson noise,
data and schedule) for every (K, width) and seed, and the U-Net E2E beside them as the reference, each for
``--epochs`` of the preset's epochs, into the registry (``--output-dir``; a finished run is taken from it, so
an interrupted choice resumes). It prints and writes one row per (arch, K, width): the mean over seeds of the
test and validation PSNR, the validation gain over the last quarter of epochs (is the run still rising?), the
seconds per step and the weights of the recovery network.

The choice it prints is a rule, not a judgement: the cheapest configuration (fewest seconds per step) whose
mean test PSNR is within ``--margin`` dB of the best configuration's. It is printed, not applied: a default
changes in ``prkd/config.py`` by hand, with the table beside it. Quote its numbers with the machine.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import prkd  # noqa: E402
from prkd.experiments.unrolled import plan_config  # noqa: E402
from prkd.learning import get_or_train  # noqa: E402
from prkd.physics.system import PRSystem  # noqa: E402


def _candidates(args) -> list[tuple[str, int, int]]:
    return [("unet", 0, 0)] + [("unrolled", k, w) for k in args.stages for w in args.widths]


def _config(args, arch: str, stages: int, width: int, seed: int):
    net = {"unroll_stages": stages, "unroll_width": width} if arch == "unrolled" else {}
    return plan_config(args.preset, arch, mode="e2e", seed=seed, epochs=args.epochs, **net)


def _row(arch: str, stages: int, width: int, runs: list) -> dict:
    metrics = [run.metrics() for run in runs]
    histories = [run.history() for run in runs]
    quarter = max(1, len(histories[0]) // 4)
    gains = [h[-1]["val_psnr"] - h[-1 - quarter]["val_psnr"] if len(h) > quarter else float("nan")
             for h in histories]
    weights = sum(p.numel() for p in PRSystem(runs[0].config()).unet.parameters())
    return {"arch": arch, "stages": stages or "", "width": width or "", "seeds": len(runs),
            "test_psnr": round(statistics.fmean(m["test_psnr"] for m in metrics), 3),
            "test_psnr_sd": round(statistics.stdev([m["test_psnr"] for m in metrics]), 3) if len(runs) > 1
            else "",
            "val_psnr": round(statistics.fmean(m["val_psnr"] for m in metrics), 3),
            "val_gain_last_quarter": round(statistics.fmean(gains), 3),
            "seconds_per_step": round(statistics.fmean(m["train_seconds"] / m["steps"] for m in metrics), 4),
            "weights": weights}


def choose(rows: list[dict], margin: float) -> dict:
    """The unrolled row with the fewest seconds per step among those within ``margin`` dB of the best unrolled
    row's mean test PSNR."""
    unrolled = [r for r in rows if r["arch"] == "unrolled"]
    best = max(r["test_psnr"] for r in unrolled)
    return min((r for r in unrolled if r["test_psnr"] >= best - margin), key=lambda r: r["seconds_per_step"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="ladder", choices=["ladder", "smoke"])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--stages", type=int, nargs="+", default=[1, 2, 3, 5])
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--margin", type=float, default=0.25,
                        help="dB below the best that still counts as best")
    parser.add_argument("--output-dir", default=None, help="the registry (default: prkd's output folder)")
    parser.add_argument("--out", default="outputs/benchmarks/unrolled-choice.csv")
    args = parser.parse_args(argv)
    registry = prkd.open_registry(args.output_dir)
    rows = []
    for arch, stages, width in _candidates(args):
        runs = [get_or_train(_config(args, arch, stages, width, seed), registry=registry, progress=False,
                             log=lambda message: None) for seed in args.seeds]
        rows.append(_row(arch, stages, width, runs))
        print(", ".join(f"{k} {v}" for k, v in rows[-1].items()), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    pick = choose(rows, args.margin)
    print(f"choice: K = {pick['stages']}, width = {pick['width']} (test PSNR {pick['test_psnr']} dB, "
          f"{pick['seconds_per_step']} s per step; within {args.margin} dB of the best unrolled row, fewest "
          f"seconds per step); written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
