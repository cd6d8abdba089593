"""Peak memory of a piece of work (a training run, a benchmark variant), in MB.

On CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``. On a CPU (Linux): the growth
of the process's peak resident set (VmHWM) over its resident set (VmRSS) when tracking began; the peak is
reset first through ``/proc/self/clear_refs`` so that work done earlier in the same process (another run
in the same notebook) does not count. Where that reset is refused, the figure is the process's peak since
it started, and ``kind`` says so.
"""

from __future__ import annotations

import torch

__all__ = ["PeakMemory"]


def _status_mb(key: str) -> float:
    """An entry of /proc/self/status (VmRSS, VmHWM, ...) in MB; NaN where there is none."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _reset_cpu_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current VmRSS (Linux >= 4.0)
        return True
    except OSError:
        return False


class PeakMemory:
    """Start tracking at construction; ``mb()`` is the peak memory used since then, ``kind`` what it counts."""

    def __init__(self, device: torch.device):
        self.device = device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            self.base = torch.cuda.memory_allocated(device) / 2**20
            self.kind = "cuda max_memory_allocated growth"
        elif _reset_cpu_peak():
            self.base = _status_mb("VmRSS")
            self.kind = "peak resident set growth"
        else:
            self.base = 0.0
            self.kind = "process peak resident set"

    def mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20 - self.base
        return _status_mb("VmHWM") - self.base
