"""Wall time of the headless reproduction, run by two checkouts of prkd one after the other.

    python benchmarks/reproduce_wall.py --old /tmp/prkd-old --out outputs/benchmarks/reproduce-wall.json

Each checkout runs ``python -m prkd --output-dir <fresh temporary folder> reproduce --preset quick``
(what ``bash scripts/reproduce.sh`` runs after its set-up: notebooks 01-06 and 08 with papermill, training
every run they need) in a child process with ``PYTHONPATH`` set to that checkout and its working directory
there, so that the child, the notebooks' kernels and the notebooks themselves are that checkout's; both use
this interpreter, its packages and the environment this process has (source ``scripts/setup.sh`` first), so
only the code differs. The set-up of ``.venv`` is not timed. The checkouts alternate (``--repeats`` pairs,
old first). It prints each reproduction's seconds (and keeps each notebook's, as papermill recorded it; the
rest is start-up and any training of the plan before the notebooks) and ``reproduce_new_over_old``, the ratio
of the summed wall times (below 1 when the new code is faster); ``--keep DIR`` keeps each output folder
(e.g. for ``python -m prkd --output-dir <it> check-results --preset quick``). Nothing is asserted. Quote it
with the machine it ran on (the record names it, with its single-thread GEMM rate).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from old_new import alternate, checkout_parser, machine_line


def imported_prkd(code: Path, env: dict) -> str:
    """The file of the ``prkd`` that a child with ``env`` imports from ``code``."""
    done = subprocess.run([sys.executable, "-c", "import prkd; print(prkd.__file__)"], env=env, cwd=code,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def notebook_seconds(root: Path) -> dict[str, float]:
    """Seconds each executed notebook under ``root/notebooks`` took, as papermill recorded them."""
    seconds = {}
    for nb in sorted(root.glob("notebooks/*/*.ipynb")):
        duration = json.loads(nb.read_text(encoding="utf-8"))["metadata"].get("papermill", {}).get("duration")
        seconds[nb.stem] = round(duration, 1) if duration is not None else None
    return seconds


def _output_root(keep: Path | None):
    """A fresh output folder: a temporary one, removed afterwards, or a new one under ``keep``, kept."""
    if keep is None:
        return tempfile.TemporaryDirectory(prefix="prkd-reproduce-")
    keep.mkdir(parents=True, exist_ok=True)
    return nullcontext(tempfile.mkdtemp(prefix="reproduce-", dir=keep))


def time_reproduction(code: Path, preset: str, only: list[str] | None, keep: Path | None = None) -> dict:
    """Run the reproduction of checkout ``code`` into a fresh registry in a child process; its seconds (and,
    with ``keep``, the kept output folder)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    found = imported_prkd(code, env)
    if not found.startswith(str(code)):
        raise SystemExit(f"a child in {code} imports {found}, not that checkout's prkd")
    with _output_root(keep) as root:
        command = [sys.executable, "-m", "prkd", "--output-dir", root, "reproduce", "--preset", preset]
        command += ["--only", *only] if only else []
        start = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=code, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        notebooks = notebook_seconds(Path(root))
    if done.returncode != 0:
        raise SystemExit(f"the reproduction with {code} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    kept = {"output_dir": root} if keep else {}
    return {"prkd": found, "seconds": round(seconds, 1), "notebooks": notebooks, **kept}


def main(argv: list[str] | None = None) -> int:
    parser = checkout_parser(__doc__)
    parser.add_argument("--preset", default="quick", help="the reproduction's preset (default quick)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NOTEBOOK",
                        help="only these notebooks (e.g. 01 02; default: all the preset runs)")
    parser.add_argument("--repeats", type=int, default=1, choices=range(1, 11), metavar="1..10",
                        help="old/new pairs, alternated (default 1)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="keep each reproduction's output folder under DIR (e.g. to run check-results on "
                             "it); default: temporary folders, removed")
    args = parser.parse_args(argv)
    record = {"machine": machine_line(), "date": time.strftime("%Y-%m-%d"), "preset": args.preset,
              "only": args.only}
    alternate(lambda code: time_reproduction(code, args.preset, args.only, args.keep), args.old, args.new,
              args.repeats, record, "reproduce_new_over_old", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
