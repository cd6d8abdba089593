"""What each benchmark variant builds, and the call of it that is timed.

A variant is a JSON spec (``shapes.GroupSettings.variant``) with a ``kind``:

* ``step``       one training step (``train_step``, with the optimiser training builds) of ``mode`` teacher /
                 e2e / random / student; ``backward`` "plain", "recompute" or "truncated" (with
                 ``backward_iterations``) sets ``InitConfig.backward``, "frozen" fixes masks and filter (no
                 backward through the initialization); ``precision`` sets ``NetConfig.precision``;
                 ``overrides`` other config fields (the shapes)
* ``inference``  one forward pass of ``mode`` teacher or student on a batch, no gradient
* ``deepinv``    the spectral initialization, ``which`` = "prkd" (ours) or "deepinv" (deepinv's
                 ``spectral_methods`` on prkd's own CDP operator: same masks, start, weighting y and T)
* ``init``       prkd's spectral initialization alone, no gradient
* ``fft``        the 2 L T FFTs of the initialization alone, no gradient (its floor)
* ``init_grad``, ``fft_grad``, ``conv_peak``, ``peak_step``, ``unet_step``, ``compiled``: see ``floors``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

import prkd
import prkd.data
import prkd.learning
import prkd.metrics
import floors
from prkd.learning.loop import train_step
from prkd.learning.optimizer import build_optimizer
from prkd.learning.teacher_targets import TeacherTargets
from shapes import batch_size, variant_config


@dataclass
class Variant:
    """The timed call of one built variant, and checks made once while building it (``cosine_min``)."""

    call: Callable[[], object]
    checks: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Inputs:
    """Random raw images (four batches), the first batch's indices, and the scenes of that batch."""

    images: torch.Tensor
    index: torch.Tensor
    scenes: torch.Tensor


def _inputs(preset: str, device: torch.device) -> _Inputs:
    b, n = batch_size(preset), prkd.make(preset).data.image_size
    images = torch.randint(0, 256, (4 * b, 28, 28), dtype=torch.uint8, device=device)
    return _Inputs(images, torch.arange(b, device=device), prkd.data.to_images(images[:b], n))


def _step_fields(spec: dict) -> dict:
    """The config fields a step variant sets: ``backward`` (not "frozen"), ``backward_iterations``, ``arch``,
    ``precision`` and the shape ``overrides`` (e.g. 96 x 96 with a width-16 U-Net)."""
    backward = spec.get("backward")
    extra = {"backward": backward} if backward in ("plain", "recompute", "truncated") else {}
    extra |= {"backward_iterations": spec["backward_iterations"]} if backward == "truncated" else {}
    extra |= {"arch": "unrolled"} if spec.get("arch") == "unrolled" else {}
    extra |= {"precision": spec["precision"]} if "precision" in spec else {}
    return extra | spec.get("overrides", {})


def _train_step(spec: dict, inputs: _Inputs, device: torch.device) -> Variant:
    cfg = variant_config(spec["preset"], spec["mode"], spec["L"], **_step_fields(spec))
    trainable = cfg.train.mode != "random" and spec.get("backward") != "frozen"
    system = prkd.PRSystem(cfg, trainable_optics=trainable).to(device)
    optimizer = build_optimizer(system, cfg.train)  # the optimiser training builds (its learning rates)
    targets = None
    if spec["mode"] == "student":
        teacher = prkd.PRSystem(prkd.learning.teacher_config(cfg)).to(device)
        targets = TeacherTargets(teacher, inputs.images, device=device)
    return Variant(lambda: train_step(system, optimizer, inputs.images, inputs.index, targets=targets))


def _inference(spec: dict, inputs: _Inputs, device: torch.device) -> Variant:
    arch = {"arch": "unrolled"} if spec.get("arch") == "unrolled" else {}
    system = prkd.PRSystem(variant_config(spec["preset"], spec["mode"], spec["L"], **arch)).to(device).eval()

    def call():
        with torch.inference_mode():
            system(inputs.scenes)
    return Variant(call)


