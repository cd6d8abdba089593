"""Command line. Every command works on one output root (the run registry): ``--output-dir``, else
``PRKD_OUTPUT_DIR``, else ``outputs/`` of the repository checkout (``prkd.registry.default_root``).

    python -m prkd [--output-dir DIR] train --mode {teacher,e2e,random,student} [--L N] [--teacher-L N]
                         [--alpha A] [--beta B] [--teacher-run ID] --preset P [--seed S] [--set key=value ...]
    python -m prkd reproduce [--preset quick] [--only 01 02] [--force] [--report-only]
                         [--processes N | --workers N | --scheduler ADDRESS]
    python -m prkd plan [--preset quick] [--processes N | --workers N | --scheduler ADDRESS]   (no notebooks)
    python -m prkd study [--preset study] [--records DIR] [--record-only] [--processes 2 | --workers N |
                         --scheduler ADDRESS]
    python -m prkd ladder [--preset ladder] [--max-steps N]
                         [--processes N | --workers N | --scheduler ADDRESS]
    python -m prkd unrolled [--preset ladder] [--processes N | --workers N | --scheduler ADDRESS]
    python -m prkd evaluate RUN_ID [--refine {none,er,raar}] [--iterations 200]
    python -m prkd runs [--mode M] [--preset P]        (state, damage and who trained each run)
    python -m prkd export-masks RUN_ID --levels K [--wavelength-um UM] [--index N] --out DIR
    python -m prkd check-results [--preset quick] [--committed docs/results/quick]
                         [--fresh outputs/figures/quick]
"""

from __future__ import annotations

import argparse
import signal
import sys

from prkd.config import PRESETS


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
    rep.add_argument("--report-only", action="store_true",
                     help="train nothing: the experiments' notebooks (07, 09, 10) report what the registry "
                          "and their records hold")
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
    st = sub.add_parser("study", help="train the runs of notebook 07's study (resumable; by default in two "
                                      "one-thread worker processes)")
    st.add_argument("--preset", default="study", help="study (default) or smoke")
    st.add_argument("--records", default=None, metavar="DIR",
                    help="runs kept as records by an earlier sitting, not trained again; every complete run "
                         "is recorded there at the end (default at preset study: docs/results/study/records)")
    st.add_argument("--record-only", action="store_true",
                    help="write the records of the complete runs and train nothing")
    _add_cluster_options(st, "train the study", processes_default="2")
    la = sub.add_parser("ladder", help="train the budget ladder's runs, cheapest rung first (resumable)")
    la.add_argument("--preset", default="ladder", help="ladder (default) or smoke")
    la.add_argument("--max-steps", type=_positive_int, default=None, metavar="N",
                    help="train only the rungs of at most N steps (default: all)")
    la.add_argument("--records", default=None, metavar="DIR",
                    help="runs kept as records by an earlier sitting, not trained again (default at preset "
                         "ladder: docs/results/ladder/records)")
    _add_cluster_options(la, "train the ladder")
    un = sub.add_parser("unrolled", help="train notebook 10's unrolled experiment (resumable; records of "
                                         "earlier sittings are not trained again)")
    un.add_argument("--preset", default="ladder", help="ladder (default) or smoke")
    un.add_argument("--records", default=None, metavar="DIR",
                    help="runs kept as records by an earlier sitting, not trained again (default at preset "
                         "ladder: docs/results/unrolled/records)")
    _add_cluster_options(un, "train the unrolled experiment")
    ev = sub.add_parser("evaluate", help="score a run on its test split, raw and refined by a classical "
                                         "solver started from its output on its own CDPs (no oracle)")
    ev.add_argument("run", metavar="RUN_ID", help="a complete run of the registry (see `prkd runs`)")
    ev.add_argument("--refine", default="raar", help="none, er or raar (default)")
    ev.add_argument("--iterations", type=int, default=200, help="iterations of the refinement (default 200)")
    ls = sub.add_parser("runs", help="list the runs in the registry")
    ls.add_argument("--mode", default=None)
    ls.add_argument("--preset", default=None)
    ex = sub.add_parser("export-masks", help="write a run's masks quantised to K phase levels for "
                                             "fabrication: "
                                              "phase (.npy, radians), 16-bit PNG, height map (micrometres)")
    ex.add_argument("run", metavar="RUN_ID", help="a complete run of the registry (see `prkd runs`)")
    ex.add_argument("--levels", type=int, required=True, metavar="K", help="phase levels 2 pi k / K, K >= 2")
    ex.add_argument("--wavelength-um", type=float, default=None, metavar="UM",
                    help="design wavelength in micrometres (> 0; default prkd.fabrication's example, 0.532)")
    ex.add_argument("--index", type=float, default=None, metavar="N",
                    help="refractive index of the mask material (> 1; default prkd.fabrication's example, "
                         "1.5)")
    ex.add_argument("--out", required=True, metavar="DIR",
                    help="folder to write (created; nothing on bad input)")
    chk = sub.add_parser("check-results", help="compare committed result tables with a fresh run's, within "
                                               "tolerances from the seeds' spread (accuracy, not times)")
    chk.add_argument("--preset", default="quick", choices=sorted({*PRESETS, "unrolled"}),
                     help="whose results: a preset's, or 'unrolled' (notebook 10's)")
    chk.add_argument("--committed", default=None, help="default: docs/results/<preset> of this repository")
    chk.add_argument("--fresh", default=None, help="default: <output folder>/figures/<preset>")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}")
    return int(text)


def _add_cluster_options(parser: argparse.ArgumentParser, what: str,
                         processes_default: str = "in this process"):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--processes", type=int, default=None, metavar="N",
                       help=f"{what} in N local worker processes, the cores shared out (no Dask; default: "
                            f"{processes_default})")
    group.add_argument("--workers", type=int, default=None, metavar="N",
                       help=f"{what} on a Dask LocalCluster of N single-task worker processes (prkd[scale])")
    group.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help=f"{what} on an existing Dask cluster (prkd[scale]; docs/scale-out.md)")
    return group


def take_interrupts() -> None:
    """Let SIGINT stop a command as Ctrl-C does (checkpoints kept, the same command resumes), also when a
    non-interactive shell started it in the background (``... &``, ``setsid nohup ... &``), which POSIX starts
    with SIGINT ignored: there a plan's parent would never pass an interrupt on to its worker processes."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> int:
    take_interrupts()
    parser = _parser()
    args = parser.parse_args(argv)
    from prkd.registry import OutputNotWritableError, open_registry
    try:
        registry = open_registry(args.output_dir, log=lambda message: print(message, file=sys.stderr))
    except OutputNotWritableError as err:
        print(f"prkd: error: {err}", file=sys.stderr)
        return 2
    if args.command in ("train", "study", "reproduce", "plan", "ladder", "unrolled"):
        from prkd.utils.allocator import advice
        note = advice()
        if note:
            print(f"prkd: {note}", file=sys.stderr)
    from prkd.cli import inspect, training
    commands = {"train": lambda: training.train(args, parser, registry),
                "runs": lambda: inspect.list_runs(args, registry),
                "study": lambda: training.study(args, registry),
                "ladder": lambda: training.ladder(args, registry),
                "unrolled": lambda: training.unrolled(args, registry),
                "check-results": lambda: inspect.check_results(args, registry),
                "export-masks": lambda: inspect.export_masks(args, registry),
                "evaluate": lambda: inspect.evaluate_run(args, registry)}
    return commands.get(args.command, lambda: training.reproduce(args, registry))()


if __name__ == "__main__":
    sys.exit(main())
