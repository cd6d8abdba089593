"""Command line: ``python -m prkd reproduce [--preset quick] [--only 01 02] [--force]``."""

from __future__ import annotations

import argparse
import sys

from .config import PRESETS, ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prkd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="run the notebooks headlessly with papermill (resumable)")
    rep.add_argument("--preset", default="quick", choices=sorted(PRESETS),
                     help="smoke (CI), quick (laptop CPU, default) or paper (GPU)")
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="run only these notebooks (e.g. 01 02)")
    rep.add_argument("--force", action="store_true", help="re-run notebooks that already finished")
    args = parser.parse_args(argv)

    from .reproduce import NotebookFailed, run_notebooks
    try:
        out = run_notebooks(args.preset, seed=args.seed, only=args.only, force=args.force)
    except (ConfigError, NotebookFailed) as err:
        print(f"prkd: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("prkd: interrupted; run the same command again to continue where it stopped", file=sys.stderr)
        return 130
    print(f"executed notebooks are in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
