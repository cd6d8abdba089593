"""The GPU check: the paper's three training configurations at the paper's shapes on one device, timed and
weighed beside the paper's Table 2 (issue #22). It measures; it asserts nothing.

    bash benchmarks/gpu_check.sh                                   # paper shapes, cuda when present
    bash benchmarks/gpu_check.sh --preset paper --steps 50         # longer timing
    bash benchmarks/gpu_check.sh --preset smoke --device cpu --steps 2 --warmup 1   # what the test runs

What it trains and how it times and weighs it: ``gpu_check_measure.py``, imported only once the arguments
are known to be good (a bad one is refused at once, before torch is loaded).

Figures (one ``name: value`` line each; in the JSON under ``figures``):
  train_images_per_s_<mode>, train_step_ms_<mode>, train_peak_mb_<mode>   mode = teacher, e2e, student
  kd_over_e2e_step_time, kd_over_e2e_peak_memory            student over E2E (paper's Table 2: 1.12, 1.19)
  student_over_teacher_step_time, student_over_teacher_peak_memory   the paper's Table 2 columns are headed
                                                            "Teacher" and "Student": the same ratios that way
  teacher_inference_ms_per_batch, student_inference_ms_per_batch, teacher_over_student_inference  (76, 32 ms)
  estimate_hours_<mode>   an ESTIMATE, not a measurement: the paper's 120 epochs x 469 steps of 64 images
                          plus a validation forward pass over 30k images per epoch (a third of a training
                          step per image), at the measured images/s (the paper: 6.57 h and 7.36 h)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable

PRESETS = ("smoke", "quick", "paper")
MODES = ("teacher", "e2e", "student")


def _int_in(lo: int, hi: int | None = None, what: str = "") -> Callable[[str], int]:
    """An argparse type: an integer in [lo, hi] (``what`` says where the bound comes from)."""
    def parse(text: str) -> int:
        value = int(text)
        if value < lo or (hi is not None and value > hi):
            bound = f"at least {lo}" if hi is None else f"in [{lo}, {hi}]{what}"
            raise argparse.ArgumentTypeError(f"must be {bound}; got {value}")
        return value
    parse.__name__ = "int"  # argparse names the type in "invalid int value: 'x'"
    return parse


def _device_text(text: str) -> str:
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda or cuda:<index>; got {text!r}")
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, default="paper", help="shapes (default paper: 96x96)")
    parser.add_argument("--device", type=_device_text, default=None,
                        help="cpu, cuda or cuda:<index> (default cuda when available, else cpu)")
    parser.add_argument("--steps", type=_int_in(1), default=30, help="timed training steps per model (30)")
    parser.add_argument("--warmup", type=_int_in(0), default=3, help="untimed steps before them (default 3)")
    parser.add_argument("--teacher-masks", type=_int_in(1, 64, " (config field 'teacher_masks')"), default=9,
                        help="the teacher's L_t (default 9)")
    parser.add_argument("--inference-repeats", type=_int_in(1), default=10,
                        help="timed inference passes per model, after two warm-up passes (default 10)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default outputs/benchmarks/gpu-check-<preset>.json)")
    return parser.parse_args(argv)


def _table(record: dict) -> str:
    """The record's figures as a short human table, each beside the paper's (no line reads as ``name:
    value``)."""
    figures, paper, shapes = record["figures"], record["paper_table_2"], record["shapes"]
    n = shapes["image_size"]
    lines = [f"GPU check on {record['device']} -- preset {record['preset']} ({n}x{n}, batch "
             f"{shapes['batch_size']}, U-Net depth {shapes['unet_depth']} width {shapes['unet_width']}, L_t "
             f"= {record['teacher_masks']}), {record['steps']} timed steps after {record['warmup']} warm-up",
             f"{'model':8} {'images/s':>10} {'step ms':>10} {'peak MB':>10} {'infer ms':>9} {'paper ms':>9} "
             f"{'ESTIMATE h':>11} {'paper h':>8}"]
    for mode in MODES:
        paper_ms, paper_h = paper.get(f"{mode}_inference_ms_per_batch"), paper.get(f"estimate_hours_{mode}")
        lines.append(f"{mode:8} {figures[f'train_images_per_s_{mode}']:10.4g} "
                     f"{figures[f'train_step_ms_{mode}']:10.4g} {figures[f'train_peak_mb_{mode}']:10.4g} "
                     f"{_cell(figures.get(f'{mode}_inference_ms_per_batch'), 9)} {_cell(paper_ms, 9)} "
                     f"{_cell(figures[f'estimate_hours_{mode}'], 11)} {_cell(paper_h, 8)}")
    lines.append(f"{'ratio':34} {'measured':>9} {'paper Table 2':>14}")
    for name in ("kd_over_e2e_step_time", "kd_over_e2e_peak_memory", "student_over_teacher_step_time",
                 "student_over_teacher_peak_memory", "teacher_over_student_inference"):
        lines.append(f"{name:34} {figures[name]:9.3g} {paper[name]:14.3g}")
    lines.append("ESTIMATE h = the paper's 120 epochs x 469 steps + validation at the measured images/s, "
                 "not a measured training time; paper = Table 2 (RTX 4090), columns Teacher and Student")
    return "\n".join(lines)


def _cell(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.4g}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import gpu_check_measure as check  # torch and prkd, loaded once the arguments are known to be good
    from prkd.registry import open_registry
    from prkd.utils import atomic

    device = check.resolve_device(args.device)
    if isinstance(device, str):
        print(f"gpu_check.py: error: {device}", file=sys.stderr)
        return 2
    figures = check.measure(args, device)
    for name, value in figures.items():
        print(f"{name}: {value:.4g}", flush=True)
    record = check.record(args, device, figures)
    print(_table(record))
    out = args.out or open_registry().folder("benchmarks") / f"gpu-check-{args.preset}.json"
    atomic.write_json(out, record)
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
