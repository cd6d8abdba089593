"""Speed and memory figures of prkd, printed as ``name: value`` lines and written as JSON.

    python benchmarks/bench.py --preset quick            # the quick shapes (32x32, L_t = 9, batch 64)
    python benchmarks/bench.py --preset paper --steps 2  # the paper shapes (96x96, L_t = 9 and 15, batch 64)
    python benchmarks/bench.py --preset paper --steps 3 --only kd_time backward_time   # some groups only
    python benchmarks/bench.py --preset paper --only-estimate     # counts and estimate only
    python benchmarks/bench.py --only machine                     # the machine alone (seconds)

Absolute speed and peak memory: each variant runs alone in a fresh process (so that its peak memory is its
own), the compared variants alternately (A B A B ...), and the median over repeats is reported. Peak memory
is everything a variant builds and runs (models, optimiser state, caches, the steps' temporaries), measured
by ``prkd.utils.memory.PeakMemory``: on a CPU the peak of glibc's bytes in use (sampled every millisecond)
over their amount before the variant was built, on a GPU the growth of ``torch.cuda.max_memory_allocated``.
Time ratios: the compared variants are built in one process and called in turn, step by step, after a
warm-up each; the ratio is taken within the process and its median over repeats (fresh processes)
reported, so that a shared machine's drifting speed affects both alike. The allocator ratio is the
exception: it is a process setting, so it compares separate processes. Nothing here is a test: it measures
and prints. With a preset that measures several L_t (paper), each measured figure's name ends in ``_L<L>``.

The modules beside this one: ``shapes`` (shapes per preset), ``variants`` (what each variant builds and
times), ``timed_variant`` (runs variants in fresh processes), ``figures`` (the groups of
measured figures), ``machine`` (the machine's facts and GEMM rates) and ``estimates`` (counted figures).

Groups (--only) and their figures:
  machine        gemm_gflops_1thread              float32 torch.mm of 1024 x 1024 matrices, GFLOP/s on one
                                                  thread
                 gemm_gflops_all_threads          the same on all of torch's threads; printed first, with the
                                                  text facts cpu_model, vector_extensions (avx512f avx2 avx
                                                  fma neon) and torch_threads (also in the JSON's
                                                  machine_facts);
                                                  --only machine prints them alone, without the counts below
  train_steps    train_step_images_per_s_<mode>   images per second of a whole training step, per
                                                  configuration
                 train_step_peak_mb_<mode>        its peak memory, MB
                 kd_over_e2e_peak_memory          student step (cached teacher targets) over an E2E step
  backward       backward_peak_mb_<b>,            a learned-mask teacher step's own peak memory (MB) and time
                 backward_step_ms_<b>             (ms), b = recompute, plain (InitConfig.backward), and frozen
                                                  (masks and filter fixed: no backward through the
                                                  initialization, the floor of any backward scheme)
                 backward_memory_ratio            recompute over plain peak memory (the same gradient; see
                                                  tests/test_spectral_init.py)
                 backward_memory_ratio_above_frozen  (recompute - frozen) / (plain - frozen) peak memory: the
                                                  share of the initialization's own backward memory kept
  kd_time        kd_over_e2e_step_time            student step over an E2E step, time
  backward_time  backward_time_ratio              recompute over plain step time
  deepinv        init_vs_deepinv                  time of deepinv's spectral_methods / prkd's initialization,
                                                  on prkd's CDP operator (identity filter, w = y, same start
                                                  and T, no early stop)
                 init_vs_deepinv_min_cosine       the smallest per-image cosine similarity of the two results
  fft_floor      init_vs_fft_floor                spectral initialization time / time of its 2 L T FFTs alone
                 init_backward_vs_fft_floor       a learned-mask initialization's forward and backward / its
                                                  4 L T FFTs (floors.py: the CDPs, phi and psi all need
                                                  gradients)
  init_breakdown init_share_<part>                share of the initialization's forward time: ffts (the
                                                  L-stack's), products (element-wise over the L-stack),
                                                  filter, norms, other (torch.profiler, floors.init_breakdown)
  peak           step_fraction_of_peak_<mode>     a training step's counted FLOPs per second (FlopCounterMode;
                                                  5 n log2 n per FFT of n points) over a large conv2d's rate
                                                  in the arithmetic the step uses, measured in turn in one
                                                  process
                 step_gflop_<mode>                the step's counted GFLOP
                 unet_fraction_of_peak            the same for the U-Net's forward and backward alone (the
                                                  floor of every step's fraction)
                 conv_peak_gflops_<a>             the reference conv2d's GFLOP/s, a = float32, bfloat16
                                                  (autocast; emulated where machine's bfloat16_units is none)
  speedup        step_speedup_<mode>[_96x96]      a step in float32 with the plain backward over the step with
                                                  the fastest choices (bfloat16 where native, the teacher's
                                                  truncated backward), mode = e2e, student, teacher, at the
                                                  preset's shapes and at 96 x 96 with a depth-4, width-16
                                                  U-Net (not at smoke); printed with its target; opt-in
                 speedup_uses_bfloat16            1 where the fast steps ran in bfloat16, 0 where not
  truncated      truncated_cosine_<phi|psi>_L<L>  the cosine of the truncated gradient (K = 5) with the exact
                 [_96x96]                         one of the masks phi and the filter psi, one task loss
                                                  through the whole system on fixed inputs, L = 1 and L_t
                 truncated_init_speedup_L<L>      the initialization's forward and backward, plain over
                                                  truncated, in turn in one process; opt-in
  compile        compile_speedup_<what>           eager over torch.compile (CPU inductor) time, what = unet
                                                  (forward and backward), init (forward); opt-in (not in the
                                                  default groups: compiling takes minutes)
  inference      teacher_over_student_inference   inference time of the L_t teacher over the student
                 <mode>_inference_ms_per_batch    each one's ms per batch, mode = teacher, student
  unrolled       unrolled_over_unet_step_time     an E2E step with net.arch "unrolled" over the U-Net's (in
                                                  turn)
                 unrolled_over_unet_inference     the same for inference of a single-snapshot system
                 unrolled_over_unet_peak_memory   peak memory of the two E2E steps (each alone), and each
                                                  one's train_step_peak_mb_e2e_<arch>
  allocator      allocator_speedup                teacher step with glibc's default malloc over prkd's
                                                  settings (prkd/utils/allocator.py)
Always (counted, not timed):
  unet_gflop_per_image             U-Net forward FLOPs per image (counted by torch.utils.flop_counter)
  init_mb_per_image_L<L>           memory traffic of the initialization per image, forward (a count)
  estimate_gpu_hours_<mode>_L<L>   an ESTIMATE, not a measurement: one model of the preset trained on one GPU
                                   sustaining --gpu-tflops (U-Net) and --gpu-gbps (initialization,
                                   memory-bound): 3x forward per training image, 1x per validation image
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

import torch

import figures as groups
import machine
from estimates import counted_figures
from prkd.registry import open_registry
from prkd.utils import atomic
from prkd.utils.device import default_device
from shapes import SHAPES, GroupSettings, masks_measured

#: groups that run only when named with --only (compiling takes minutes; speedup and truncated time 96 x 96
#: steps)
OPT_IN = ("compile", "speedup", "truncated")

#: the groups of measured figures, in the order they run (``--only`` picks some; all but OPT_IN by default)
GROUPS = {
    "machine": machine.group,
    "train_steps": groups.train_steps,
    "backward": groups.backward_memory_and_time,
    "kd_time": groups.kd_step_time,
    "backward_time": groups.backward_time_ratio,
    "deepinv": groups.versus_deepinv,
    "fft_floor": groups.versus_fft_floor,
    "init_breakdown": groups.init_breakdown,
    "peak": groups.step_fraction_of_peak,
    "speedup": groups.step_speedup,
    "truncated": groups.truncated_backward,
    "compile": groups.compile_speedup,
    "inference": groups.inference,
    "unrolled": groups.unrolled_costs,
    "allocator": groups.allocator_speedup,
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(SHAPES), default="quick")
    parser.add_argument("--steps", type=_positive_int, default=3,
                        help="timed calls per measurement (default 3)")
    parser.add_argument("--repeats", type=_positive_int, default=3,
                        help="alternations of the compared variants (default 3)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default outputs/benchmarks/)")
    parser.add_argument("--gpu-tflops", type=float, default=80.0,
                        help="sustained bf16 TFLOP/s assumed for the GPU estimate (default 80)")
    parser.add_argument("--gpu-gbps", type=float, default=1000.0,
                        help="sustained memory bandwidth in GB/s assumed for the GPU estimate (default 1000)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--only", nargs="+", action="extend", choices=list(GROUPS), metavar="GROUP",
                       help="the groups to measure (default all): " + ", ".join(GROUPS))
    which.add_argument("--only-estimate", action="store_true", help="print the counts and the estimate only")
    args = parser.parse_args(argv)
    groups = [] if args.only_estimate else args.only or [g for g in GROUPS if g not in OPT_IN]
    args.groups = [g for g in GROUPS if g in groups]  # in run order, each once
    return args


def _record(args: argparse.Namespace, figures: dict[str, float]) -> dict:
    """The JSON record: the figures and the preconditions they were measured under."""
    device = default_device()
    return {
        "preset": args.preset, "figures": figures, "steps": args.steps, "repeats": args.repeats,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "machine_facts": machine.facts(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)",
        "torch": torch.__version__, "groups": args.groups,
        "allocator": os.environ.get("GLIBC_TUNABLES", "glibc defaults"),
        "estimate_assumptions": {"gpu_tflops": args.gpu_tflops, "gpu_gbps": args.gpu_gbps},
    }


def _print(figures: dict[str, float]) -> None:
    for name, value in figures.items():
        target = groups.SPEEDUP_TARGETS.get(name)
        print(f"{name}: {value:.4g}" + (f"  (target >= {target:g})" if target else ""), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "machine" in args.groups:  # the text facts (printed, and in the record's machine_facts), first
        for name, value in machine.facts().items():
            print(f"{name}: {value}", flush=True)
    figures = {}
    if args.groups != ["machine"]:  # --only machine: the machine's figures alone, without the counts
        figures = counted_figures(args.preset, masks_measured(args.preset), args.gpu_tflops, args.gpu_gbps)
    _print(figures)
    for L in masks_measured(args.preset) if args.groups else ():
        run = GroupSettings(preset=args.preset, L=L, steps=args.steps, repeats=args.repeats)
        for group in args.groups:
            measured = GROUPS[group](run)
            _print(measured)
            figures |= measured
    out = args.out or open_registry().folder("benchmarks") / f"bench-{args.preset}.json"
    atomic.write_json(out, _record(args, figures))
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
