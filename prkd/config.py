"""Experiment configuration: frozen dataclasses, named presets and a validating ``make()``.

One :class:`Config` describes one experiment completely. It groups five frozen sections
(data, optics, init, net, train); every field carries its allowed range, and the defaults are
the paper's values with the section that states them. Five presets scale the same experiment:

* ``smoke`` -- CI: a few seconds per notebook (16x16 images, a few hundred images).
* ``quick`` -- a 2-core laptop CPU: 32x32 images, 15-75 s per E2E model and 35-180 s per L_t = 9 teacher on
  the 2-core machines measured (README); the reproduction's 24 runs (``prkd.experiments.plans``).
* ``study`` -- the study of notebook 07 (``prkd.experiments.study``): quick's shapes trained four times
  longer.
* ``ladder`` -- the budget ladder (``prkd.experiments.ladder``): the study's shapes on the 30k training split,
  a budget in steps and a cosine learning-rate decay.
* ``paper`` -- Section 4.1 of the paper: 96x96, 30k/30k/10k split, 120 epochs, for a GPU.

The optics get their own learning rates (``mask_lr``, ``filter_lr``; docs/configuration.md, ``PRESETS``).

Build a config with ``make(preset, **overrides)``; overrides use the field names of any section
(they are unique), e.g. ``make("quick", n_masks=9, T=50)``. Anything unknown, mistyped or out of
range raises :class:`ConfigError` naming the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from prkd.config_checks import UNROLL_FIELDS, ConfigError, check_relations, check_value
from prkd.presets import PRESETS

__all__ = [
    "ConfigError",
    "DataConfig",
    "OpticsConfig",
    "InitConfig",
    "NetConfig",
    "TrainConfig",
    "Config",
    "PRESETS",
    "make",
    "flat_fields",
    "from_dict",
]


def _spec(default: Any, *, lo: float | None = None, hi: float | None = None,
          lo_open: bool = False, choices: tuple | None = None, doc: str = "") -> Any:
    """A dataclass field with its allowed range stored in ``metadata`` (checked by :func:`make`)."""
    return field(default=default,
                 metadata={"lo": lo, "hi": hi, "lo_open": lo_open, "choices": choices, "doc": doc})


@dataclass(frozen=True)
class DataConfig:
    """Fashion-MNIST scenes (Section 4.1)."""

    image_size: int = _spec(96, lo=8, hi=1024, doc="side N of the N x N scene, pixels")  # Sec. 4.1: 96x96
    n_train: int = _spec(30_000, lo=1, hi=30_000, doc="training images used")  # Sec. 4.1: 30k train
    n_val: int = _spec(30_000, lo=1, hi=30_000, doc="validation images used")  # Sec. 4.1: 30k validation
    n_test: int = _spec(10_000, lo=1, hi=10_000, doc="test images used")  # Sec. 4.1: 10k test
    split_seed: int = _spec(0, lo=0, hi=2**31 - 1, doc="seed of the fixed 30k/30k train/validation split")
    # Scene model (our choice, not stated in the paper): x = exp(j * phase_range * img), img in [0, 1].
    phase_range: float = _spec(math.pi, lo=0.0, hi=2 * math.pi, lo_open=True,
                               doc="phase excursion of the phase object, radians")
    pad_factor: int = _spec(1, lo=1, hi=4, doc="zero-padding (oversampling) factor of the scene; 1 = none")


@dataclass(frozen=True)
class OpticsConfig:
    """Coded diffraction patterns, Eq. (1)."""

    n_masks: int = _spec(1, lo=1, hi=64, doc="number of snapshots L (coded phase masks)")
    noise: str = _spec("none", choices=("none", "gaussian", "poisson"), doc="sensor noise model")
    snr_db: float = _spec(30.0, lo=-20.0, hi=120.0, doc="Gaussian noise: SNR of the CDPs, dB")
    photons: float = _spec(1000.0, lo=0.0, hi=1e12, lo_open=True,
                           doc="Poisson noise: mean photon count per detector pixel")
    # How phi starts (the paper does not say): U[0, 2 pi) (fully developed speckle) or N(0, std^2) (docs).
    mask_init: str = _spec("uniform", choices=("uniform", "normal"),
                           doc="distribution of the initial mask phases")
    mask_init_std: float = _spec(1.0, lo=0.0, hi=10.0, lo_open=True,
                                 doc="mask_init 'normal': standard deviation of the initial phases, radians")
    mask_levels: int = _spec(4, lo=2, hi=256, doc="fabrication levels K that R(phi) pulls toward")
    rho: float = _spec(0.0, lo=0.0, hi=1e6, doc="weight of the mask regularizer R(phi), Eq. (4)")


@dataclass(frozen=True)
class InitConfig:
    """Filtered spectral initialization, Eq. (2) and Algorithm 1."""

    T: int = _spec(25, lo=1, hi=10_000, doc="power iterations")  # Sec. 4.1: T = 25
    filter_size: int = _spec(5, lo=1, hi=31, doc="side k of the k x k low-pass filter psi (odd)")
    filter_sigma: float = _spec(1.0, lo=0.0, hi=100.0, lo_open=True,
                                doc="std of the Gaussian that initialises psi, pixels")
    weighting: str = _spec("truncated", choices=("truncated", "y"), doc="measurement weighting w(y) in Gamma")
    truncation: float = _spec(9.0, lo=0.0, hi=1e6, lo_open=True,
                              doc="truncated weighting keeps y <= truncation * mean(y)")
    backward: str = _spec("plain", choices=("plain", "recompute", "truncated"),
                          doc="gradient through the T iterations: plain autograd (fastest exact gradient "
                              "on a CPU), recompute (stores one iterate per iteration; same gradient, less "
                              "memory, more time) or truncated (the first T - backward_iterations iterations "
                              "without a graph, the gradient through the last backward_iterations only: an "
                              "approximation, docs/performance.md)")
    backward_iterations: int = _spec(5, lo=1, hi=10_000,
                                     doc="backward 'truncated': the last K power iterations the gradient "
                                         "flows through (K <= T)")


@dataclass(frozen=True)
class NetConfig:
    """The recovery U-Net D_theta (Section 4.1 uses the U-Net of Ronneberger et al.)."""

    unet_depth: int = _spec(5, lo=2, hi=7, doc="resolution levels (poolings = depth - 1)")
    unet_width: int = _spec(64, lo=1, hi=512, doc="channels of the first level (doubled per level)")
    arch: str = _spec("unet", choices=("unet", "unrolled"),
                      doc="the recovery network: the paper's U-Net on z, or an unrolled reconstructor whose "
                          "stages alternate data consistency on y with a small U-Net (prkd.nets.unrolled)")
    # defaults measured (benchmarks/unrolled_choice.py; docs/unrolled.md): one stage of width 16 was the best
    unroll_stages: int = _spec(1, lo=1, hi=16, doc="arch 'unrolled': stages K (projection + denoiser each)")
    unroll_width: int = _spec(16, lo=1, hi=512, doc="arch 'unrolled': channels of each stage's U-Net's first "
                                                    "level")
    precision: str = _spec("auto", choices=("auto", "float32", "bfloat16"),
                           doc="recovery network arithmetic (prkd.utils.arithmetic): auto = bfloat16 "
                               "autocast on CUDA, float32 on a CPU; bfloat16 = autocast on CUDA or on a CPU "
                               "with native bfloat16 units (AMX or AVX-512 BF16), refused elsewhere; float32 "
                               "= always. The optics, the initialization, the losses and the metrics stay "
                               "float32 / complex64")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation (Section 4.1) and the KD weights of Eq. (7)."""

    mode: str = _spec("e2e", choices=("teacher", "e2e", "random", "student"),
                      doc="configuration of Section 4.1")
    epochs: int = _spec(120, lo=1, hi=100_000)  # Sec. 4.1: 120 epochs
    # Sec. 4.1
    lr: float = _spec(5e-4, lo=0.0, hi=1.0, lo_open=True, doc="Adam learning rate of the U-Net theta")
    # A phase travels at most ~steps x mask_lr rad (the paper: 56k x 5e-4 = 28); short presets raise mask_lr.
    mask_lr: float = _spec(5e-4, lo=0.0, hi=1.0, lo_open=True,
                           doc="Adam learning rate of the mask phases phi")
    filter_lr: float = _spec(5e-4, lo=0.0, hi=1.0, lo_open=True,
                             doc="Adam learning rate of the initialization filter psi")
    batch_size: int = _spec(64, lo=1, hi=65_536)  # Sec. 4.1: 64 images
    # > 0: an epoch of that many steps drawn without replacement from a fresh permutation of the whole split
    steps_per_epoch: int = _spec(0, lo=0, hi=10_000_000,
                                 doc="Adam steps per epoch; 0 = n_train // batch_size")
    lr_schedule: str = _spec("constant", choices=("constant", "cosine"),
                             doc="learning rates over the run: constant (the paper's) or cosine decay to 0 "
                                 "at the last step (every parameter group alike)")
    # Eq. (7) weights; the E2E objective (Eq. 4) is the case alpha = 1, beta = 0 (sigma = 0).
    alpha: float = _spec(1.0, lo=0.0, hi=1.0, doc="weight of L_task, Eqs. (4) and (7)")
    beta: float = _spec(0.0, lo=0.0, hi=1.0, doc="weight of L_cdp, Eq. (7); sigma = 1 - alpha - beta")
    cdp_loss: str = _spec("paper", choices=("paper", "standardized", "normalized"),
                          doc="form of L_cdp (prkd.learning.objectives.cdp_loss): 'paper' = MSE of the mean "
                              "CDPs (Eq. 5); 'standardized' = MSE of the per-image standardized mean CDPs, 2 "
                              "(1 - r); 'normalized' = the paper's form scaled so that it equals L_task at "
                              "step 0")
    seed: int = _spec(0, lo=0, hi=2**31 - 1, doc="seeds masks, filter, weights, shuffling and noise")
    # The frozen teacher of mode 'student' is the 'teacher' run with these snapshots and seed.
    teacher_masks: int = _spec(9, lo=1, hi=64, doc="snapshots L_t of the student's teacher")
    teacher_seed: int = _spec(0, lo=0, hi=2**31 - 1, doc="seed of the student's teacher")
    teacher_backward: str = _spec("same", choices=("same", "plain", "recompute", "truncated"),
                                  doc="backward of the student's teacher (InitConfig.backward): same = the "
                                      "student's own, e.g. 'truncated' for a teacher trained with the cheap "
                                      "gradient while the student keeps the exact one")


