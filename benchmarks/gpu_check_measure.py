"""What the GPU check (``gpu_check.py``, whose docstring lists the figures) builds, trains and times, and
the JSON record of its figures. Imported by ``gpu_check.py`` once its arguments are known to be good.

In one process, one after the other: a teacher (L_t = ``--teacher-masks`` masks, the E2E objective), an E2E
model (L = 1) and a student (L = 1, alpha 0.5, beta 0.25) distilled from that trained teacher through
``TeacherTargets``, as ``benchmarks/variants.py`` builds it. Each trains ``--warmup`` then ``--steps`` timed
steps (``train_step`` with the fit loop's optimiser, ``build_optimizer``) on random uint8 images, four batches
in turn; every step is timed on its own, the device synchronised, and the median is taken. Peak memory is
everything a model builds and runs (its teacher and the teacher's cached targets included, for the student):
``prkd.utils.memory.PeakMemory``, on CUDA ``torch.cuda.max_memory_allocated`` after
``reset_peak_memory_stats``, less what was allocated before (the input images). Inference: the teacher's and
the student's forward pass on one batch under ``torch.inference_mode``, the median of ``--inference-repeats``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import math
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

import prkd
from prkd.learning.evaluation import device_name, inference_ms
from prkd.learning.optimizer import build_optimizer
from prkd.learning.loop import train_step
from prkd.learning.teacher_targets import TeacherTargets
from prkd.learning.train import teacher_config
from prkd.utils.memory import PeakMemory

MODES = ("teacher", "e2e", "student")

#: the paper's Table 2 (RTX 4090): training 6h34m18s and 7h21m25s, 5 577 and 6 647 MB, inference 76 and 32 ms
PAPER = {"kd_over_e2e_step_time": 26_485 / 23_658, "kd_over_e2e_peak_memory": 6_647 / 5_577,
         "student_over_teacher_step_time": 26_485 / 23_658, "student_over_teacher_peak_memory": 6_647 / 5_577,
         "teacher_inference_ms_per_batch": 76.0, "student_inference_ms_per_batch": 32.0,
         "teacher_over_student_inference": 76 / 32, "estimate_hours_teacher": 23_658 / 3600,
         "estimate_hours_student": 26_485 / 3600}


def resolve_device(asked: str | None) -> torch.device | str:
    """The device to run on, or the one-line reason why the one asked for cannot be used."""
    if asked is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(asked)
    if device.type == "cuda" and not torch.cuda.is_available():
        return (f"--device {asked}: CUDA is not available (torch {torch.__version__}, built for CUDA "
                f"{torch.version.cuda or 'none'}); use --device cpu or a machine with a GPU")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        return f"--device {asked}: only {torch.cuda.device_count()} CUDA device(s) are visible"
    return device


def configs(preset: str, teacher_masks: int) -> dict[str, prkd.Config]:
    """The three configurations at ``preset``'s shapes; the paper's batch of 64 except at smoke."""
    batch = {} if preset == "smoke" else {"batch_size": 64}
    student = prkd.make(preset, mode="student", n_masks=1, alpha=0.5, beta=0.25, teacher_masks=teacher_masks,
                        **batch)
    return {"teacher": teacher_config(student), "e2e": prkd.make(preset, mode="e2e", n_masks=1, **batch),
            "student": student}


def _seconds(call: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of one call, the device synchronised before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    call()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


@dataclass
class Trained:
    """One trained model and what its training measured."""

    system: prkd.PRSystem
    step_ms: float
    peak_mb: float


def train(cfg: prkd.Config, images: torch.Tensor, device: torch.device, *, warmup: int, steps: int,
          teacher_state: dict | None = None) -> Trained:
    """Build ``cfg``'s system (and, for a student, its teacher from ``teacher_state`` with its targets) and
    train it ``warmup`` + ``steps`` steps on the four batches of ``images`` in turn."""
    memory = PeakMemory(device)
    system = prkd.PRSystem(cfg, trainable_optics=cfg.train.mode != "random").to(device)
    optimizer = build_optimizer(system, cfg.train)
    targets = None
    if teacher_state is not None:
        teacher = prkd.PRSystem(teacher_config(cfg)).to(device)
        teacher.load_state_dict(teacher_state)
        targets = TeacherTargets(teacher, images, device=device)
    batch = cfg.train.batch_size
    batches = [torch.arange(i * batch, (i + 1) * batch, device=device) for i in range(len(images) // batch)]
    times = []
    for step in range(warmup + steps):
        index = batches[step % len(batches)]
        seconds = _seconds(lambda: train_step(system, optimizer, images, index, targets=targets), device)
        if step >= warmup:
            times.append(seconds)
    peak_mb = memory.mb()
    memory.close()
    return Trained(system, 1000 * statistics.median(times), peak_mb)


def estimate_hours(images_per_s: float) -> float:
    """ESTIMATE of one model's training time at the paper's schedule and the measured ``images_per_s``: 120
    epochs of 469 steps of 64 images, plus a validation pass over 30k images per epoch at a third of a
    step."""
    paper = prkd.make("paper")
    steps = math.ceil(paper.data.n_train / paper.train.batch_size)
    images = steps * paper.train.batch_size + paper.data.n_val / 3
    return paper.train.epochs * images / images_per_s / 3600


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure(args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    """Train the three models one after the other and return every figure (module docstring)."""
    cfgs = configs(args.preset, args.teacher_masks)
    batch = cfgs["e2e"].train.batch_size
    torch.manual_seed(0)
    images = torch.randint(0, 256, (4 * batch, 28, 28), dtype=torch.uint8, device=device)
    runs, inference, teacher_state = {}, {}, None
    for mode in MODES:
        trained = train(cfgs[mode], images, device, warmup=args.warmup, steps=args.steps,
                        teacher_state=teacher_state if mode == "student" else None)
        runs[mode] = (trained.step_ms, trained.peak_mb)
        if mode != "e2e":
            inference[mode] = inference_ms(trained.system, images, batch, device,
                                           repeats=args.inference_repeats)
        if mode == "teacher":
            teacher_state = {k: v.detach().to("cpu", copy=True) for k,
                             v in trained.system.state_dict().items()}
        del trained
        _release(device)
    return _figures(runs, inference, batch)


def _figures(runs: dict[str, tuple[float, float]], inference: dict[str, float],
             batch: int) -> dict[str, float]:
    figures = {}
    for mode, (ms, _) in runs.items():
        figures[f"train_images_per_s_{mode}"] = batch / (ms / 1000)
        figures[f"train_step_ms_{mode}"] = ms
    figures |= {f"train_peak_mb_{mode}": mb for mode, (_, mb) in runs.items()}
    for other in ("e2e", "teacher"):
        name = "kd_over_e2e" if other == "e2e" else "student_over_teacher"
        figures[f"{name}_step_time"] = runs["student"][0] / runs[other][0]
        figures[f"{name}_peak_memory"] = runs["student"][1] / runs[other][1]
    figures |= {f"{mode}_inference_ms_per_batch": ms for mode, ms in inference.items()}
    figures["teacher_over_student_inference"] = inference["teacher"] / inference["student"]
    figures |= {f"estimate_hours_{mode}": estimate_hours(figures[f"train_images_per_s_{mode}"])
                for mode in runs}
    return figures


def record(args: argparse.Namespace, device: torch.device, figures: dict[str, float]) -> dict:
    """The JSON record: the figures, the paper's beside them, and what they were measured on and at."""
    cfg = configs(args.preset, args.teacher_masks)["teacher"]
    return {
        "preset": args.preset, "figures": figures, "paper_table_2": PAPER, "steps": args.steps,
        "warmup": args.warmup, "inference_repeats": args.inference_repeats,
        "teacher_masks": args.teacher_masks,
        "shapes": {"image_size": cfg.data.image_size, "batch_size": cfg.train.batch_size, "T": cfg.init.T,
                   "unet_depth": cfg.net.unet_depth, "unet_width": cfg.net.unet_width,
                   "precision": cfg.net.precision},
        "device": device_name(device), "device_type": device.type, "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "machine": f"{platform.node()} {platform.machine()}",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "estimate": "estimate_hours_* are ESTIMATES: the paper's 120 epochs x 469 steps of 64 images plus "
                    "30k validation images per epoch at a third of a step each, at the measured images/s",
    }
