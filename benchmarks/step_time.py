"""Time one learned-mask training step (a teacher with L masks) at any shape.

    python benchmarks/step_time.py --L 15 --size 96 --batch 32
    python benchmarks/step_time.py --L 9 --size 96 --batch 64 --depth 5 --backward truncated
    PRKD_ALLOCATOR=default python benchmarks/step_time.py --L 15 --size 96 --batch 32   # glibc defaults

Prints the median step time and the allocator settings it ran with: prkd's glibc settings
(``prkd.utils.allocator.TUNABLES``), or glibc's defaults with ``PRKD_ALLOCATOR=default``; compare the two
commands above. glibc reads its tunables only when a process starts, so when this process's environment
does not match the one asked for (``GLIBC_TUNABLES`` unset, or set while ``PRKD_ALLOCATOR=default``), the
script does not time anything itself: it starts one child Python running this same script with
``GLIBC_TUNABLES`` set (or removed) in the child's environment only, waits for it, and exits with its exit
status. The child's environment then matches, so it times in its own process and starts nothing. This
process is never replaced (no ``os.exec*``) and its own environment is left as it was.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch

import prkd
from prkd.learning.loop import train_step
from prkd.learning.optimizer import build_optimizer
from prkd.utils.allocator import allocator_env


def wanted_environment(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` with glibc's tunables as asked: removed under ``PRKD_ALLOCATOR=default``, else prkd's
    settings added where unset on glibc (``allocator_env``)."""
    if environ.get("PRKD_ALLOCATOR") == "default":
        return {k: v for k, v in environ.items() if k != "GLIBC_TUNABLES"}
    return {**environ, **allocator_env(environ)}


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--L", type=int, default=15)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4, help="U-Net depth (the quick preset's: 4), width 16")
    parser.add_argument("--backward", choices=["plain", "recompute", "truncated"], default="plain")
    parser.add_argument("--steps", type=int, default=3)
    return parser.parse_args()


def _median_step_ms(args: argparse.Namespace) -> float:
    cfg = prkd.make("quick", mode="teacher", n_masks=args.L, image_size=args.size, batch_size=args.batch,
                    backward=args.backward, unet_depth=args.depth)
    device = prkd.default_device()
    system = prkd.PRSystem(cfg).to(device)
    optimizer = build_optimizer(system, cfg.train)  # the optimiser training builds
    images = torch.randint(0, 256, (args.batch, 28, 28), dtype=torch.uint8, device=device)
    index = torch.arange(args.batch, device=device)
    train_step(system, optimizer, images, index)  # warm-up
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        train_step(system, optimizer, images, index)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> int:
    args = _parse_args()
    wanted = wanted_environment(dict(os.environ))
    if wanted.get("GLIBC_TUNABLES") != os.environ.get("GLIBC_TUNABLES"):
        # tunables are read at process start: time in a child started with them, this process only waits
        return subprocess.run([sys.executable, os.path.abspath(__file__), *sys.argv[1:]],
                              env=wanted).returncode
    allocator = os.environ.get("GLIBC_TUNABLES", "glibc defaults")
    print(f"L = {args.L}, {args.size}x{args.size}, batch {args.batch}, U-Net depth {args.depth}, backward "
          f"{args.backward}, allocator {allocator!r}: {_median_step_ms(args):.0f} ms per step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
