"""Speed and memory figures of prkd, printed as ``name: value`` lines and written as JSON.

    python benchmarks/bench.py --preset quick            # the quick shapes (32x32, L_t = 9, batch 64)
    python benchmarks/bench.py --preset paper --steps 2  # the paper shapes (96x96, L_t = 9 and 15, batch 64)
    python benchmarks/bench.py --preset paper --steps 3 --only kd_time,init_backward_time   # some groups only

Absolute speed and peak memory: each variant runs alone in a fresh process (so that its peak memory is its
own), the compared variants alternately (A B A B ...), and the median over repeats is reported. Peak memory
is everything a variant builds and runs (models, optimiser state, caches, the steps' temporaries), measured
by ``prkd.memory.PeakMemory``: on a CPU the peak of glibc's bytes in use (sampled every millisecond) over
their amount before the variant was built, on a GPU the growth of ``torch.cuda.max_memory_allocated``.
Time ratios: the compared variants are built in one process and called in turn, step by step, after a
warm-up each (``_measure_paired``); the ratio is taken within the process and its median over repeats
(fresh processes) reported, so that a shared machine's drifting speed affects both alike. The allocator
ratio is the exception: it is a process setting, so it compares separate processes.
Nothing here is a test: it measures and prints.

Figures:
  train_step_images_per_s_<mode>     images per second of a whole training step, per configuration
  train_step_peak_mb_<mode>          its peak memory, MB
  init_vs_deepinv                    time of deepinv's spectral_methods / prkd's initialization, on prkd's
                                     CDP operator (identity filter, w = y, same start and T, no early stop)
  init_vs_deepinv_min_cosine         the smallest per-image cosine similarity between the two results
  init_vs_fft_floor                  spectral initialization time / time of its 2 L T FFTs alone
  init_backward_memory_ratio         learned-mask step, init_backward = recompute over plain autograd
  init_backward_time_ratio           (same gradient; see tests/test_spectral_init.py)
  init_backward_peak_mb_<b>,         the steps' own peak memory (MB) and time (ms), b = recompute, plain, and
  init_backward_step_ms_<b>          frozen (the same teacher step with masks and filter fixed: no backward
                                     through the initialization, the floor of any backward scheme)
  init_backward_memory_ratio_above_frozen  (recompute - frozen) / (plain - frozen) peak memory: the share of
                                     the initialization's own backward memory that recomputation keeps
  kd_over_e2e_step_time              student step (cached teacher targets) over an E2E step
  kd_over_e2e_peak_memory
  teacher_over_student_inference     inference time of the L_t teacher over the single-snapshot student
  allocator_speedup                  teacher step with glibc's default malloc over prkd's settings
                                     (prkd/allocator.py)
  unet_gflop_per_image               U-Net forward FLOPs per image (counted by torch.utils.flop_counter)
  init_mb_per_image_L<L>             memory traffic of the initialization per image, forward (a count)
  estimate_gpu_hours_<mode>_L<L>     an ESTIMATE, not a measurement: one model of the preset trained on one
                                     GPU sustaining --gpu-tflops (U-Net) and --gpu-gbps (initialization,
                                     memory-bound): 3x forward per training image, 1x per validation image
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import prkd
from prkd import atomic
from prkd.allocator import TUNABLES
from prkd.device import default_device
from prkd.distill import TeacherTargets
from prkd.memory import PeakMemory
from prkd.registry import open_registry
from prkd.train import train_step

SHAPES = {  # preset -> overrides giving the benchmark's shapes; L_t values measured
    "smoke": (dict(), (3,)),
    "quick": (dict(batch_size=64), (9,)),
    "paper": (dict(batch_size=64), (9, 15)),
}


#: what ``--only`` can pick: groups of figures measured together
GROUPS = ("train_steps", "init_backward", "kd_time", "init_backward_time", "deepinv", "fft_floor", "inference", "allocator")


def _config(preset: str, mode: str, L: int, **extra) -> prkd.Config:
    overrides, _ = SHAPES[preset]
    kw = dict(alpha=0.5, beta=0.25, teacher_masks=L) if mode == "student" else {}
    return prkd.make(preset, mode=mode, n_masks=L if mode == "teacher" else 1, **overrides, **kw, **extra)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build(spec: dict, device: torch.device):
    """Build one variant (models, optimiser, data, caches) and return the call that is timed."""
    torch.manual_seed(0)
    kind, preset, L = spec["kind"], spec["preset"], spec["L"]
    b = _batch(preset)
    n = prkd.make(preset).data.image_size
    images = torch.randint(0, 256, (4 * b, 28, 28), dtype=torch.uint8, device=device)
    index = torch.arange(b, device=device)
    if kind in ("step", "init_backward"):
        mode = spec["mode"]
        backward = spec.get("backward")  # init_backward: "plain", "recompute" or "frozen" (masks and filter fixed)
        extra = {"backward": backward} if backward in ("plain", "recompute") else {}
        cfg = _config(preset, "teacher" if kind == "init_backward" else mode, L, **extra)
        trainable = cfg.train.mode != "random" and backward != "frozen"
        system = prkd.PRSystem(cfg, trainable_optics=trainable).to(device)
        optimizer = torch.optim.Adam([p for p in system.parameters() if p.requires_grad], lr=1e-4)
        targets = None
        if mode == "student":
            teacher = prkd.PRSystem(prkd.train.teacher_config(cfg)).to(device)
            targets = TeacherTargets(teacher, images, device=device)

        def call():
            train_step(system, optimizer, images, index, targets=targets)
    elif kind == "inference":
        cfg = _config(preset, spec["mode"], L)
        system = prkd.PRSystem(cfg).to(device).eval()
        img = prkd.data.to_images(images[:b], n)

        def call():
            with torch.inference_mode():
                system(img)
    elif kind == "deepinv":
        # deepinv's spectral method on prkd's own CDP operator: same masks, start, weighting, T; no early stop.
        import deepinv
        from deepinv.optim.phase_retrieval import spectral_methods
        cfg = _config(preset, "teacher", L, weighting="y")
        system = prkd.PRSystem(cfg).to(device)
        system.init.filter.set_identity()
        sensing = system.sensing
        physics = deepinv.physics.PhaseRetrieval(deepinv.physics.LinearPhysics(
            A=sensing.A, A_adjoint=sensing.A_adjoint))
        with torch.no_grad():
            y = system.measure(prkd.data.to_images(images[:b], n))
        z_start = system.init.z0.expand(b, n, n).clone()

        def run_deepinv():
            return spectral_methods(y, physics, x=z_start, n_iter=cfg.init.T, preprocessing=lambda y, p: y, lamb=0.0,
                                    early_stop=False)

        def call():
            with torch.no_grad():
                if spec["which"] == "deepinv":
                    run_deepinv()
                else:
                    system.init(y, sensing)

        if spec["which"] == "prkd":  # agreement, checked once: cosine similarity per image
            with torch.no_grad():
                ours, theirs = system.init(y, sensing), run_deepinv()
            spec["cosine_min"] = prkd.metrics.correlation(ours, theirs).min().item()
    elif kind in ("init", "fft"):
        cfg = _config(preset, "teacher", L)
        system = prkd.PRSystem(cfg).to(device)
        with torch.no_grad():
            y = system.measure(prkd.data.to_images(images[:b], n))
        field = torch.randn(b, L, n, n, dtype=torch.complex64, device=device)

        def call():
            with torch.no_grad():
                if kind == "init":
                    system.init(y, system.sensing)
                else:
                    for _ in range(cfg.init.T):
                        torch.fft.ifft2(torch.fft.fft2(field, norm="ortho"), norm="ortho")
    else:
        raise ValueError(kind)
    return call


def _timed(call, device: torch.device) -> float:
    """Seconds of one call, the device synchronised."""
    start = time.perf_counter()
    call()
    _sync(device)
    return time.perf_counter() - start


def _measure(spec: dict) -> dict:
    """One variant in this process: ms per call (median over steps) and peak memory growth in MB."""
    device = default_device()
    memory = PeakMemory(device)  # everything the variant builds (models, optimiser state, caches) and runs
    call = _build(spec, device)
    _timed(call, device)  # warm-up (also allocates what every step reuses)
    times = [_timed(call, device) for _ in range(spec["steps"])]
    peak_mb = memory.mb()
    memory.close()
    return {"ms": 1000 * statistics.median(times), "peak_mb": peak_mb, "batch": _batch(spec["preset"]),
            "cosine_min": spec.get("cosine_min", float("nan"))}


def _measure_paired(spec: dict) -> dict:
    """Several variants built in this one process and called in turn (A B A B ...), each after a warm-up:
    the median ms per call of each. Slow drifts of a shared machine's speed then hit every variant alike,
    which separate processes minutes apart cannot ensure; time ratios are taken from here."""
    device = default_device()
    calls = {name: _build(v, device) for name, v in spec["variants"].items()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        _timed(call, device)
    for _ in range(spec["steps"]):
        for name, call in calls.items():
            times[name].append(_timed(call, device))
    out = {name: 1000 * statistics.median(t) for name, t in times.items()}
    cosines = [v["cosine_min"] for v in spec["variants"].values() if "cosine_min" in v]
    return {**out, **({"cosine_min": min(cosines)} if cosines else {})}


def _batch(preset: str) -> int:
    return SHAPES[preset][0].get("batch_size") or prkd.make(preset).train.batch_size


def unet_gflop_per_image(cfg: prkd.Config) -> float:
    """U-Net forward FLOPs per image, counted by torch's FlopCounterMode on meta tensors (no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    net = prkd.unet.UNet(depth=cfg.net.unet_depth, width=cfg.net.unet_width).to("meta")
    n = cfg.data.image_size
    with FlopCounterMode(display=False) as counter:
        net(torch.empty(1, 2, n, n, device="meta"))
    return counter.get_total_flops() / 1e9


