"""The commands that read the registry: ``runs``, ``export-masks``, ``check-results`` and ``evaluate``."""

from __future__ import annotations

import argparse
import sys


def list_runs(args: argparse.Namespace, registry) -> int:
    """One line per run folder: id, state (a damaged one names its file), test metrics, who trained it."""
    entries = registry.entries()
    shown = 0
    for entry in entries:
        run = entry.run
        if entry.state != "damaged":
            cfg = entry.config
            if (args.mode and cfg.train.mode != args.mode) or (args.preset and cfg.preset != args.preset):
                continue
        shown += 1
        if entry.state == "damaged":
            print(f"{run.id}  damaged: {entry.problem} (delete the folder to train it again)")
            continue
        scores = ""
        if entry.state == "complete":
            m = run.metrics()
            scores = f"  PSNR {m['test_psnr']:.2f} dB  SSIM {m['test_ssim']:.3f}"
        print(f"{run.id}  {entry.state}{scores}  [{entry.history}]")
    if not shown:
        print(f"no runs in {registry.runs_dir}")
    return 0


def export_masks(args: argparse.Namespace, registry) -> int:
    """Write a run's quantised masks into --out; refused input (named, exit 2) writes nothing."""
    from prkd.fabrication import FabricationError, export_masks
    from prkd.registry import CorruptCheckpointError, DamagedRunError, RunNotFoundError

    optics = {k: v for k, v in (("wavelength_um", args.wavelength_um), ("index", args.index))
              if v is not None}
    try:
        written = export_masks(registry.find(args.run), args.out, levels=args.levels, **optics)
    except (FabricationError, RunNotFoundError, DamagedRunError, CorruptCheckpointError, OSError) as err:
        print(f"prkd: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files for run {args.run} ({args.levels} levels) to "
          f"{written[-1].parent.resolve()}")
    return 0


def check_results(args: argparse.Namespace, registry) -> int:
    """Print the cells outside tolerance and the notes; 0 when the tables agree within tolerance, 1 when a
    cell is outside it, 2 when a table is missing (docs/check-results.md)."""
    from pathlib import Path

    from prkd.views.paper_comparison import MEASURED_ON_THE_MACHINE
    from prkd.checks.tolerance import compare_folders
    from prkd.utils.paths import RESULTS_DIR

    committed = Path(args.committed or RESULTS_DIR / args.preset)
    fresh = Path(args.fresh or registry.root / "figures" / args.preset)
    try:
        comparison = compare_folders(committed, fresh, MEASURED_ON_THE_MACHINE)
    except FileNotFoundError as err:
        print(f"prkd: error: {err}", file=sys.stderr)
        return 2
    for line in comparison.failures + comparison.notes:
        print(line)
    verdict = "differ" if comparison.failures else "agree within tolerance"
    failures, notes = len(comparison.failures), len(comparison.notes)
    print(f"{committed} and {fresh} {verdict} ({failures} cell{'s' * (failures != 1)} outside tolerance, "
          f"{notes} note{'s' * (notes != 1)}; times, memory and device not compared; see "
          "docs/check-results.md)")
    return 1 if comparison.failures else 0


def evaluate_run(args: argparse.Namespace, registry) -> int:
    """Score a complete run on its test split, raw and refined (``prkd.learning.rescoring``); cached in the
    run."""
    from prkd.learning.rescoring import refined_test_scores
    from prkd.registry import CorruptCheckpointError, DamagedRunError, RunNotFoundError
    from prkd.config import ConfigError

    from prkd.learning.refine import check_refine

    try:
        check_refine(args.refine, args.iterations)  # bad input is refused before the registry is read
        scores = refined_test_scores(registry.find(args.run), refine=args.refine, iterations=args.iterations)
    except (ConfigError, RunNotFoundError, DamagedRunError, CorruptCheckpointError) as err:
        print(f"prkd: error: {err}", file=sys.stderr)
        return 2
    line = f"run {args.run}: test PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f}"
    if args.refine != "none":
        line += (f"; refined ({args.refine}, {args.iterations} iterations, no oracle) "
                 f"{scores['refined_psnr']:.2f} dB, SSIM {scores['refined_ssim']:.3f}")
    print(f"{line} ({scores['n_test']} images)")
    return 0
