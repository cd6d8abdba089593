"""The commands that train: ``reproduce`` and ``plan`` (a preset's runs, then its notebooks), ``train`` (one
run), ``study`` (notebook 07's plan), ``ladder`` (the budget ladder) and ``unrolled`` (notebook 10's plan)."""

from __future__ import annotations

import argparse
import sys

from prkd.config import ConfigError


def reproduce(args: argparse.Namespace, registry) -> int:
    """``plan``: train a preset's runs; ``reproduce``: the same on a cluster if asked, then the notebooks."""
    from prkd.learning import RunFailedError
    from prkd.reproduce import NotebookFailed, run_notebooks, train_preset_plan
    try:
        cluster = (args.processes, args.workers, args.scheduler)
        if args.command == "plan" or (any(v is not None for v in cluster) and not args.report_only):
            with _executor(args) as executor:
                outcome = train_preset_plan(args.preset, registry=registry, executor=executor)
            print(outcome.summary())
            if args.command == "plan":
                return 0
        out = run_notebooks(args.preset, registry=registry, seed=args.seed, only=args.only, force=args.force,
                            train=not getattr(args, "report_only", False))
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


def parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def train(args: argparse.Namespace, parser: argparse.ArgumentParser, registry) -> int:
    from prkd.config import make
    from prkd.data import CorruptDataError, DataNotFoundError
    from prkd.registry import (CorruptCheckpointError, DamagedRunError, OutputNotWritableError,
                               RunNotFoundError)
    from prkd.learning import (STUDENT_ALPHA, STUDENT_BETA, RunFailedError, TrainingDiverged,
                               TrainingInterrupted,
                        get_or_train)

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set takes KEY=VALUE; got {item!r}")
        overrides[key] = parse_value(value)
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
    except (ConfigError, RunNotFoundError, RunFailedError, TrainingDiverged, CorruptCheckpointError,
            DamagedRunError,
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


def _executor(args: argparse.Namespace, default_processes: int | None = None):
    """The executor the command line's --processes / --workers / --scheduler name
    (``executors.executor_for``)."""
    from prkd.execution.executors import executor_for
    processes = args.processes
    if processes is None and args.workers is None and args.scheduler is None:
        processes = default_processes
    return executor_for(processes=processes, workers=args.workers, scheduler=args.scheduler)


def study(args: argparse.Namespace, registry) -> int:
    """Train notebook 07's study, skipping the runs kept as records (an earlier sitting's), then keep a record
    of every complete run (``prkd.views.study_records``); ``--record-only`` keeps the records and trains
    nothing."""
    from prkd.experiments import study

    def keep(records) -> None:
        from prkd.views.study_records import keep_study_records
        results = study.collect_study(args.preset, registry=registry, records=records, partial=True)
        written = keep_study_records(results, records)
        complete = len({run.id for run in results.runs.values()})
        print(f"study {args.preset!r}: {complete} runs complete, {written} records written to {records}")

    def train() -> None:
        from prkd.learning import RunFailedError
        study.study_configs(args.preset)  # an unknown preset is refused before any worker starts
        records = args.records or study.committed_records(args.preset)
        if args.record_only and records is None:
            raise ConfigError(f"--record-only needs a records folder: give --records DIR (preset "
                              f"{args.preset!r} has no committed one)")
        try:
            if not args.record_only:
                with _executor(args, default_processes=2) as executor:
                    study.train_study(args.preset, registry=registry, executor=executor, records=records)
        except RunFailedError:  # the runs that did finish are kept
            if records is not None:
                keep(records)
            raise
        except KeyboardInterrupt:
            if records is not None:
                print("prkd: the records of this sitting's runs were not written; write them with "
                      f"python -m prkd study --preset {args.preset} --record-only", file=sys.stderr)
            raise
        if records is not None:
            keep(records)
    return _resumable("study", train)


def ladder(args: argparse.Namespace, registry) -> int:
    """Train the budget ladder's runs (``prkd.experiments.ladder.LADDER``), cheapest rung first; resumable."""
    from prkd.experiments import engine
    from prkd.experiments.ladder import LADDER

    def train() -> None:
        records = args.records or LADDER.committed_records(args.preset)
        with _executor(args) as executor:
            runs = engine.train(LADDER, args.preset, registry=registry, executor=executor,
                                max_steps=args.max_steps, records=records)
        print(f"ladder {args.preset!r}: {len(runs)} runs trained or taken from the registry")
    return _resumable("ladder", train)


def unrolled(args: argparse.Namespace, registry) -> int:
    """Train notebook 10's unrolled experiment (``prkd.experiments.unrolled.UNROLLED``) at the best beta of
    the ladder's normalized sweep; resumable, records of earlier sittings skipped."""
    from prkd.experiments import engine, unrolled as experiment

    def train() -> None:
        experiment.unrolled_runs(args.preset)  # an unknown preset is refused before anything is read
        records = args.records or experiment.UNROLLED.committed_records(args.preset)
        best_beta = experiment.best_beta(args.preset, registry=registry)
        with _executor(args) as executor:
            runs = engine.train(experiment.UNROLLED, args.preset, registry=registry, executor=executor,
                                records=records, best_beta=best_beta)
        print(f"unrolled {args.preset!r} (best beta {best_beta}): {len(runs)} runs trained or taken from the "
              "registry")
    return _resumable("unrolled", train)


def _resumable(what: str, call) -> int:
    """Run ``call`` (a plan's training): 0 when done, 2 with the error for refused input or failed runs, 130
    on an interrupt (the same command resumes)."""
    from prkd.learning import RunFailedError, TrainingDiverged, TrainingInterrupted
    try:
        call()
    except (ConfigError, RunFailedError, TrainingDiverged, TimeoutError, RuntimeError) as err:
        print(f"prkd: error: {err}", file=sys.stderr)
        return 2
    except (TrainingInterrupted, KeyboardInterrupt):
        print(f"prkd: {what} interrupted; run the same command again to continue (finished runs are kept)",
              file=sys.stderr)
        return 130
    return 0