@dataclass(frozen=True)
class Config:
    """One experiment. ``preset`` records which preset the values started from."""

    preset: str = "paper"
    data: DataConfig = field(default_factory=DataConfig)
    optics: OpticsConfig = field(default_factory=OpticsConfig)
    init: InitConfig = field(default_factory=InitConfig)
    net: NetConfig = field(default_factory=NetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        """Nested plain dict (JSON-ready)."""
        return dataclasses.asdict(self)

    @property
    def epoch_steps(self) -> int:
        """Adam steps per epoch: ``steps_per_epoch``, or a full pass in full batches (``n_train //
        batch``)."""
        t = self.train
        return t.steps_per_epoch or self.data.n_train // min(t.batch_size, self.data.n_train)

    @property
    def total_steps(self) -> int:
        """Adam steps of the whole run."""
        return self.train.epochs * self.epoch_steps

    @property
    def sigma(self) -> float:
        """Weight of L_feat in Eq. (7): sigma = 1 - alpha - beta."""
        return 1.0 - self.train.alpha - self.train.beta


_SECTIONS = {"data": DataConfig, "optics": OpticsConfig, "init": InitConfig, "net": NetConfig,
             "train": TrainConfig}

def flat_fields() -> dict[str, tuple[str, dataclasses.Field]]:
    """Map every field name to (section name, dataclass field). Names are unique across sections."""
    out: dict[str, tuple[str, dataclasses.Field]] = {}
    for section, cls in _SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f.name not in out, f"duplicate config field {f.name}"
            out[f.name] = (section, f)
    return out


def make(preset: str = "quick", **overrides: Any) -> Config:
    """Build a validated :class:`Config` from a preset and flat field overrides.

    Args:
        preset: one of ``PRESETS`` (``"smoke"``, ``"quick"``, ``"paper"``).
        **overrides: field names of any section, e.g. ``n_masks=9, T=50, alpha=0.5``.

    Raises:
        ConfigError: unknown preset or field, wrong type, or a value outside its allowed range.
    """
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ConfigError(f"config field 'preset' must be one of {', '.join(map(repr, PRESETS))}; "
                          f"got {preset!r}")
    fields = flat_fields()
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config field(s) {', '.join(map(repr, unknown))}; "
                          f"known fields: {', '.join(sorted(fields))}")
    values = {**PRESETS[preset], **overrides}
    per_section: dict[str, dict[str, Any]] = {s: {} for s in _SECTIONS}
    for name, value in values.items():
        section, f = fields[name]
        per_section[section][name] = check_value(name, f, value)
    for name, (section, f) in fields.items():  # defaults are checked too (a preset could break them)
        if name not in per_section[section]:
            check_value(name, f, f.default)
    cfg = Config(preset=preset, **{s: cls(**per_section[s]) for s, cls in _SECTIONS.items()})
    check_relations(cfg)
    return cfg


def from_dict(d: dict) -> Config:
    """Rebuild (and re-validate) a Config from :meth:`Config.to_dict` output."""
    d = dict(d)
    preset = d.pop("preset", "paper")
    flat = {k: v for section in _SECTIONS for k, v in d.get(section, {}).items()}
    if flat.get("arch", "unet") != "unrolled":  # meaningless to the U-Net; earlier runs stored other defaults
        for name in UNROLL_FIELDS:
            flat.pop(name, None)
    return make(preset, **flat)