def _versus_deepinv(spec: dict, inputs: _Inputs, device: torch.device) -> Variant:
    import deepinv
    from deepinv.optim.phase_retrieval import spectral_methods

    cfg = variant_config(spec["preset"], "teacher", spec["L"], weighting="y")
    system = prkd.PRSystem(cfg).to(device)
    system.init.filter.set_identity()
    sensing = system.sensing
    linear = deepinv.physics.LinearPhysics(A=sensing.A, A_adjoint=sensing.A_adjoint)
    physics = deepinv.physics.PhaseRetrieval(linear)
    with torch.no_grad():
        y = system.measure(inputs.scenes)
    b, n = inputs.scenes.shape[0], cfg.data.image_size
    z_start = system.init.z0.expand(b, n, n).clone()

    @torch.no_grad()
    def theirs():
        return spectral_methods(y, physics, x=z_start, n_iter=cfg.init.T, preprocessing=lambda y,
                                p: y, lamb=0.0,
                                early_stop=False)

    @torch.no_grad()
    def ours():
        return system.init(y, sensing)

    if spec["which"] == "deepinv":
        return Variant(theirs)
    # agreement, checked once: the smallest cosine similarity per image between the two results
    return Variant(ours, {"cosine_min": prkd.metrics.correlation(ours(), theirs()).min().item()})


def _init_or_its_ffts(spec: dict, inputs: _Inputs, device: torch.device) -> Variant:
    """``init`` / ``init_grad``: the learned-mask initialization, forward / forward and backward; ``fft`` /
    ``fft_grad``: the 2 L T / 4 L T FFTs of the L-stack that they need (``floors``)."""
    cfg = variant_config(spec["preset"], "teacher", spec["L"], **_step_fields(spec))
    system = prkd.PRSystem(cfg).to(device)
    if spec["kind"] == "init_grad":
        checks, scenes = {}, prkd.data.to_images(inputs.images[inputs.index], cfg.data.image_size)
        if cfg.init.backward == "truncated":  # the same parameters with the exact gradient
            exact = prkd.PRSystem(variant_config(spec["preset"], "teacher", spec["L"],
                                                 **spec.get("overrides", {}))).to(device)
            checks = floors.gradient_cosines(exact, system, scenes)
        return Variant(floors.init_grad(system, scenes), checks)
    if spec["kind"] in ("fft", "fft_grad"):
        b, n = inputs.scenes.shape[0], cfg.data.image_size
        stack = torch.randn(b, spec["L"], n, n, dtype=torch.complex64, device=device)
        return Variant(floors.ffts(stack, cfg.init.T, passes=2 if spec["kind"] == "fft_grad" else 1))
    return Variant(floors.init_forward(system, inputs.scenes))


def _conv_peak(spec: dict, inputs: _Inputs, device: torch.device) -> Variant:
    call, flops = floors.conv_peak(device, spec.get("arithmetic", "float32"))
    return Variant(call, {"flops": flops})


def _unet_or_compiled(spec: dict, inputs: _Inputs, device: torch.device) -> Variant:
    """``unet_step`` (with its FLOPs) and ``compiled`` (``floors``)."""
    system = prkd.PRSystem(variant_config(spec["preset"], "e2e", 1)).to(device)
    if spec["kind"] == "unet_step":
        call = floors.unet_step(system, inputs.scenes)
        return Variant(call, {"flops": floors.peak_step_flops(call)})
    build_call = floors.unet_step if spec["what"] == "unet" else floors.init_forward
    return Variant(build_call(system, inputs.scenes, compile_it=spec["compile"]))


def _peak_step(spec: dict, inputs: _Inputs, device: torch.device) -> Variant:
    """A training step of ``mode`` and its FLOPs (counted on one step while building it)."""
    step = _train_step({**spec, "kind": "step"}, inputs, device)
    return Variant(step.call, {"flops": floors.peak_step_flops(step.call)})


_BUILDERS = {"step": _train_step, "inference": _inference, "deepinv": _versus_deepinv,
             "init": _init_or_its_ffts,
             "fft": _init_or_its_ffts, "init_grad": _init_or_its_ffts, "fft_grad": _init_or_its_ffts,
             "conv_peak": _conv_peak, "peak_step": _peak_step, "unet_step": _unet_or_compiled,
             "compiled": _unet_or_compiled}


def init_breakdown_of(spec: dict, device: torch.device) -> dict[str, float]:
    """``floors.init_breakdown`` of the learned-mask teacher's initialization at the spec's shapes."""
    torch.manual_seed(0)
    inputs = _inputs(spec["preset"], device)
    system = prkd.PRSystem(variant_config(spec["preset"], "teacher", spec["L"])).to(device)
    return floors.init_breakdown(system, inputs.scenes)


def build(spec: dict, device: torch.device) -> Variant:
    """Build one variant (models, optimiser, data, caches) on ``device``, seeded, and return its timed
    call."""
    if spec["kind"] not in _BUILDERS:
        raise ValueError(f"unknown variant kind {spec['kind']!r}; known: {', '.join(_BUILDERS)}")
    torch.manual_seed(0)
    inputs = _inputs(spec["preset"], device)
    return _BUILDERS[spec["kind"]](spec, inputs, device)