#: complex64 field passes (a read or a write of one L x M x M stack) per power iteration of Algorithm 1:
#: mask product (r, w), FFT (r, w), weighting by w(y) (r, r of w, w), inverse FFT (r, w), conjugate mask
#: product and sum over L (r); the filter and the normalisation touch one M x M field and are left out.
_INIT_PASSES_PER_ITERATION = 10


def init_mb_per_image(cfg: prkd.Config) -> float:
    """Memory traffic of the initialization's forward per image, MB (FFTs and element-wise products are
    memory-bound on a GPU): passes x L x M^2 x 8 bytes x T."""
    m = cfg.data.image_size * cfg.data.pad_factor
    return _INIT_PASSES_PER_ITERATION * cfg.optics.n_masks * m * m * 8 * cfg.init.T / 1e6


def estimate_gpu_hours(cfg: prkd.Config, gpu_tflops: float, gpu_gbps: float) -> float:
    """ESTIMATE of one model's training time on one GPU: per epoch, 3 x forward cost per training image
    (forward + backward) and 1 x per validation image; U-Net at ``gpu_tflops`` sustained, initialization at
    ``gpu_gbps``. Data loading, the optimiser and kernel launches are left out; the random baseline (frozen
    optics, no backward through the initialization) is counted like a trained model, an upper bound."""
    d, t = cfg.data, cfg.train
    per_image_s = unet_gflop_per_image(cfg) / (gpu_tflops * 1e3) + init_mb_per_image(cfg) / (gpu_gbps * 1e3)
    return t.epochs * (3 * d.n_train + d.n_val) * per_image_s / 3600


