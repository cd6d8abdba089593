"""Command line. Every command works on one output root (the run registry): ``--output-dir``, else
``PRKD_OUTPUT_DIR``, else ``outputs/`` of the repository checkout (``prkd.registry.default_root``).

    python -m prkd [--output-dir DIR] train --mode {teacher,e2e,random,student} [--L N] [--teacher-L N] [--alpha A] [--beta B]
                         [--teacher-run ID] --preset P [--seed S] [--set key=value ...]
    python -m prkd reproduce [--preset quick] [--only 01 02] [--force] [--workers N | --scheduler ADDRESS]
    python -m prkd plan [--preset quick] [--workers N | --scheduler ADDRESS]    (train only; no notebooks)
    python -m prkd study [--preset study] [--shards 2 | --shard I/N | --workers N | --scheduler ADDRESS]
    python -m prkd runs [--mode M] [--preset P]        (state, damage and who trained each run)
    python -m prkd export-masks RUN_ID --levels K [--wavelength-um UM] [--index N] --out DIR
    python -m prkd check-results [--preset quick] [--committed docs/results/quick] [--fresh outputs/figures/quick]
"""

from __future__ import annotations

import argparse
import sys

from prkd.config import PRESETS, ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prkd", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="the output root holding the run registry (default: PRKD_OUTPUT_DIR, else the "
                             "repository's outputs/)")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_commands(sub)
    return parser


def _add_commands(sub) -> None:
    rep = sub.add_parser("reproduce", help="run the notebooks headlessly with papermill (resumable)")
    rep.add_argument("--preset", default="quick", choices=sorted(PRESETS),
                     help="smoke (CI), quick (laptop CPU, default) or paper (GPU)")
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="run only these notebooks (e.g. 01 02)")
    rep.add_argument("--force", action="store_true", help="re-run notebooks that already finished")
    _add_cluster_options(rep, "train the notebooks' runs first")
    pl = sub.add_parser("plan", help="train (or take from the registry) every run a preset's notebooks need")
    pl.add_argument("--preset", default="quick", choices=sorted(PRESETS))
    _add_cluster_options(pl, "train")
    tr = sub.add_parser("train", help="train (or load, or resume) one run of the registry")
    tr.add_argument("--mode", required=True, choices=["teacher", "e2e", "random", "student"])
    tr.add_argument("--preset", required=True, choices=sorted(PRESETS))
    tr.add_argument("--L", type=int, default=None, help="snapshots (default: 9 for a teacher, else 1)")
    tr.add_argument("--teacher-L", type=int, default=None, help="student: the teacher's snapshots L_t")
    tr.add_argument("--teacher-run", default=None, help="student: an explicit teacher run id")
    tr.add_argument("--alpha", type=float, default=None, help="student: weight of L_task (Eq. 7)")
    tr.add_argument("--beta", type=float, default=None, help="student: weight of L_cdp (Eq. 7)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="any other config field, e.g. --set epochs=2 noise=gaussian snr_db=20")
    st = sub.add_parser("study", help="train the runs of notebook 07's study (resumable; parallel shards)")
    st.add_argument("--preset", default="study", help="study (default) or smoke")
    group = _add_cluster_options(st, "train the study")
    group.add_argument("--shards", type=int, default=None, help="built-in one-thread shard processes, no Dask "
                                                                 "(the default: 2)")
    group.add_argument("--shard", default=None, metavar="I/N", help="train only shard I of N (0-based)")
    ls = sub.add_parser("runs", help="list the runs in the registry")
    ls.add_argument("--mode", default=None)
    ls.add_argument("--preset", default=None)
    ex = sub.add_parser("export-masks", help="write a run's masks quantised to K phase levels for fabrication: "
                                              "phase (.npy, radians), 16-bit PNG, height map (micrometres)")
    ex.add_argument("run", metavar="RUN_ID", help="a complete run of the registry (see `prkd runs`)")
    ex.add_argument("--levels", type=int, required=True, metavar="K", help="phase levels 2 pi k / K, K >= 2")
    ex.add_argument("--wavelength-um", type=float, default=None, metavar="UM",
                    help="design wavelength in micrometres (> 0; default prkd.fabrication's example, 0.532)")
    ex.add_argument("--index", type=float, default=None, metavar="N",
                    help="refractive index of the mask material (> 1; default prkd.fabrication's example, 1.5)")
    ex.add_argument("--out", required=True, metavar="DIR", help="folder to write (created; nothing on bad input)")
    chk = sub.add_parser("check-results", help="compare committed result tables with a fresh run's, within "
                                               "tolerances from the seeds' spread (accuracy, not times)")
    chk.add_argument("--preset", default="quick", choices=sorted(PRESETS))
    chk.add_argument("--committed", default=None, help="default: docs/results/<preset> of this repository")
    chk.add_argument("--fresh", default=None, help="default: <output folder>/figures/<preset>")


def _add_cluster_options(parser: argparse.ArgumentParser, what: str):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, default=None, metavar="N",
                       help=f"{what} on a Dask LocalCluster of N single-task worker processes (prkd[scale])")
    group.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help=f"{what} on an existing Dask cluster (prkd[scale]; docs/scale-out.md)")
    return group


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from prkd.registry import OutputNotWritableError, open_registry
    try:
        registry = open_registry(args.output_dir, log=lambda message: print(message, file=sys.stderr))
    except OutputNotWritableError as err:
        print(f"prkd: error: {err}", file=sys.stderr)
        return 2
    if args.command in ("train", "study", "reproduce", "plan"):
        from prkd.utils.allocator import advice
        note = advice()
        if note:
            print(f"prkd: {note}", file=sys.stderr)
    if args.command == "train":
        return _train(args, parser, registry)
    if args.command == "runs":
        return _list(args, registry)
    if args.command == "study":
        return _study(args, parser, registry)
    if args.command == "check-results":
        return _check_results(args, registry)
    if args.command == "export-masks":
        return _export_masks(args, registry)
    return _reproduce(args, registry)


