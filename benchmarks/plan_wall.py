"""Wall time of a whole plan trained in one process against a Dask LocalCluster, measured in one run.

    python benchmarks/plan_wall.py --preset quick --workers 2 --out outputs/benchmarks/plan-quick.json

Each way trains the preset's plan (``python -m prkd plan --preset P``: every run its notebooks need) from
scratch, into its own fresh temporary registry, in its own process:
- ``in_process``: one process, torch with every core.
- ``workers_<N>``: ``--workers N``, a LocalCluster of N single-task worker processes; each has
  ``cpu_count // N`` torch threads and prkd's allocator settings (``prkd.experiments.dask_runner``).

It prints the seconds of each way, their ratio (``plan_speedup_workers_<N>``: in-process over cluster, above
1 when the cluster is faster) and the threads each worker used, and writes them as JSON. Nothing is
asserted: the figure is a ratio measured in one run on one machine. Say which machine it was measured on when
you quote it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _time_plan(preset: str, workers: int | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="prkd-plan-") as root:
        argv = [sys.executable, "-m", "prkd", "--output-dir", root, "plan", "--preset", preset]
        argv += ["--workers", str(workers)] if workers else []
        start = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True)
        seconds = time.monotonic() - start
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        runs = sorted(p.name for p in (Path(root) / "runs").iterdir())
        started = sum(sum(json.loads(line)["event"] == "started" for line in (Path(root) / "runs" / r /
                                                                           "events.jsonl").read_text().splitlines())
                      for r in runs)
    return {"seconds": round(seconds, 1), "runs": len(runs), "started_events": started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    record = {"preset": args.preset, "machine": f"{platform.machine()}, {cores} cores", "workers": args.workers,
              "torch_threads_per_worker": max(1, cores // args.workers), "torch_threads_in_process": cores}
    record["in_process"] = _time_plan(args.preset, None)
    print(f"in_process: {record['in_process']}", flush=True)
    record[f"workers_{args.workers}"] = _time_plan(args.preset, args.workers)
    print(f"workers_{args.workers}: {record[f'workers_{args.workers}']}", flush=True)
    ratio = record["in_process"]["seconds"] / record[f"workers_{args.workers}"]["seconds"]
    record[f"plan_speedup_workers_{args.workers}"] = round(ratio, 3)
    print(f"plan_speedup_workers_{args.workers}: {ratio:.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()
