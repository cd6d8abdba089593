"""The machine the benchmark ran on: what it is (``facts``: CPU model, vector extensions, torch's threads) and
how fast it multiplies matrices (``gemm_rates``), the precondition every timing of bench.py is read against.

Figures: ``gemm_gflops_1thread`` and ``gemm_gflops_all_threads``, float32 ``torch.mm`` of two 1024 x 1024
matrices (2 n^3 FLOPs a call), the median over a few calls after a warm-up, on one thread and on all of
torch's. bench.py's group ``machine`` (``group``) measures them; the facts go into its JSON record
(``machine_facts``).
"""

from __future__ import annotations

import platform
import statistics
import time

import torch

from prkd.utils.arithmetic import bfloat16_units
from shapes import GroupSettings, masks_measured

#: the vector extensions looked for in /proc/cpuinfo's flags (x86) or features (ARM: asimd is NEON)
EXTENSIONS = ("avx512f", "avx2", "avx", "fma", "neon")
GEMM_SIZE = 1024
GEMM_REPEATS = 5


def _cpuinfo() -> dict[str, str]:
    """The first processor's entries of /proc/cpuinfo (empty where there is none)."""
    entries: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip() not in entries:
                    entries[key.strip()] = value.strip()
    except OSError:
        pass
    return entries


def facts() -> dict[str, object]:
    """``cpu_model``, ``vector_extensions`` (those of ``EXTENSIONS`` present, space-separated, or "none"),
    ``bfloat16_units`` (the native bfloat16 units torch detects, ``prkd.utils.arithmetic``, or "none") and
    ``torch_threads``."""
    info = _cpuinfo()
    model = info.get("model name") or platform.processor() or platform.machine() or "unknown"
    flags = set((info.get("flags") or info.get("Features") or "").split())
    if "asimd" in flags or (platform.machine() in ("arm64", "aarch64") and not flags):
        flags.add("neon")  # ARMv8 has NEON (asimd) always; macOS has no /proc/cpuinfo
    present = [ext for ext in EXTENSIONS if ext in flags]
    return {"cpu_model": model, "vector_extensions": " ".join(present) or "none",
            "bfloat16_units": " ".join(bfloat16_units()) or "none", "torch_threads": torch.get_num_threads()}


def gemm_gflops(threads: int) -> float:
    """GFLOP/s of a float32 ``GEMM_SIZE``-square ``torch.mm`` on ``threads`` threads (median of the calls)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        a, b = (torch.randn(GEMM_SIZE, GEMM_SIZE, generator=gen) for _ in range(2))
        out = torch.empty(GEMM_SIZE, GEMM_SIZE)
        torch.mm(a, b, out=out)  # warm-up: the thread pool and the kernel's buffers
        seconds = []
        for _ in range(GEMM_REPEATS):
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            seconds.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return 2 * GEMM_SIZE**3 / statistics.median(seconds) / 1e9


def gemm_rates() -> dict[str, float]:
    """``gemm_gflops_1thread`` and ``gemm_gflops_all_threads`` (torch's thread count, ``facts``)."""
    return {"gemm_gflops_1thread": gemm_gflops(1),
            "gemm_gflops_all_threads": gemm_gflops(torch.get_num_threads())}


def group(run: GroupSettings) -> dict[str, float]:
    """bench.py's group ``machine``: the GEMM rates, measured once (at the first L_t of the preset; they do
    not depend on the shapes, so they carry no ``_L<L>`` suffix)."""
    return gemm_rates() if run.L == masks_measured(run.preset)[0] else {}