def _run(spec: dict) -> dict:
    """``_measure`` in a fresh interpreter, so that each variant's peak memory is its own.

    ``spec["allocator"]``: "tuned" runs it with prkd's glibc settings, "default" without (else as inherited).
    """
    env = dict(os.environ)
    if spec.get("allocator") == "default":
        env.pop("GLIBC_TUNABLES", None)
    elif spec.get("allocator") == "tuned":
        env["GLIBC_TUNABLES"] = TUNABLES
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                         env=env)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {spec} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _paired(specs: dict[str, dict], steps: int, repeats: int) -> dict[str, float]:
    """``repeats`` fresh processes, each calling the variants in turn (``_measure_paired``): the median over
    processes of each variant's ms and of each ``<name>/<other>`` ratio of ms within a process."""
    runs = [_run({"variants": specs, "steps": steps}) for _ in range(repeats)]
    out = {name: statistics.median(r[name] for r in runs) for name in specs}
    for a in specs:
        for b in specs:
            if a != b:
                out[f"{a}/{b}"] = statistics.median(r[a] / r[b] for r in runs)
    out["cosine_min"] = min(r.get("cosine_min", float("nan")) for r in runs)
    return out


def _alternate(specs: dict[str, dict], repeats: int) -> dict[str, dict]:
    """Run the named variants alternately ``repeats`` times; medians of ms and peak_mb per variant."""
    results: dict[str, list[dict]] = {name: [] for name in specs}
    for _ in range(repeats):
        for name, spec in specs.items():
            results[name].append(_run(spec))
    return {name: {key: statistics.median(r[key] for r in rs) for key in ("ms", "peak_mb", "batch", "cosine_min")}
            for name, rs in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(SHAPES), default="quick")
    parser.add_argument("--steps", type=int, default=3, help="timed calls per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="alternations of the compared variants")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default outputs/benchmarks/)")
    parser.add_argument("--gpu-tflops", type=float, default=80.0,
                        help="sustained bf16 TFLOP/s assumed for the GPU estimate (default 80)")
    parser.add_argument("--gpu-gbps", type=float, default=1000.0,
                        help="sustained memory bandwidth in GB/s assumed for the GPU estimate (default 1000)")
    parser.add_argument("--only-estimate", action="store_true", help="print the counts and the estimate only")
    parser.add_argument("--only", default=",".join(GROUPS),
                        help="comma-separated groups to measure (default all): " + ", ".join(GROUPS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    if not only <= set(GROUPS):
        parser.error(f"--only: unknown group(s) {', '.join(sorted(only - set(GROUPS)))}; allowed: {', '.join(GROUPS)}")
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(_measure_paired(spec) if "variants" in spec else _measure(spec)))
        return 0

    base = {"preset": args.preset, "steps": args.steps}
    figures: dict[str, float] = {}

    def report(name: str, value: float) -> None:
        figures[name] = value
        print(f"{name}: {value:.4g}", flush=True)

    report("unet_gflop_per_image", unet_gflop_per_image(prkd.make(args.preset)))
    for L in SHAPES[args.preset][1]:
        report(f"init_mb_per_image_L{L}", init_mb_per_image(prkd.make(args.preset, n_masks=L)))
    for mode, L in [("teacher", L) for L in SHAPES[args.preset][1]] + [("student", 1)]:
        report(f"estimate_gpu_hours_{mode}_L{L}",
               estimate_gpu_hours(prkd.make(args.preset, n_masks=L), args.gpu_tflops, args.gpu_gbps))
    for L in [] if args.only_estimate else SHAPES[args.preset][1]:
        suffix = "" if len(SHAPES[args.preset][1]) == 1 else f"_L{L}"
        if "train_steps" in only:  # absolute speed and peak memory: each variant alone in its own process
            train = _alternate({mode: {**base, "kind": "step", "mode": mode, "L": L}
                                for mode in ("teacher", "e2e", "random", "student")}, args.repeats)
            for mode, r in train.items():
                report(f"train_step_images_per_s_{mode}{suffix}", r["batch"] / (r["ms"] / 1000))
            for mode, r in train.items():
                report(f"train_step_peak_mb_{mode}{suffix}", r["peak_mb"])
            report(f"kd_over_e2e_peak_memory{suffix}", train["student"]["peak_mb"] / train["e2e"]["peak_mb"])
        if "init_backward" in only:
            lean = _alternate({b: {**base, "kind": "init_backward", "mode": "teacher", "backward": b, "L": L}
                               for b in ("recompute", "plain", "frozen")}, args.repeats)
            for b, r in lean.items():
                report(f"init_backward_peak_mb_{b}{suffix}", r["peak_mb"])
                report(f"init_backward_step_ms_{b}{suffix}", r["ms"])
            report(f"init_backward_memory_ratio{suffix}", lean["recompute"]["peak_mb"] / lean["plain"]["peak_mb"])
            # the initialization's own backward memory: each step's peak above the same step with frozen optics
            above = {b: lean[b]["peak_mb"] - lean["frozen"]["peak_mb"] for b in ("recompute", "plain")}
            report(f"init_backward_memory_ratio_above_frozen{suffix}", above["recompute"] / above["plain"])
        # time ratios: the compared variants called in turn within each process (_measure_paired)
        if "kd_time" in only:
            kd = _paired({m: {**base, "kind": "step", "mode": m, "L": L} for m in ("student", "e2e")}, args.steps,
                         args.repeats)
            report(f"kd_over_e2e_step_time{suffix}", kd["student/e2e"])
        if "init_backward_time" in only:
            both = _paired({b: {**base, "kind": "init_backward", "mode": "teacher", "backward": b, "L": L}
                            for b in ("recompute", "plain")}, args.steps, args.repeats)
            report(f"init_backward_time_ratio{suffix}", both["recompute/plain"])
        if "deepinv" in only:
            versus = _paired({w: {**base, "kind": "deepinv", "which": w, "L": L} for w in ("deepinv", "prkd")},
                             args.steps, args.repeats)
            report(f"init_vs_deepinv{suffix}", versus["deepinv/prkd"])
            report(f"init_vs_deepinv_min_cosine{suffix}", versus["cosine_min"])
        if "fft_floor" in only:
            floor = _paired({k: {**base, "kind": k, "L": L} for k in ("init", "fft")}, args.steps, args.repeats)
            report(f"init_vs_fft_floor{suffix}", floor["init/fft"])
        if "inference" in only:
            infer = _paired({m: {**base, "kind": "inference", "mode": m, "L": L} for m in ("teacher", "student")},
                            args.steps, args.repeats)
            report(f"teacher_over_student_inference{suffix}", infer["teacher/student"])
            report(f"teacher_inference_ms_per_batch{suffix}", infer["teacher"])
            report(f"student_inference_ms_per_batch{suffix}", infer["student"])
        if "allocator" in only:  # a process setting: separate processes, alternated
            alloc = _alternate({a: {**base, "kind": "step", "mode": "teacher", "L": L, "allocator": a}
                                for a in ("default", "tuned")}, args.repeats)
            report(f"allocator_speedup{suffix}", alloc["default"]["ms"] / alloc["tuned"]["ms"])

    device = default_device()
    record = {
        "preset": args.preset, "figures": figures, "steps": args.steps, "repeats": args.repeats,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "torch": torch.__version__, "groups": sorted(only), "allocator": os.environ.get("GLIBC_TUNABLES", "glibc defaults"),
        "estimate_assumptions": {"gpu_tflops": args.gpu_tflops, "gpu_gbps": args.gpu_gbps},
    }
    out = args.out or open_registry().folder("benchmarks") / f"bench-{args.preset}.json"
    atomic.write_json(out, record)
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