def _reproduce(args: argparse.Namespace, registry) -> int:
    """``plan``: train a preset's runs; ``reproduce``: the same on a cluster if asked, then the notebooks."""
    from prkd.experiments.dask_runner import ClientFor
    from prkd.learning import RunFailedError
    from prkd.reproduce import NotebookFailed, run_notebooks, train_preset_plan
    try:
        if args.command == "plan" or args.workers is not None or args.scheduler is not None:
            with ClientFor(workers=args.workers, scheduler=args.scheduler) as client:
                outcome = train_preset_plan(args.preset, registry=registry, client=client)
            print(outcome.summary())
            if args.command == "plan":
                return 0
        out = run_notebooks(args.preset, registry=registry, seed=args.seed, only=args.only, force=args.force)
    except ConfigError as err:  # refused input: nothing was run
        print(f"prkd: error: {err}", file=sys.stderr)
        return 2
    except (NotebookFailed, RunFailedError) as err:
        print(f"prkd: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("prkd: interrupted; run the same command again to continue where it stopped", file=sys.stderr)
        return 130
    print(f"executed notebooks are in {out}")
    return 0


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser, registry) -> int:
    from prkd.config import make
    from prkd.data import CorruptDataError, DataNotFoundError
    from prkd.registry import CorruptCheckpointError, DamagedRunError, OutputNotWritableError, RunNotFoundError
    from prkd.learning import (STUDENT_ALPHA, STUDENT_BETA, RunFailedError, TrainingDiverged, TrainingInterrupted,
                        get_or_train)

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set takes KEY=VALUE; got {item!r}")
        overrides[key] = _parse_value(value)
    overrides.update(mode=args.mode, seed=args.seed, n_masks=args.L if args.L is not None else
                     (9 if args.mode == "teacher" else 1))
    if args.mode == "student":
        overrides.update(alpha=STUDENT_ALPHA if args.alpha is None else args.alpha,
                         beta=STUDENT_BETA if args.beta is None else args.beta)
        if args.teacher_L is not None:
            overrides["teacher_masks"] = args.teacher_L
    else:
        for flag, value in (("--alpha", args.alpha), ("--beta", args.beta), ("--teacher-L", args.teacher_L),
                            ("--teacher-run", args.teacher_run)):
            if value is not None:
                parser.error(f"{flag} applies only to --mode student")
    try:
        run = get_or_train(make(args.preset, **overrides), registry=registry, teacher_run=args.teacher_run)
    except (ConfigError, RunNotFoundError, RunFailedError, TrainingDiverged, CorruptCheckpointError, DamagedRunError,
            OutputNotWritableError, DataNotFoundError, CorruptDataError) as err:
        print(f"prkd: error: {err}", file=sys.stderr)
        return 2
    except TrainingInterrupted as err:
        print(f"prkd: {err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("prkd: interrupted before training started; nothing was changed", file=sys.stderr)
        return 130
    m = run.metrics()
    print(f"run {run.id}: test PSNR {m['test_psnr']:.2f} dB, SSIM {m['test_ssim']:.3f}")
    print(f"run folder: {run.path}")
    return 0


def _study(args: argparse.Namespace, parser: argparse.ArgumentParser, registry) -> int:
    from prkd.experiments import study
    from prkd.learning import RunFailedError, TrainingDiverged, TrainingInterrupted

    try:
        if args.workers is not None or args.scheduler is not None:
            from prkd.experiments.dask_runner import ClientFor
            with ClientFor(workers=args.workers, scheduler=args.scheduler) as client:
                study.run_on_dask(args.preset, registry=registry, client=client)
            return 0
        if args.shard is None:
            study.launch(args.preset, registry=registry, shards=2 if args.shards is None else args.shards)
            return 0
        i, sep, n = args.shard.partition("/")
        if not (sep and i.isdigit() and n.isdigit()):
            parser.error(f"--shard takes I/N with 0 <= I < N (e.g. 0/2); got {args.shard!r}")
        study.run_shard(args.preset, registry=registry, shard=int(i), n_shards=int(n))
    except (ConfigError, RunFailedError, TrainingDiverged, TimeoutError, RuntimeError) as err:
        print(f"prkd: error: {err}", file=sys.stderr)
        return 2
    except (TrainingInterrupted, KeyboardInterrupt):
        print("prkd: study interrupted; run the same command again to continue (finished runs are kept)",
              file=sys.stderr)
        return 130
    return 0


def _list(args: argparse.Namespace, registry) -> int:
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


def _export_masks(args: argparse.Namespace, registry) -> int:
    """Write a run's quantised masks into --out; refused input (named, exit 2) writes nothing."""
    from prkd.fabrication import FabricationError, export_masks
    from prkd.registry import CorruptCheckpointError, DamagedRunError, RunNotFoundError

    optics = {k: v for k, v in (("wavelength_um", args.wavelength_um), ("index", args.index)) if v is not None}
    try:
        written = export_masks(registry.find(args.run), args.out, levels=args.levels, **optics)
    except (FabricationError, RunNotFoundError, DamagedRunError, CorruptCheckpointError, OSError) as err:
        print(f"prkd: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files for run {args.run} ({args.levels} levels) to {written[-1].parent.resolve()}")
    return 0


def _check_results(args: argparse.Namespace, registry) -> int:
    """Print the cells outside tolerance and the notes; 0 when the tables agree within tolerance, 1 when a
    cell is outside it, 2 when a table is missing (docs/check-results.md)."""
    from pathlib import Path

    from prkd.views.paper_comparison import MEASURED_ON_THE_MACHINE
    from prkd.experiments.tolerance import compare_folders

    committed = Path(args.committed or Path(__file__).resolve().parent.parent / "docs" / "results" / args.preset)
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
          f"{notes} note{'s' * (notes != 1)}; times, memory and device not compared; see docs/check-results.md)")
    return 1 if comparison.failures else 0


if __name__ == "__main__":
    sys.exit(main())
