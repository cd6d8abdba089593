"""The memory allocator the launchers use on Linux: glibc tunables that stop large temporaries from costing
page faults on every training step.

glibc's malloc serves blocks above its mmap threshold with fresh ``mmap`` calls and gives freed heap memory
back to the kernel above its trim threshold; a training step that allocates and frees the same large
tensors every iteration then page-faults on all of them again each step. Raising both thresholds keeps that
memory in the process and reuses it. Tunables are read when a process starts, so they must be in the
environment before Python starts, and they are set where processes are launched, never by prkd itself:
``scripts/setup.sh`` exports them (the reproduction, the tests and the papermill kernels they start inherit
them), ``.ci/run`` runs through it, and the worker processes of a plan get them in their environment
(``worker_environ``: ``prkd.execution.executors.ProcessPool``, ``prkd.execution.dask_runner``). ``python
-m prkd`` only checks (``advice``) and says how to enable them.
``PRKD_ALLOCATOR=default`` turns this off; ``benchmarks/bench.py`` measures the gain (``allocator_speedup``).

    eval "$(python -m prkd.utils.allocator)"   # the export line the scripts use (empty when set or not glibc)
"""

from __future__ import annotations

import os
import platform

__all__ = ["TUNABLES", "advice", "allocator_env", "worker_environ"]

#: No mmap for large blocks (they come from the heap and are reused), a 4 GiB trim threshold and a
#: 256 MiB top pad. Measured on a 2-core x86-64 CPU with benchmarks/step_time.py (96x96, L = 15, batch 32,
#: U-Net depth 4 width 16): 3.0-3.5 s per learned-mask step instead of 6.8-7.2 s; raising only the mmap
#: threshold (to glibc's 32 MiB maximum) changed nothing, and at 32x32 the gain is about 6 %.
TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967296:glibc.malloc.top_pad=268435456"


def _is_glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def allocator_env(environ: dict | None = None) -> dict[str, str]:
    """The variables to add to ``environ`` (default ``os.environ``): empty when already set, off or not
    glibc."""
    environ = os.environ if environ is None else environ
    if environ.get("PRKD_ALLOCATOR") == "default" or "GLIBC_TUNABLES" in environ or not _is_glibc():
        return {}
    return {"GLIBC_TUNABLES": TUNABLES}


def worker_environ(torch_threads: int) -> dict[str, str]:
    """The environment a plan's worker process starts with: its thread counts, and the tunables where they
    apply (glibc, not turned off with ``PRKD_ALLOCATOR=default``)."""
    threads = str(torch_threads)
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
    if allocator_env({}):
        env["GLIBC_TUNABLES"] = os.environ.get("GLIBC_TUNABLES", TUNABLES)
    return env


def advice(environ: dict | None = None) -> str | None:
    """A one-line note on how to enable the tunables when a process runs without them (None when they are set,
    turned off with ``PRKD_ALLOCATOR=default``, or not on glibc)."""
    if not allocator_env(environ):
        return None
    return ("glibc's allocator settings are not set in this process, so large per-step temporaries "
            "page-fault every step (training steps measured about 2x slower at 96x96; benchmarks/bench.py "
            "allocator_speedup). Enable them before Python starts: eval \"$(python -m "
            "prkd.utils.allocator)\" (scripts/setup.sh does), or set PRKD_ALLOCATOR=default to silence this "
            "note.")


if __name__ == "__main__":
    extra = allocator_env()
    print(" ".join(f"export {k}={v}" for k, v in extra.items()))
