"""Wall time of a representative slice of the study, trained by two checkouts of prkd one after the other.

    python benchmarks/study_slice.py --old /tmp/prkd-old --epochs 16 --out outputs/benchmarks/study-slice.json

The slice is the study's L_t = 9 teacher and eight single-snapshot runs of different modes (``SLICE``: E2E,
random and the KD student at seeds 0 and 1, and the L_cdp-only and L_feat-only students at seed 0), at the
study preset's shapes. ``--epochs`` shortens every run alike (the study trains 16): the steps are the same
work at every epoch, so a shorter slice measures the same per-step costs, plus each run's fixed costs
(data, test, inference timing) weighing a little more.

Each checkout trains the whole slice in a child process of its own (``PYTHONPATH`` set to that checkout, so
the child imports its ``prkd``), into a fresh temporary registry, with torch's default threads and the
allocator settings this process has. The checkouts alternate (``--repeats`` pairs, old first). It prints the
seconds of every run and of the slice, and ``study_slice_new_over_old``: the ratio of the two slices' wall
times (below 1 when the new code is faster). Nothing is asserted. Quote it with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from old_new import alternate, checkout_parser, machine_line


#: (name, config overrides of the study preset) of the slice's runs, the teacher first
SLICE = [
    ("teacher L_t=9", dict(mode="teacher", n_masks=9, seed=0)),
    ("e2e s0", dict(mode="e2e", seed=0)), ("random s0", dict(mode="random", seed=0)),
    ("KD s0", dict(mode="student", alpha=0.5, beta=0.25, seed=0)),
    ("L_cdp only s0", dict(mode="student", alpha=0.5, beta=0.5, seed=0)),
    ("L_feat only s0", dict(mode="student", alpha=0.5, beta=0.0, seed=0)),
    ("e2e s1", dict(mode="e2e", seed=1)), ("random s1", dict(mode="random", seed=1)),
    ("KD s1", dict(mode="student", alpha=0.5, beta=0.25, seed=1)),
]

#: what the child runs: the slice through the registry of the checkout on its PYTHONPATH
CHILD = """
import json, sys, time
import prkd
from prkd.learning import get_or_train
from prkd.registry import open_registry
slice_, epochs, root = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
registry = open_registry(root)
seconds, start = {}, time.perf_counter()
for name, overrides in slice_:
    cfg = prkd.make("study", epochs=epochs, teacher_masks=9, teacher_seed=0, **overrides) \\
        if overrides["mode"] == "student" else prkd.make("study", epochs=epochs, **overrides)
    t = time.perf_counter()
    run = get_or_train(cfg, registry=registry, progress=False, log=lambda m: None)
    seconds[name] = round(time.perf_counter() - t, 2)
    print(f"{name}: {seconds[name]} s", file=sys.stderr, flush=True)
print(json.dumps({"prkd": prkd.__file__, "runs": seconds, "seconds": round(time.perf_counter() - start, 2)}))
"""


def time_slice(code: Path, epochs: int) -> dict:
    """Train the slice with the ``prkd`` of checkout ``code`` in a child process; its seconds."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    with tempfile.TemporaryDirectory(prefix="prkd-slice-") as root:
        done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(SLICE), str(epochs), root], env=env,
                              cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the slice with {code} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["prkd"].startswith(str(code)):
        raise SystemExit(f"the child imported {result['prkd']}, not the prkd of {code}")
    return result


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = checkout_parser(__doc__)
    parser.add_argument("--epochs", type=_positive, default=16, help="epochs of every run (the study: 16)")
    parser.add_argument("--repeats", type=_positive, default=1, help="old/new pairs, alternated (default 1)")
    args = parser.parse_args(argv)
    record = {"machine": machine_line(), "epochs": args.epochs, "slice": [name for name, _ in SLICE]}
    alternate(lambda code: time_slice(code, args.epochs), args.old, args.new, args.repeats, record,
              "study_slice_new_over_old", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
