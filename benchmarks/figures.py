"""The groups of measured figures, each a function of the group's settings returning its figures.

**Training steps**: speed and peak memory per configuration, the student's step time over an
E2E step, and the gain of prkd's glibc allocator settings.

Groups: ``train_steps`` (each variant alone in its own process, alternated), ``kd_time`` (the two steps called
in turn in each process), ``allocator`` (a process setting: separate processes, alternated).

**The backward pass** through the spectral initialization (``InitConfig.backward``): a learned-mask
teacher step with ``backward="recompute"`` against plain autograd through the T iterations (the same gradient;
see tests/test_spectral_init.py), and against the same step with masks and filter frozen (no backward through
the initialization at all: the floor of any backward scheme).

Groups: ``backward`` (peak memory and step time, each variant alone in its own process, alternated),
``backward_time`` (the time ratio, the two steps called in turn in each process).

**Forward passes** without a gradient, the compared variants called in turn in each process: the
spectral initialization against deepinv's and against its own FFTs, and teacher against student inference.

Groups: ``deepinv``, ``fft_floor``, ``inference``.
"""

from __future__ import annotations

from prkd.utils.arithmetic import ARITHMETICS, cpu_has_bfloat16, resolve_arithmetic
from prkd.utils.device import default_device
from shapes import GroupSettings, batch_size
from timed_variant import alternately, in_turn, run_in_fresh_process

MODES = ("teacher", "e2e", "random", "student")


def train_steps(run: GroupSettings) -> dict[str, float]:
    """``train_step_images_per_s_<mode>``, ``train_step_peak_mb_<mode>`` and ``kd_over_e2e_peak_memory``."""
    steps = alternately({mode: run.variant("step", mode=mode) for mode in MODES}, run.repeats)
    images = batch_size(run.preset)
    figures = {f"train_step_images_per_s_{mode}{run.suffix}": images / (r["ms"] / 1000) for mode,
               r in steps.items()}
    figures |= {f"train_step_peak_mb_{mode}{run.suffix}": r["peak_mb"] for mode, r in steps.items()}
    figures[f"kd_over_e2e_peak_memory{run.suffix}"] = steps["student"]["peak_mb"] / steps["e2e"]["peak_mb"]
    return figures


def kd_step_time(run: GroupSettings) -> dict[str, float]:
    """``kd_over_e2e_step_time``: a student step (cached teacher targets) over an E2E step."""
    kd = in_turn({mode: run.variant("step", mode=mode) for mode in ("student", "e2e")},
                 run.steps, run.repeats)
    return {f"kd_over_e2e_step_time{run.suffix}": kd["student/e2e"]}


def allocator_speedup(run: GroupSettings) -> dict[str, float]:
    """``allocator_speedup``: a teacher step with glibc's default malloc over the same with prkd's
    settings."""
    allocators = {"default": "default", "tuned": "tuned"}
    steps = alternately({a: run.variant("step", mode="teacher") for a in allocators}, run.repeats, allocators)
    return {f"allocator_speedup{run.suffix}": steps["default"]["ms"] / steps["tuned"]["ms"]}


BACKWARDS = ("recompute", "plain", "frozen")


def backward_memory_and_time(run: GroupSettings) -> dict[str, float]:
    """``backward_peak_mb_<b>``, ``backward_step_ms_<b>``, ``backward_memory_ratio`` (recompute over plain)
    and ``backward_memory_ratio_above_frozen``: (recompute - frozen) / (plain - frozen) peak memory, the share
    of the initialization's own backward memory that recomputation keeps."""
    steps = alternately({b: run.variant("step", mode="teacher", backward=b) for b in BACKWARDS}, run.repeats)
    figures = {}
    for b, r in steps.items():
        figures[f"backward_peak_mb_{b}{run.suffix}"] = r["peak_mb"]
        figures[f"backward_step_ms_{b}{run.suffix}"] = r["ms"]
    figures[f"backward_memory_ratio{run.suffix}"] = steps["recompute"]["peak_mb"] / steps["plain"]["peak_mb"]
    above = {b: steps[b]["peak_mb"] - steps["frozen"]["peak_mb"] for b in ("recompute", "plain")}
    figures[f"backward_memory_ratio_above_frozen{run.suffix}"] = above["recompute"] / above["plain"]
    return figures


def backward_time_ratio(run: GroupSettings) -> dict[str, float]:
    """``backward_time_ratio``: a recompute step's time over a plain step's."""
    both = in_turn({b: run.variant("step", mode="teacher", backward=b)
                    for b in ("recompute", "plain")}, run.steps,
                   run.repeats)
    return {f"backward_time_ratio{run.suffix}": both["recompute/plain"]}


