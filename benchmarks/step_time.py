"""Time one learned-mask training step (a teacher with L masks) at any shape, in this process.

    python benchmarks/step_time.py --L 15 --size 96 --batch 32
    PRKD_ALLOCATOR=default python benchmarks/step_time.py --L 15 --size 96 --batch 32   # glibc defaults

Prints the median step time. It uses prkd's allocator settings (prkd/allocator.py), restarting itself
once to apply them, unless PRKD_ALLOCATOR=default asks for glibc's defaults: compare the two commands above.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

import prkd
from prkd.allocator import TUNABLES
from prkd.train import train_step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--L", type=int, default=15)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--backward", choices=["plain", "recompute"], default="plain")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    if os.environ.get("PRKD_ALLOCATOR") == "default":
        os.environ.pop("GLIBC_TUNABLES", None)
    elif "GLIBC_TUNABLES" not in os.environ:
        os.environ["GLIBC_TUNABLES"] = TUNABLES
        os.execv(sys.executable, [sys.executable, *sys.argv])  # tunables are read at process start
    cfg = prkd.make("quick", mode="teacher", n_masks=args.L, image_size=args.size, batch_size=args.batch,
                    backward=args.backward)
    device = prkd.default_device()
    system = prkd.PRSystem(cfg).to(device)
    optimizer = torch.optim.Adam(system.parameters(), lr=1e-4)
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
    allocator = os.environ.get("GLIBC_TUNABLES", "glibc defaults")
    print(f"L = {args.L}, {args.size}x{args.size}, batch {args.batch}, backward {args.backward}, "
          f"allocator {allocator!r}: {1000 * statistics.median(times):.0f} ms per step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
