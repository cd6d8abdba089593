"""Figures that are counted, not timed: U-Net FLOPs, the initialization's memory traffic, and an ESTIMATE of
GPU hours built on them. Imports prkd only (no other benchmark module), so tests can load it by file path.

Figures: ``unet_gflop_per_image``, ``init_mb_per_image_L<L>``, ``estimate_gpu_hours_<mode>_L<L>``.
"""

from __future__ import annotations

import torch

import prkd
from prkd.nets.unet import UNet

#: complex64 field passes (a read or a write of one L x M x M stack) per power iteration of Algorithm 1:
#: mask product (r, w), FFT (r, w), weighting by w(y) (r, r of w, w), inverse FFT (r, w), conjugate mask
#: product and sum over L (r); the filter and the normalisation touch one M x M field and are left out.
INIT_PASSES_PER_ITERATION = 10


def unet_gflop_per_image(cfg: prkd.Config) -> float:
    """U-Net forward FLOPs per image, counted by torch's FlopCounterMode on meta tensors (no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    net = UNet(depth=cfg.net.unet_depth, width=cfg.net.unet_width).to("meta")
    n = cfg.data.image_size
    with FlopCounterMode(display=False) as counter:
        net(torch.empty(1, 2, n, n, device="meta"))
    return counter.get_total_flops() / 1e9


def init_mb_per_image(cfg: prkd.Config) -> float:
    """Memory traffic of the initialization's forward per image, MB (FFTs and element-wise products are
    memory-bound on a GPU): passes x L x M^2 x 8 bytes x T."""
    m = cfg.data.image_size * cfg.data.pad_factor
    return INIT_PASSES_PER_ITERATION * cfg.optics.n_masks * m * m * 8 * cfg.init.T / 1e6


def estimate_gpu_hours(cfg: prkd.Config, gpu_tflops: float, gpu_gbps: float) -> float:
    """ESTIMATE of one model's training time on one GPU: per epoch, 3 x forward cost per training image
    (forward + backward) and 1 x per validation image; U-Net at ``gpu_tflops`` sustained, initialization at
    ``gpu_gbps``. Data loading, the optimiser and kernel launches are left out; the random baseline (frozen
    optics, no backward through the initialization) is counted like a trained model, an upper bound."""
    d, t = cfg.data, cfg.train
    per_image_s = unet_gflop_per_image(cfg) / (gpu_tflops * 1e3) + init_mb_per_image(cfg) / (gpu_gbps * 1e3)
    return t.epochs * (3 * d.n_train + d.n_val) * per_image_s / 3600


def counted_figures(preset: str, masks: tuple[int, ...], gpu_tflops: float,
                    gpu_gbps: float) -> dict[str, float]:
    """The counts at ``preset`` for each teacher mask count in ``masks``, and the estimate for each teacher
    and for the single-mask student."""
    figures = {"unet_gflop_per_image": unet_gflop_per_image(prkd.make(preset))}
    for L in masks:
        figures[f"init_mb_per_image_L{L}"] = init_mb_per_image(prkd.make(preset, n_masks=L))
    for mode, L in [("teacher", L) for L in masks] + [("student", 1)]:
        cfg = prkd.make(preset, n_masks=L)
        figures[f"estimate_gpu_hours_{mode}_L{L}"] = estimate_gpu_hours(cfg, gpu_tflops, gpu_gbps)
    return figures