def versus_deepinv(run: GroupSettings) -> dict[str, float]:
    """``init_vs_deepinv``: deepinv's ``spectral_methods`` time over prkd's initialization on prkd's CDP
    operator (identity filter, w = y, same start and T, no early stop); ``init_vs_deepinv_min_cosine``: the
    smallest per-image cosine similarity between the two results."""
    versus = in_turn({w: run.variant("deepinv", which=w) for w in ("deepinv", "prkd")},
                     run.steps, run.repeats)
    return {f"init_vs_deepinv{run.suffix}": versus["deepinv/prkd"],
            f"init_vs_deepinv_min_cosine{run.suffix}": versus["cosine_min"]}


def versus_fft_floor(run: GroupSettings) -> dict[str, float]:
    """``init_vs_fft_floor``: the initialization's time over that of its 2 L T FFTs alone;
    ``init_backward_vs_fft_floor``: a learned-mask initialization's forward and backward over its 4 L T
    FFTs."""
    kinds = ("init", "fft", "init_grad", "fft_grad")
    floor = in_turn({k: run.variant(k) for k in kinds}, run.steps, run.repeats)
    return {f"init_vs_fft_floor{run.suffix}": floor["init/fft"],
            f"init_backward_vs_fft_floor{run.suffix}": floor["init_grad/fft_grad"]}


def init_breakdown(run: GroupSettings) -> dict[str, float]:
    """``init_share_<part>``: where a forward of the initialization spends its time
    (``floors.init_breakdown``), profiled in a fresh process."""
    shares = run_in_fresh_process({**run.variant("init_breakdown"), "profile": True})
    return {f"init_share_{part}{run.suffix}": share for part, share in shares.items()}


def step_fraction_of_peak(run: GroupSettings) -> dict[str, float]:
    """``step_fraction_of_peak_<mode>``: a training step's counted FLOPs per second over the FLOP rate of a
    large conv2d in the arithmetic the step's recovery network uses (``prkd.utils.arithmetic``: float32 on a
    CPU, bfloat16 on CUDA); ``unet_fraction_of_peak`` the same for the U-Net alone;
    ``conv_peak_gflops_<arithmetic>`` the conv2d's rate in float32 and under bfloat16 autocast (on a CPU
    without bfloat16 units an emulation: ``machine``'s ``bfloat16_units`` says which). The conv2d in both
    arithmetics, every mode's step and the U-Net step are called in turn in one process (``floors``)"""
    variants = {**{f"conv {a}": run.variant("conv_peak", arithmetic=a) for a in ARITHMETICS},
                "unet": run.variant("unet_step"),
                **{mode: run.variant("peak_step", mode=mode) for mode in MODES}}
    measured = in_turn(variants, run.steps, run.repeats)
    rates = {a: measured[f"conv {a}.flops"] / measured[f"conv {a}"] for a in ARITHMETICS}
    peak = rates[resolve_arithmetic("auto", default_device())]  # what the steps (precision auto) use
    figures = {}
    for mode in MODES:
        rate = measured[f"{mode}.flops"] / measured[mode]
        figures[f"step_fraction_of_peak_{mode}{run.suffix}"] = rate / peak
        figures[f"step_gflop_{mode}{run.suffix}"] = measured[f"{mode}.flops"] / 1e9
    figures[f"unet_fraction_of_peak{run.suffix}"] = measured["unet.flops"] / measured["unet"] / peak
    figures |= {f"conv_peak_gflops_{a}{run.suffix}": rates[a] / 1e6 for a in ARITHMETICS}
    return figures


#: the targets of ``step_speedup_<mode>`` on the 2-core Intel Xeon with AMX (issue: training at this
#: processor's real limits); bench.py prints each beside its figure
SPEEDUP_TARGETS = {"step_speedup_e2e": 1.3, "step_speedup_teacher": 1.8, "step_speedup_teacher_96x96": 2.0}
#: the second shape of ``step_speedup``: 96 x 96 scenes (the paper's) with a depth-4, width-16 U-Net
LARGE_SHAPES = {"smoke": None,  # CI: the preset's own shapes only
                "default": dict(image_size=96, unet_depth=4, unet_width=16)}


def fastest_choices(mode: str) -> dict:
    """The fastest choices this code offers for a ``mode`` step here: bfloat16 where the device has it
    natively, and the truncated backward (K = 5) for the teacher only, the one mode whose truncated gradient
    keeps a cosine >= 0.99 with the exact one (docs/performance.md)."""
    fast = "bfloat16" if default_device().type == "cuda" or cpu_has_bfloat16() else "float32"
    cut = dict(backward="truncated", backward_iterations=5) if mode == "teacher" else {}
    return {"precision": fast, **cut}


def _shapes(preset: str) -> list[tuple[dict, str]]:
    """(shape overrides, figure suffix): the preset's own shapes, and ``LARGE_SHAPES``' where it has some."""
    large = LARGE_SHAPES.get(preset, LARGE_SHAPES["default"])
    size = large and large["image_size"]
    return [({}, "")] + ([(large, f"_{size}x{size}")] if large else [])


