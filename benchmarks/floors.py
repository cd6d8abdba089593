"""How close the code comes to what the hardware allows: the initialization against its own FFTs, where its
time goes, and a whole training step against the FLOP rate of a large convolution.

Variant kinds (built by ``variants.build``, timed by ``timed_variant``):

* ``init``       the initialization's forward without a gradient (``init_forward``)
* ``init_grad``  a learned-mask initialization, forward and backward: the CDPs, the masks phi and the filter
                 psi all require a gradient, so the backward computes every gradient a teacher step needs of
                 it; with ``backward`` "truncated" its checks are ``gradient_cosines`` against the exact
                 gradient
* ``fft``, ``fft_grad``  the 2 L T FFTs of a forward or the 4 L T of a forward and backward (``ffts``,
                 ``passes`` = 1 or 2), unnormalized (the initialization folds the DFT's scaling into its
                 weights)
* ``conv_peak``  a large 3 x 3 ``conv2d`` (64 -> 128 channels, 32 x 32, batch 64, channels_last), in float32
                 or under bfloat16 autocast (``arithmetic``): the reference FLOP rates of
                 ``step_fraction_of_peak``
* ``unet_step``  the U-Net alone, forward and backward on a batch of initial estimates, its FLOPs counted: the
                 floor of a step's fraction of peak (every step runs it)
* ``compiled``   the same U-Net step (``what`` = "unet") or the initialization forward (``what`` = "init"),
                 eager or through ``torch.compile`` (``compile`` true; the CPU inductor backend), to measure
                 what compiling buys (bench.py's opt-in group ``compile``)
* ``peak_step``  one training step (``variants._train_step``), its FLOPs counted once while building it:
                 the U-Net's by torch's FlopCounterMode, each complex FFT of n points as 5 n log2(n)
                 (``FFTFlops``, which sees every ``aten._fft_c2c`` the step calls, forward and backward)

``init_breakdown`` profiles one forward of the initialization (torch.profiler) and gives each part's share
of its self time: the L-stack FFTs, the element-wise products over the L-stack (masks, weights, the sum over
L), the filter (its FFTs on the zero-padded grid and its product) and the per-image norms.
"""

from __future__ import annotations

import math

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

import prkd

__all__ = ["FFTFlops", "conv_peak", "ffts", "init_breakdown", "init_grad", "peak_step_flops"]


class FFTFlops(TorchDispatchMode):
    """Counts 5 n log2(n) FLOPs per complex FFT of n points over every ``aten._fft_c2c`` call it sees."""

    def __init__(self):
        super().__init__()
        self.flops = 0.0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._fft_c2c.default:
            x, dims = args[0], args[1]
            n = math.prod(x.shape[d] for d in dims)
            self.flops += x.numel() / n * 5 * n * math.log2(n)
        return func(*args, **(kwargs or {}))


def peak_step_flops(call) -> float:
    """FLOPs of one call of a training step: the convolutions and products (FlopCounterMode) plus the FFTs."""
    with FlopCounterMode(display=False) as counter, FFTFlops() as fft:
        call()
    return counter.get_total_flops() + fft.flops


