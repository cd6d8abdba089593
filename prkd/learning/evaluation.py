"""Testing a system: per-image PSNR / SSIM on held-out images (noise drawn from ``prkd.utils.seeding``'s
seeded generators), inference time, the device's name."""

from __future__ import annotations

import statistics
import time

import torch

from prkd.data import to_images
from prkd.utils.device import to_device
from prkd.utils.seeding import seeded_generator
from prkd.metrics import psnr, ssim
from prkd.physics.system import PRSystem
from prkd.learning.refine import check_refine, refine_output

__all__ = ["evaluate", "final_test", "inference_ms", "device_name"]


@torch.no_grad()
def evaluate(system: PRSystem, images: torch.Tensor, *, batch_size: int = 256, seed: int = 0,
             device: torch.device | None = None, refine: str = "none",
             iterations: int = 200) -> dict[str, float]:
    """Mean per-image PSNR (dB) and SSIM of ``system`` on uint8 images (n, 28, 28), in eval mode, and the
    per-image values (``psnr_per_image``, ``ssim_per_image``, lists in the images' order) for paired tests.

    Noise (if configured) is drawn from generators seeded by ``seed``, so the figure is reproducible. With
    ``refine`` "er" or "raar", each output is also refined for ``iterations`` on its own CDPs without an
    oracle (``prkd.learning.refine``), and the same four keys prefixed ``refined_`` give the refined scores.
    """
    check_refine(refine, iterations)
    device = device or next(system.parameters()).device
    was_training = system.training
    system.eval()
    scores: dict[str, list[torch.Tensor]] = {"": [], "refined_": []}
    images = to_device(images, device)
    for i, start in enumerate(range(0, len(images), batch_size)):
        img = to_images(images[start:start + batch_size], system.cfg.data.image_size)
        out = system(img, generator=seeded_generator(seed, "eval", i, device=img.device))
        scores[""].append((psnr(out.x_hat, img), ssim(out.x_hat, img)))
        if refine != "none":
            refined = refine_output(out.x_hat, out.y, system.sensing, phase_range=system.cfg.data.phase_range,
                                    refine=refine, iterations=iterations)
            scores["refined_"].append((psnr(refined, img), ssim(refined, img)))
    system.train(was_training)
    result = {}
    for prefix, pairs in scores.items():
        if pairs:
            p, s = (torch.cat(t) for t in zip(*pairs))
            result |= {f"{prefix}psnr": p.mean().item(), f"{prefix}ssim": s.mean().item(),
                       f"{prefix}psnr_per_image": p.tolist(), f"{prefix}ssim_per_image": s.tolist()}
    return result


def final_test(system: PRSystem, images: torch.Tensor, *, device: torch.device | None = None,
               refine: str = "none",
               iterations: int = 200) -> dict[str, float]:
    """``evaluate`` on the test images as a run's final test does: batches of max(batch, 256) images (full
    batches of training, as ``prkd.learning.loop``), noise seeded by ``seed + 1``. ``prkd.learning.rescoring``
    reproduces a run's test scores with it."""
    cfg = system.cfg
    batch = max(min(cfg.train.batch_size, cfg.data.n_train), 256)
    return evaluate(system, images, batch_size=batch, seed=cfg.train.seed + 1, device=device, refine=refine,
                    iterations=iterations)


def inference_ms(system: PRSystem, images: torch.Tensor, batch: int, device: torch.device,
                 repeats: int = 5) -> float:
    """Median wall time (ms) of one inference pass (measure, initialize, U-Net) over a batch of ``batch``
    images."""
    system.eval()
    img = to_images(to_device(images[:batch], device), system.cfg.data.image_size)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 1):  # the first pass warms up
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            system(img)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[1:])


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