def step_speedup(run: GroupSettings) -> dict[str, float]:
    """``step_speedup_<mode>[_<N>x<N>]``: a training step in float32 with the plain backward over the same
    step with ``fastest_choices``, the two called in turn in each process, for e2e, student and teacher, at
    the preset's shapes and at ``LARGE_SHAPES``; ``speedup_uses_bfloat16`` is 1 where the fast step used
    it."""
    figures = {}
    for shapes, suffix in _shapes(run.preset):
        for mode in ("e2e", "student", "teacher"):
            exact = run.variant("step", mode=mode, precision="float32", backward="plain", overrides=shapes)
            fast = run.variant("step", mode=mode, overrides=shapes, **{"backward": "plain",
                                                                      **fastest_choices(mode)})
            both = in_turn({"exact": exact, "fast": fast}, run.steps, run.repeats)
            figures[f"step_speedup_{mode}{suffix}{run.suffix}"] = both["exact/fast"]
    figures[f"speedup_uses_bfloat16{run.suffix}"] = float(fastest_choices("e2e")["precision"] == "bfloat16")
    return figures


def truncated_backward(run: GroupSettings) -> dict[str, float]:
    """``truncated_cosine_<phi|psi>_L<L>[_<N>x<N>]``: the cosine between the truncated gradient (K = 5) and
    the exact one of the masks and the filter, through a task loss of the whole system on fixed inputs;
    ``truncated_init_speedup_L<L>[...]``: the initialization's forward and backward with the plain backward
    over the truncated one, called in turn in one process; for L = 1 and the preset's L_t, at the preset's
    shapes and at ``LARGE_SHAPES``."""
    figures = {}
    for shapes, suffix in _shapes(run.preset):
        for L in sorted({1, run.L}):
            spec = dict(overrides=shapes, L=L)
            both = in_turn({"plain": {**run.variant("init_grad", backward="plain"), **spec},
                            "cut": {**run.variant("init_grad", backward="truncated", backward_iterations=5),
                                    **spec}}, run.steps, run.repeats)
            name = f"L{L}{suffix}{run.suffix}"
            figures[f"truncated_cosine_phi_{name}"] = both["cut.cosine_phi"]
            figures[f"truncated_cosine_psi_{name}"] = both["cut.cosine_psi"]
            figures[f"truncated_init_speedup_{name}"] = both["plain/cut"]
    return figures


def compile_speedup(run: GroupSettings) -> dict[str, float]:
    """``compile_speedup_<what>``: eager time over ``torch.compile``'s (CPU inductor), in turn in one process,
    for the U-Net's forward and backward and for the initialization's forward (opt-in: compiling takes
    minutes)."""
    figures = {}
    for what in ("unet", "init"):
        variants = {c: run.variant("compiled", what=what, compile=c == "compiled")
                    for c in ("eager", "compiled")}
        both = in_turn(variants, run.steps, run.repeats)
        figures[f"compile_speedup_{what}{run.suffix}"] = both["eager/compiled"]
    return figures


def inference(run: GroupSettings) -> dict[str, float]:
    """``teacher_over_student_inference`` (the L_t teacher over the single-snapshot student) and each one's
    ``<mode>_inference_ms_per_batch``."""
    infer = in_turn({m: run.variant("inference", mode=m) for m in ("teacher", "student")},
                    run.steps, run.repeats)
    return {f"teacher_over_student_inference{run.suffix}": infer["teacher/student"],
            f"teacher_inference_ms_per_batch{run.suffix}": infer["teacher"],
            f"student_inference_ms_per_batch{run.suffix}": infer["student"]}


ARCHS = ("unrolled", "unet")


def unrolled_costs(run: GroupSettings) -> dict[str, float]:
    """The unrolled reconstructor (``net.arch``) against the paper's U-Net, single-snapshot E2E at the
    preset's shapes: ``unrolled_over_unet_step_time`` and ``unrolled_over_unet_inference`` (the four calls
    in turn in each process), ``unrolled_over_unet_peak_memory`` and each one's
    ``train_step_peak_mb_e2e_<arch>`` (each alone in its own process, alternated)."""
    variants = {**{f"step {a}": run.variant("step", mode="e2e", arch=a) for a in ARCHS},
                **{f"inference {a}": run.variant("inference", mode="student", arch=a) for a in ARCHS}}
    measured = in_turn(variants, run.steps, run.repeats)
    alone = alternately({a: run.variant("step", mode="e2e", arch=a) for a in ARCHS}, run.repeats)
    return {f"unrolled_over_unet_step_time{run.suffix}": measured["step unrolled/step unet"],
            f"unrolled_over_unet_inference{run.suffix}": measured["inference unrolled/inference unet"],
            f"unrolled_over_unet_peak_memory{run.suffix}": alone["unrolled"]["peak_mb"]
            / alone["unet"]["peak_mb"],
            **{f"train_step_peak_mb_e2e_{a}{run.suffix}": alone[a]["peak_mb"] for a in ARCHS}}
