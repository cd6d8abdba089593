"""Wall time of a whole plan trained in one process against a Dask LocalCluster, and each worker's idle time.

    python benchmarks/plan_wall.py --preset quick --workers 2 --repeats 1 \
        --out outputs/benchmarks/plan-quick.json

Each way trains the preset's plan (``python -m prkd plan --preset P``: every run its notebooks need) from
scratch, into its own fresh temporary registry, in its own process:
- ``in_process``: one process, torch with every core.
- ``workers_<N>``: ``--workers N``, a LocalCluster of N single-task worker processes; each has
  ``cpu_count // N`` torch threads and prkd's allocator settings (``prkd.execution.dask_runner``).
The two ways alternate, ``--repeats`` pairs of them (in-process, workers, in-process, workers, ...), so a
drift of the machine's speed falls on both.

For each way it prints the seconds, and from the ``events.jsonl`` of every run of that registry:
- each worker process's busy seconds (its ``started``/``resumed`` .. ``completed`` spans; one worker is one
  pid) and its idle seconds (the plan's wall seconds minus its busy seconds);
- the order the runs started (events carry whole seconds, so runs started within one second tie and keep
  their run ids' order).
Then the ratio of the mean seconds (``plan_speedup_workers_<N>``: in-process over cluster, above 1 when the
cluster is faster), and it writes everything as JSON. Nothing is asserted: the figure is a ratio measured on
one machine. Say which machine it was measured on when you quote it.
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
from datetime import datetime
from pathlib import Path

OPENS = ("started", "resumed")
CLOSES = ("completed", "failed", "interrupted", "aborted")


def _events(runs_dir: Path) -> dict[str, list[dict]]:
    """Every run's events by run id (a line that is not JSON, a crash mid-write, is skipped)."""
    out = {}
    for folder in sorted(p for p in Path(runs_dir).iterdir() if p.is_dir()):
        path = folder / "events.jsonl"
        lines = path.read_text().splitlines() if path.is_file() else []
        out[folder.name] = [e for e in map(_parse, lines) if e is not None]
    return out


def _parse(line: str) -> dict | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and "event" in entry else None


def _when(event: dict) -> float:
    return datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S%z").timestamp()


def busy_seconds(runs_dir: Path) -> dict[str, float]:
    """Seconds each worker (``host:pid``) spent training: its opened (started/resumed) .. closed spans.
    A span never closed (the worker was killed) is not counted."""
    busy: dict[str, float] = {}
    for events in _events(runs_dir).values():
        opened: dict[str, float] = {}
        for e in events:
            worker = f"{e['host']}:{e['pid']}"
            if e["event"] in OPENS:
                opened[worker] = _when(e)
            elif e["event"] in CLOSES and worker in opened:
                busy[worker] = busy.get(worker, 0.0) + _when(e) - opened.pop(worker)
    return busy


def idle_seconds(busy: dict[str, float], wall_seconds: float) -> dict[str, float]:
    """Each worker's idle time: the plan's wall seconds minus its busy seconds."""
    return {worker: round(wall_seconds - seconds, 1) for worker, seconds in busy.items()}


def start_order(runs_dir: Path) -> list[str]:
    """Run ids in the order they first started (ties, within the events' one-second resolution: by run id)."""
    first = {rid: min(_when(e) for e in events if e["event"] == "started")
             for rid, events in _events(runs_dir).items() if any(e["event"] == "started" for e in events)}
    return sorted(first, key=lambda rid: (first[rid], rid))


def _time_plan(preset: str, workers: int | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="prkd-plan-") as root:
        argv = [sys.executable, "-m", "prkd", "--output-dir", root, "plan", "--preset", preset]
        argv += ["--workers", str(workers)] if workers else []
        start = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True)
        seconds = time.monotonic() - start
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        runs_dir = Path(root) / "runs"
        events = _events(runs_dir)
        busy = busy_seconds(runs_dir)
        return {"seconds": round(seconds, 1), "runs": len(events),
                "started_events": sum(e["event"] == "started" for run in events.values() for e in run),
                "busy_seconds": {w: round(s, 1) for w, s in busy.items()},
                "idle_seconds": idle_seconds(busy, seconds),
                "start_order": start_order(runs_dir)}


def _print_way(name: str, result: dict) -> None:
    print(f"{name}: {result['seconds']} s, {result['runs']} runs, {result['started_events']} started events",
          flush=True)
    for worker, idle in result["idle_seconds"].items():
        print(f"  worker {worker}: busy {result['busy_seconds'][worker]} s, idle {idle} s", flush=True)
    print(f"  start order: {', '.join(result['start_order'])}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1,
                        help="pairs of (in-process, workers) runs, alternated")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.repeats < 1 or args.workers < 1:
        parser.error("--repeats and --workers must be at least 1")
    cores = os.cpu_count() or 1
    cluster = f"workers_{args.workers}"
    record = {"preset": args.preset, "machine": f"{platform.machine()}, {cores} cores",
              "workers": args.workers,
              "repeats": args.repeats, "torch_threads_per_worker": max(1, cores // args.workers),
              "torch_threads_in_process": cores, "in_process": [], cluster: []}
    for repeat in range(args.repeats):
        for name, workers in (("in_process", None), (cluster, args.workers)):
            record[name].append(_time_plan(args.preset, workers))
            _print_way(f"{name} (pair {repeat + 1} of {args.repeats})", record[name][-1])
    mean = {name: sum(r["seconds"] for r in record[name]) / args.repeats for name in ("in_process", cluster)}
    ratio = mean["in_process"] / mean[cluster]
    record[f"plan_speedup_workers_{args.workers}"] = round(ratio, 3)
    print(f"plan_speedup_workers_{args.workers}: {ratio:.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()
