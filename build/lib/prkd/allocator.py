"""The memory allocator the launchers use on Linux: glibc tunables that stop large temporaries from costing
page faults on every training step.

glibc's malloc serves blocks above its mmap threshold with fresh ``mmap`` calls and gives freed heap memory
back to the kernel above its trim threshold; a training step that allocates and frees the same large
tensors every iteration then page-faults on all of them again each step. Raising both thresholds keeps that
memory in the process and reuses it. Tunables are read when a process starts, so they must be in the
environment before Python starts: ``scripts/setup.sh`` exports them (reproduction, tests, and the papermill
kernels they start inherit them) and ``python -m prkd`` re-executes itself once with them when they are
missing. ``PRKD_ALLOCATOR=default`` turns this off; the benchmark prints the measured ratio.

    python -m prkd.allocator        # prints the export line the scripts use
"""

from __future__ import annotations

import os
import platform
import sys

__all__ = ["TUNABLES", "allocator_env", "reexec_with_allocator"]

#: No mmap for large blocks (they come from the heap and are reused), a 4 GiB trim threshold and a
#: 256 MiB top pad. Measured on a 2-core x86-64 CPU with benchmarks/step_time.py (96x96, L = 15, batch 32,
#: U-Net depth 4 width 16): 3.0-3.5 s per learned-mask step instead of 6.8-7.2 s; raising only the mmap
#: threshold (to glibc's 32 MiB maximum) changed nothing, and at 32x32 the gain is about 6 %.
TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967296:glibc.malloc.top_pad=268435456"


def _is_glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def allocator_env(environ: dict | None = None) -> dict[str, str]:
    """The variables to add to ``environ`` (default ``os.environ``): empty when already set, off or not glibc."""
    environ = os.environ if environ is None else environ
    if environ.get("PRKD_ALLOCATOR") == "default" or "GLIBC_TUNABLES" in environ or not _is_glibc():
        return {}
    return {"GLIBC_TUNABLES": TUNABLES}


def reexec_with_allocator(argv: list[str]) -> None:
    """Replace this process by the same command with the tunables set, if they are missing (else return)."""
    extra = allocator_env()
    if extra:
        os.execve(sys.executable, [sys.executable, *argv], {**os.environ, **extra})


if __name__ == "__main__":
    extra = allocator_env()
    print(" ".join(f"export {k}={v}" for k, v in extra.items()))