def conv_peak(device: torch.device, arithmetic: str = "float32"):
    """The reference convolution (module docstring) and its FLOPs per call, in ``arithmetic`` ("float32", or
    "bfloat16": under bfloat16 autocast, as the recovery network runs; emulated, and slow, on a CPU without
    bfloat16 units)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 64, 32, 32, generator=gen).to(device, memory_format=torch.channels_last)
    w = torch.randn(128, 64, 3, 3, generator=gen).to(device, memory_format=torch.channels_last)

    @torch.no_grad()
    def call():
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=arithmetic == "bfloat16"):
            return torch.nn.functional.conv2d(x, w, padding=1)
    with FlopCounterMode(display=False) as counter:
        call()
    return call, counter.get_total_flops()


def init_grad(system: prkd.PRSystem, scenes: torch.Tensor):
    """The timed call of ``init_grad``: the initialization of learned masks and filter, forward and
    backward."""
    with torch.no_grad():
        y0 = system.measure(scenes)

    def call():
        system.zero_grad(set_to_none=True)
        y = y0.clone().requires_grad_(True)
        z = system.init(y, system.sensing)
        (z.real.square().sum() + z.imag.sum()).backward()
    return call


def gradient_cosines(exact: prkd.PRSystem, cheap: prkd.PRSystem, scenes: torch.Tensor) -> dict[str, float]:
    """``cosine_phi``, ``cosine_psi``: the cosine between ``cheap``'s and ``exact``'s gradients of the masks
    and the filter, of one task loss (MSE of x_hat) through the whole system, on the same scenes and noise;
    the two systems must hold the same parameters (the same config but for ``InitConfig.backward``)."""
    grads = []
    for system in (exact, cheap):
        system.zero_grad(set_to_none=True)
        out = system(scenes, generator=torch.Generator(scenes.device).manual_seed(1))
        (out.x_hat - scenes).square().mean().backward()
        grads.append((system.sensing.phi.grad.flatten(), system.init.filter.psi.grad.flatten()))
    cos = torch.nn.functional.cosine_similarity
    return {"cosine_phi": cos(grads[0][0], grads[1][0], dim=0).item(),
            "cosine_psi": cos(grads[0][1], grads[1][1], dim=0).item()}


def unet_step(system: prkd.PRSystem, scenes: torch.Tensor, *, compile_it: bool = False):
    """The timed call of ``unet_step``: D_theta forward and backward on the batch's initial estimates."""
    with torch.no_grad():
        z = system.initialize(system.measure(scenes))
    z2 = torch.stack([z.real, z.imag], dim=1)
    net = torch.compile(system.unet) if compile_it else system.unet

    def call():
        system.zero_grad(set_to_none=True)
        x_hat, features = net(z2)
        (x_hat.square().mean() + features.square().mean()).backward()
    return call


def init_forward(system: prkd.PRSystem, scenes: torch.Tensor, *, compile_it: bool = False):
    """The initialization's forward without a gradient, eager or compiled."""
    with torch.no_grad():
        y = system.measure(scenes)
    init = torch.compile(system.init) if compile_it else system.init

    @torch.no_grad()
    def call():
        return init(y, system.sensing)
    return call


def ffts(stack: torch.Tensor, T: int, passes: int):
    """The timed call of ``ffts``: ``passes`` x T pairs of an unnormalized FFT and inverse FFT of the
    L-stack."""
    @torch.no_grad()
    def call():
        for _ in range(passes * T):
            torch.fft.ifft2(torch.fft.fft2(stack), norm="forward")
    return call


_NORM_OPS = ("aten::pow", "aten::sqrt", "aten::div", "aten::clamp_min", "aten::sum")


def _numel(shapes: list) -> int:
    """Elements of the broadcast of an op's tensor inputs (the largest input where they do not broadcast)."""
    tensors = [tuple(s) for s in shapes if s]
    try:
        return math.prod(torch.broadcast_shapes(*tensors)) if tensors else 0
    except RuntimeError:
        return max(math.prod(s) for s in tensors)


def _part(name: str, numel: int, stack: int, mask: int) -> str:
    """Which part of the initialization a profiled op belongs to (``init_breakdown``): by the size it works
    on (the L-stack of ``stack`` elements, or twice that as its real view; a mask stack of ``mask``), else by
    its name (norms), else the filter's (the zero-padded grid, its product, the crop)."""
    if numel in (stack, 2 * stack):
        return "ffts" if "fft" in name else "products"
    if numel == mask or numel == 0:
        return "other"
    return "norms" if name in _NORM_OPS else "filter"


def init_breakdown(system: prkd.PRSystem, scenes: torch.Tensor) -> dict[str, float]:
    """Shares of the initialization's forward self time: ffts, products, filter, norms, other (sum 1)."""
    with torch.no_grad():
        y = system.measure(scenes)
        system.init(y, system.sensing)  # warm-up
        with torch.profiler.profile(record_shapes=True) as prof:
            system.init(y, system.sensing)
    mask = system.sensing.phi.numel()
    parts = dict.fromkeys(("ffts", "products", "filter", "norms", "other"), 0.0)
    for event in prof.key_averages(group_by_input_shape=True):
        part = _part(event.key, _numel(event.input_shapes), y.numel(), mask)
        parts[part] += event.self_cpu_time_total
    total = sum(parts.values()) or 1.0
    return {name: value / total for name, value in parts.items()}
