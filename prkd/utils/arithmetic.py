"""The arithmetic the recovery network trains in: ``NetConfig.precision`` resolved on a device.

* ``"float32"``: always float32.
* ``"bfloat16"``: bfloat16 autocast of the recovery network (U-Net, the unrolled stages' U-Nets) on CUDA and
  on a CPU with native bfloat16 units (x86: AMX-BF16 or AVX-512 BF16; ARM: BF16), detected through
  ``torch.cpu.get_capabilities()``. On a CPU without them it is refused (``ConfigError``): oneDNN
  would emulate bfloat16 there, slower than float32 (``python benchmarks/bench.py --only peak`` prints the
  reference conv2d's rate in both, docs/performance.md). The environment variable
  ``PRKD_EMULATED_BFLOAT16=1`` allows it anyway, for accuracy checks only: the arithmetic is the same, the
  speed is not.
* ``"auto"``: bfloat16 on CUDA, float32 on every CPU (docs/performance.md says why a CPU with bfloat16 units
  stays float32 until a paired training check shows that bfloat16 moves no result beyond its seed spread).

The optics, the initialization, the losses and the metrics always stay float32 / complex64. A run records the
arithmetic it resolved to (its checkpoint, ``metrics.json`` and ``events.jsonl``) and is never resumed in
another (``prkd.learning.train``).
"""

from __future__ import annotations

import os

import torch

from prkd.config_checks import ConfigError

__all__ = ["ARITHMETICS", "ArithmeticMismatch", "bfloat16_units", "cpu_has_bfloat16", "resolve_arithmetic"]

#: what a precision resolves to
ARITHMETICS = ("float32", "bfloat16")
#: the capability names (``torch.cpu.get_capabilities``) of native bfloat16 arithmetic
_BF16_UNITS = ("amx_bf16", "avx512_bf16", "bf16", "sve_bf16")
EMULATION_VARIABLE = "PRKD_EMULATED_BFLOAT16"


class ArithmeticMismatch(RuntimeError):
    """A run's checkpoint was trained in another arithmetic than the one its config resolves to here."""


def bfloat16_units() -> list[str]:
    """The CPU's native bfloat16 units, by ``torch.cpu.get_capabilities()``'s names (empty: none)."""
    try:
        capabilities = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):  # an older torch, or cpuinfo failed
        return []
    return [name for name in _BF16_UNITS if capabilities.get(name, False) is True]


def cpu_has_bfloat16() -> bool:
    """True where the CPU multiplies in bfloat16 natively (AMX-BF16, AVX-512 BF16, ARM BF16)."""
    return bool(bfloat16_units())


def resolve_arithmetic(precision: str, device: torch.device | str) -> str:
    """``"float32"`` or ``"bfloat16"``: what ``precision`` (``NetConfig.precision``) trains in on ``device``.

    Raises:
        ConfigError: ``precision="bfloat16"`` on a CPU without native bfloat16 units (unless
            ``PRKD_EMULATED_BFLOAT16=1``), or an unknown precision.
    """
    kind = torch.device(device).type
    if precision == "float32":
        return "float32"
    if precision == "auto":
        return "bfloat16" if kind == "cuda" else "float32"
    if precision != "bfloat16":
        raise ConfigError(f"config field 'precision' must be one of 'auto', 'float32', 'bfloat16'; "
                          f"got {precision!r}")
    if kind == "cuda" or cpu_has_bfloat16() or os.environ.get(EMULATION_VARIABLE) == "1":
        return "bfloat16"
    raise ConfigError(f"config field 'precision' is 'bfloat16', but this CPU has no native bfloat16 units "
                      f"(AMX-BF16, AVX-512 BF16 or ARM BF16; torch.cpu.get_capabilities()): bfloat16 would "
                      f"be emulated, slower than float32. Use precision 'float32' or 'auto' "
                      f"here (or set {EMULATION_VARIABLE}=1 to check bfloat16's accuracy at that cost).")
