"""Peak memory of a piece of work (a training run, a benchmark variant), in MB.

* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus what was allocated when
  tracking began.
* CPU with glibc: the bytes the allocator has handed out and not taken back (``mallinfo2``: arena and mmap
  blocks in use, summed over all arenas), sampled every millisecond by a background thread; the peak minus
  the value when tracking began. This counts what this work allocates even when the process already holds
  the pages from earlier work (prkd's allocator settings keep freed memory resident, so the resident set
  would not grow), and it is not confused by earlier, larger work in the same process (a notebook that
  trains several models). A peak shorter than the sampling period can be missed.
* Elsewhere: the growth of the process's peak resident set (Linux VmHWM) over its resident set at the start.

Use it as a context manager: ``with PeakMemory(device) as memory: ...; memory.mb()``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

import torch

__all__ = ["PeakMemory"]

_SAMPLE_SECONDS = 0.001


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks",
                 "keepcost")]


def _glibc_in_use():
    """A function returning the bytes in use from glibc's ``mallinfo2`` (glibc >= 2.33), or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _Mallinfo2

    def in_use() -> int:
        info = fn()
        return info.uordblks + info.hblkhd

    return in_use


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


class PeakMemory:
    """Start tracking at construction (or ``__enter__``); ``mb()`` is the peak memory used since then, in MB;
    ``kind`` says what is counted (module docstring). ``close()`` (or leaving the ``with`` block) stops the
    sampler; ``mb()`` still returns the peak seen until then."""

    def __init__(self, device: torch.device):
        self.device = device
        self._thread = None
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            self.base = torch.cuda.memory_allocated(device) / 2**20
            self.kind = "cuda max_memory_allocated growth"
            return
        in_use = _glibc_in_use()
        if in_use is None:
            self.base = _status_mb("VmRSS")
            self.kind = "peak resident set growth"
            return
        self.kind = "peak heap in use (glibc, sampled every 1 ms)"
        self._in_use = in_use
        self._base_bytes = self._peak_bytes = in_use()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="prkd-peak-memory", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(_SAMPLE_SECONDS):
            self._peak_bytes = max(self._peak_bytes, self._in_use())

    def mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20 - self.base
        if self._thread is None:
            return _status_mb("VmHWM") - self.base
        self._peak_bytes = max(self._peak_bytes, self._in_use())
        return (self._peak_bytes - self._base_bytes) / 2**20

    def close(self) -> None:
        if self._thread is not None and not self._stop.is_set():
            self._stop.set()
            self._thread.join()

    def __enter__(self) -> "PeakMemory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
