"""What ``metrics.json`` records of a finished run (``final_metrics``): its test, costs and optics
diagnostics, and for a student the KD terms at step 0 (``kd_terms_at_start``, which also sets the
``"normalized"`` L_cdp's scale) and over the last epoch."""

from __future__ import annotations

import copy

import torch

from prkd.config import Config
from prkd.data import Splits, to_images
from prkd.learning.diagnostics import DIAGNOSTICS
from prkd.learning.evaluation import device_name, final_test, inference_ms
from prkd.learning.loop import Fit, Position, StepKey, epoch_order
from prkd.learning.objectives import cdp_loss, normalized_cdp_scale, task_loss
from prkd.utils.memory import PeakMemory
from prkd.utils.seeding import seeded_generator

__all__ = ["final_metrics", "kd_terms_at_start"]


def kd_terms_at_start(run: Fit) -> dict[str, float]:
    """L_task and L_cdp (paper form) of the untrained student on its first training batch, exactly as step 0
    sees them (a copy of the fresh system in train mode, step 0's noise); sets the ``"normalized"`` L_cdp's
    scale on ``run.targets``. Returns ``task_start``, ``cdp_paper_start`` and ``kd_ratio_start``: beta L_cdp
    / (alpha L_task) at step 0 in the run's own form of L_cdp."""
    t = run.cfg.train
    index = epoch_order(run, 0)[:run.batch]
    img = to_images(run.images[index], run.cfg.data.image_size)
    key = StepKey(t.seed, 0, 0)
    with torch.no_grad():
        noise = seeded_generator(*key, "noise", device=img.device)
        out = copy.deepcopy(run.system).train()(img, generator=noise)
        teacher_noise = seeded_generator(*key, "teacher-noise", device=img.device)
        mean_cdp, _ = run.targets(index, img, generator=teacher_noise)
        task, cdp = task_loss(out.x_hat, img).item(), cdp_loss(mean_cdp, out.y, "paper").item()
    if t.cdp_loss == "normalized":
        run.targets.cdp_scale = normalized_cdp_scale(task, cdp)
    own = cdp * run.targets.cdp_scale if t.cdp_loss != "standardized" else None
    ratio = t.beta * own / (t.alpha * task) if own is not None and t.alpha > 0 else None
    return {"task_start": task, "cdp_paper_start": cdp, "kd_ratio_start": ratio,
            "cdp_scale": run.targets.cdp_scale}


def _kd_ratio_end(cfg: Config, last: dict) -> float | None:
    """beta L_cdp / (alpha L_task) over the last epoch's steps (the run's own form of L_cdp), or None."""
    t = cfg.train
    if t.mode != "student" or t.alpha == 0 or last.get("cdp") is None or not last.get("task"):
        return None
    return t.beta * last["cdp"] / (t.alpha * last["task"])


def final_metrics(run: Fit, at: Position, start: dict, kd_start: dict, *, data: Splits,
                  memory: PeakMemory) -> dict:
    """The test of the trained system and everything ``metrics.json`` records of the run (without its id)."""
    cfg, system, device = run.cfg, run.system, run.device
    t = cfg.train
    test = final_test(system, data.test, device=device)
    peak = memory.mb()
    inference = inference_ms(system, data.test, run.batch, device)
    last = at.history[-1]
    kd = {**kd_start, "kd_ratio_end": _kd_ratio_end(cfg, last)} if kd_start else {}
    optics = {**kd, **{f"{k}_start": v for k, v in start.items() if k != "mask_drift"},
              **{f"{k}_end": v for k, v in last.items() if k in DIAGNOSTICS and k != "mask_drift"},
              "mask_drift_rad": last["mask_drift"]}
    return {
        **optics, "test_psnr": test["psnr"], "test_ssim": test["ssim"], "n_test": len(data.test),
        "test_psnr_per_image": [round(v, 4) for v in test["psnr_per_image"]],
        "test_ssim_per_image": [round(v, 5) for v in test["ssim_per_image"]],
        "val_psnr": last["val_psnr"], "val_ssim": last["val_ssim"], "train_seconds": at.elapsed,
        "epochs": t.epochs, "steps": cfg.total_steps,
        "images_per_second": t.epochs * run.steps * run.batch / max(at.elapsed, 1e-9), "peak_memory_mb": peak,
        "peak_memory_kind": memory.kind, "inference_ms_per_batch": inference, "inference_batch": run.batch,
        "device": device_name(device), "torch": torch.__version__, "arithmetic": system.arithmetic(device)}
