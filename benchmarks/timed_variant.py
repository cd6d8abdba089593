"""Time benchmark variants, each measurement in a fresh Python process that this module starts.

    python benchmarks/timed_variant.py '<JSON spec>'   # what the launchers below run; prints one JSON line

A spec with ``variants`` (name -> variant spec) builds them all in the one process and calls them in turn
(A B A B ...), each after a warm-up: the median ms per call of each (``measure_in_turn``); time ratios are
taken from here, so that a shared machine's drifting speed hits every variant alike. A single variant spec
runs alone (``measure_alone``): median ms per call and peak memory in MB, everything the variant builds and
runs (``prkd.utils.memory.PeakMemory``), which only a process of its own makes its own.

The parent side: ``run_in_fresh_process`` starts one such process, with glibc's allocator settings as
inherited, or set or removed for that child only (``allocator`` = "tuned" / "default"; tunables are read when
a process starts); ``in_turn`` and ``alternately`` repeat it and take medians.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from prkd.utils.allocator import TUNABLES
from prkd.utils.device import default_device
from prkd.utils.memory import PeakMemory
from variants import build, init_breakdown_of

_THIS_SCRIPT = Path(__file__).resolve()


def _seconds(call, device: torch.device) -> float:
    """Seconds of one call, the device synchronised."""
    start = time.perf_counter()
    call()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def measure_alone(spec: dict) -> dict:
    """One variant in this process: ms per call (median over ``steps``) and peak memory growth in MB."""
    device = default_device()
    memory = PeakMemory(device)  # everything the variant builds (models, optimiser state, caches) and runs
    variant = build(spec, device)
    _seconds(variant.call, device)  # warm-up (also allocates what every step reuses)
    times = [_seconds(variant.call, device) for _ in range(spec["steps"])]
    peak_mb = memory.mb()
    memory.close()
    return {"ms": 1000 * statistics.median(times), "peak_mb": peak_mb, **variant.checks}


def measure_in_turn(spec: dict) -> dict:
    """Several variants built in this process and called in turn, each after a warm-up: median ms of each."""
    device = default_device()
    variants = {name: build(v, device) for name, v in spec["variants"].items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for variant in variants.values():
        _seconds(variant.call, device)
    for _ in range(spec["steps"]):
        for name, variant in variants.items():
            times[name].append(_seconds(variant.call, device))
    out = {name: 1000 * statistics.median(t) for name, t in times.items()}
    cosines = [v.checks["cosine_min"] for v in variants.values() if "cosine_min" in v.checks]
    checks = {f"{name}.{key}": value for name, v in variants.items() for key, value in v.checks.items()
              if key != "cosine_min"}
    return {**out, **checks, **({"cosine_min": min(cosines)} if cosines else {})}


def _child_environment(allocator: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if allocator == "default":
        env.pop("GLIBC_TUNABLES", None)
    elif allocator == "tuned":
        env["GLIBC_TUNABLES"] = TUNABLES
    elif allocator is not None:
        raise ValueError(f"allocator must be 'default', 'tuned' or None; got {allocator!r}")
    return env


def run_in_fresh_process(spec: dict, allocator: str | None = None) -> dict:
    """``measure_in_turn`` (a spec with ``variants``) or ``measure_alone`` in a child process started here."""
    out = subprocess.run([sys.executable, str(_THIS_SCRIPT), json.dumps(spec)],
                         capture_output=True, text=True,
                         env=_child_environment(allocator))
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {spec} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def in_turn(variants: dict[str, dict], steps: int, repeats: int) -> dict[str, float]:
    """``repeats`` fresh processes, each calling the variants in turn: the median over processes of each
    variant's ms, of each ``<name>/<other>`` ratio of ms within a process, and the smallest ``cosine_min``."""
    runs = [run_in_fresh_process({"variants": variants, "steps": steps}) for _ in range(repeats)]
    out = {name: statistics.median(r[name] for r in runs) for name in variants}
    for a in variants:
        for b in variants:
            if a != b:
                out[f"{a}/{b}"] = statistics.median(r[a] / r[b] for r in runs)
    out["cosine_min"] = min(r.get("cosine_min", float("nan")) for r in runs)
    out |= {key: statistics.median(r[key] for r in runs) for key in runs[0] if "." in key}  # "<name>.<check>"
    return out


def alternately(variants: dict[str, dict], repeats: int, allocators: dict[str, str] | None = None
                ) -> dict[str, dict[str, float]]:
    """Each named variant alone in a fresh process (its allocator from ``allocators``), the variants
    alternated ``repeats`` times: the median ms and peak_mb of each."""
    allocators = allocators or {}
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, spec in variants.items():
            results[name].append(run_in_fresh_process(spec, allocators.get(name)))
    return {name: {key: statistics.median(r[key] for r in rs) for key in ("ms", "peak_mb")}
            for name, rs in results.items()}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    spec = json.loads(argv[0])
    if spec.get("profile"):
        print(json.dumps(init_breakdown_of(spec, default_device())))  # floors.init_breakdown's shares
    else:
        print(json.dumps(measure_in_turn(spec) if "variants" in spec else measure_alone(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
