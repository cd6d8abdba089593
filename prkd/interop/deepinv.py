"""prkd's coded diffraction patterns as a deepinv physics, so that deepinv's solvers run on learned masks.

    from prkd.interop.deepinv import as_deepinv_physics, from_run, spectral_options
    physics = from_run(registry, run_id)        # a trained run's masks; or as_deepinv_physics(system)
    y = physics(x)                              # |B x|^2: prkd's CDPs of Eq. (1), noise-free
    x0 = physics.A_dagger(y)                    # deepinv's spectral method (lamb = 10 L); or any deepinv
                                                solver

Needs the optional extra ``pip install -e '.[deepinv]'`` (deepinv==0.5.0, the version tested). deepinv is
imported when a physics is built, never at import, so this module imports without it.

Conventions (those of deepinv's phase-retrieval operators, e.g. ``StructuredRandomPhaseRetrieval``):

* x is complex64 of shape (B, 1, n, n): one channel. prkd's scenes are (B, n, n): pass ``x[:, None]``, take
  ``x[:, 0]`` back.
* ``physics.B``, a ``deepinv.physics.LinearPhysics``, is prkd's linear part: B x = [F diag(e^{j phi_l}) P
  x]_l, complex (B, L, M, M), one channel per mask, F the orthonormal 2-D DFT (``CDPSensing.A``);
  ``physics.B.A_adjoint`` is P^H ``CDPSensing.A_adjoint``. ``physics(x) = physics.A(x) = |B x|^2``, real (B,
  L, M, M): the numbers of
  ``CDPSensing.forward`` and of ``PRSystem.measure`` with noise "none".
* M = pad_factor * N. ``domain="object"`` (default): x is the N x N object and P zero-pads it into the
  top-left corner of the M x M field, as ``prkd.physics.scene.phase_object`` does; ``domain="field"``: x is
  the whole M x M field and P = I (what prkd's Algorithm 1 iterates on). With pad_factor 1, every preset's
  default, they are the same.
* Every B_l is unitary, so B^H B = L I: ``physics.B.A_dagger(y)`` is B^H y / L exactly (no least-squares
  solve), and ``physics.B.A_adjoint_A(x)`` is L x.
* Noise: none. The noise model is deepinv's ``ZeroNoise`` whatever ``cfg.optics.noise`` says (prkd's per-image
  SNR and photon-count conventions are not translated). Set ``physics.noise_model`` to a deepinv noise model
  to add some -- never on ``physics.B``: deepinv's spectral method applies B as ``physics.B(x)``, noise
  included.
* Masks: a frozen copy taken when the physics is built (training the system further does not change it), or,
  with ``share=True``, the sensing module itself, so that gradients reach phi (e.g. through an unrolled
  model).

deepinv's ``spectral_methods`` is not prkd's ``SpectralInit`` by default: it weights by T(y) = max(1 - 1/y,
-5) of y / mean(y), adds lamb = 10 times the identity, starts from ``randn_like`` and may stop early; and it
normalises over the whole batch, then scales the batch to sqrt(sum y), which for L unitary snapshots is
sqrt(L) times the norm of the images. Its lamb = 10 assumes B^H B = I; prkd's B^H B = L I puts the spectrum
of B^H diag(T) B in [-5L, L], so for L > 2 a plain lamb = 10 lets a negative eigenvalue win (estimates
uncorrelated with x at L =
9).
``physics.A_dagger(y)`` therefore passes lamb = 10 L (spectrum in [5L, 11L]); pass ``lamb=10 * L`` yourself
when calling ``spectral_methods(y, physics)`` with its defaults. ``spectral_options(physics, system.init,
batch_size)`` makes it run prkd's unfiltered Algorithm 1 (psi = identity): prkd's weighting w(y), start z0
and T iterations, lamb = 0, no early stop. Each image's direction is then prkd's (cosine 1 up to float
rounding with ``domain="field"`` or pad_factor 1); only the scale and global phase differ (normalise each
image, then ``system.init.finish(z, y)`` applies prkd's).
"""

from __future__ import annotations

import copy
import functools
import os

import torch
import torch.nn.functional as F

from prkd.physics.optics import CDPSensing
from prkd.physics.spectral_init import SpectralInit
from prkd.physics.system import PRSystem
from prkd.registry import Registry, Run, open_registry

__all__ = ["INSTALL_HINT", "as_deepinv_physics", "from_run", "spectral_options"]

#: How to get the optional dependency, named in the ImportError.
INSTALL_HINT = "pip install -e '.[deepinv]'"
DOMAINS = ("object", "field")


def _require_deepinv():
    """The deepinv package, or an ImportError that says how to install it (checked on every build)."""
    try:
        import deepinv
    except ImportError as err:
        raise ImportError("prkd.interop.deepinv needs deepinv, an optional dependency of prkd: install it "
                          f"with {INSTALL_HINT} in the repository (or pip install deepinv==0.5.0)") from err
    return deepinv


@functools.cache
def _classes() -> dict:
    """``CDPLinearPhysics`` (a ``LinearPhysics``) and ``CDPPhaseRetrieval`` (a ``PhaseRetrieval``), defined
    on first use, since deepinv is optional."""
    from deepinv.optim.phase_retrieval import spectral_methods
    from deepinv.physics import LinearPhysics, PhaseRetrieval

    class CDPLinearPhysics(LinearPhysics):
        """prkd's linear part B x = [F diag(e^{j phi_l}) P x]_l as a deepinv LinearPhysics (module docstring).

        Args:
            sensing: the masks; held as a submodule (moves with ``.to``, in the state dict).
            image_size: side n of the signal x (B, 1, n, n); P zero-pads it into the top-left corner of the
            masks'
                M x M field (n = M: no padding).
        """

        def __init__(self, sensing: CDPSensing, *, image_size: int):
            field = sensing.phi.shape[-1]
            if not 1 <= image_size <= field:
                raise ValueError(f"image_size must be in [1, {field}] (the masks' side); got {image_size}")
            super().__init__(img_size=(1, image_size, image_size), device=sensing.phi.device)
            self.sensing = sensing
            self.image_size, self.field_size = image_size, field
            self.name = f"prkd CDP operator ({sensing.n_masks} masks, {image_size} -> {field} px)"

        @property
        def n_masks(self) -> int:
            return self.sensing.n_masks

        def A(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
            """(B, 1, n, n) complex -> (B, L, M, M) complex."""
            n, m = self.image_size, self.field_size
            if x.dim() != 4 or x.shape[1] != 1 or tuple(x.shape[-2:]) != (n, n):
                raise ValueError(f"x must have shape (B, 1, {n}, {n}) (deepinv's convention); got "
                                 f"{tuple(x.shape)}")
            x = x[:, 0]
            if m > n:
                x = F.pad(x, (0, m - n, 0, m - n))
            return self.sensing.A(x)

        def A_adjoint(self, y: torch.Tensor, **kwargs) -> torch.Tensor:
            """(B, L, M, M) -> (B, 1, n, n) complex."""
            shape = (self.n_masks, self.field_size, self.field_size)
            if y.dim() != 4 or tuple(y.shape[1:]) != shape:
                raise ValueError(f"y must have shape (B, {', '.join(map(str, shape))}); got {tuple(y.shape)}")
            n = self.image_size
            return self.sensing.A_adjoint(y)[:, None, :n, :n]

        def A_adjoint_A(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
            """B^H B x = L x: every B_l is unitary and P^H P = I."""
            return self.n_masks * x

        def A_dagger(self, y: torch.Tensor, **kwargs) -> torch.Tensor:
            """The pseudo-inverse B^+ y = B^H y / L, exact (B^H B = L I)."""
            return self.A_adjoint(y) / self.n_masks

    class CDPPhaseRetrieval(PhaseRetrieval):
        """deepinv's PhaseRetrieval over a ``CDPLinearPhysics``; ``A_dagger`` shifts by lamb = 10 L
        (docstring)."""

        def A_dagger(self, y: torch.Tensor, **kwargs) -> torch.Tensor:
            kwargs.setdefault("lamb", 10.0 * self.B.n_masks)
            return spectral_methods(y, self, **kwargs)

    return {"CDPLinearPhysics": CDPLinearPhysics, "CDPPhaseRetrieval": CDPPhaseRetrieval}


def __getattr__(name: str):
    """``CDPLinearPhysics`` and ``CDPPhaseRetrieval`` on demand (need deepinv), e.g. for ``isinstance``."""
    if name in ("CDPLinearPhysics", "CDPPhaseRetrieval"):
        _require_deepinv()
        return _classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def as_deepinv_physics(source: PRSystem | CDPSensing | Run, *, domain: str = "object",
                       image_size: int | None = None,
                       share: bool = False, device: torch.device | str | None = None):
    """A ``deepinv.physics.PhaseRetrieval`` over prkd's masks: y = |B x|^2, B = ``CDPLinearPhysics``.

    Args:
        source: a ``PRSystem`` (its ``sensing``; the object is ``cfg.data.image_size`` pixels wide), a
        ``CDPSensing``,
            or a complete registry ``Run`` (loaded with ``load_system(device)``).
        domain: ``"object"``: x is the N x N object, zero-padded into the masks' M x M field; ``"field"``: x
        is the
            whole M x M field (module docstring).
        image_size: the object's side N for a bare ``CDPSensing`` (default: the masks' side, no padding);
        with a
            system or run it comes from the config.
        share: use the sensing module itself (gradients reach phi; it stays on its device) instead of a
        frozen copy. device: where the copy goes (default: where the masks are); for a ``Run``, where it is
        loaded (default cpu,
            and then ``share`` may be combined with it).
    Returns:
        a ``deepinv.physics.PhaseRetrieval`` (``CDPPhaseRetrieval``) with ``B`` a ``CDPLinearPhysics`` and no
        noise.
    Raises:
        ImportError: deepinv is not installed (the message says ``pip install -e '.[deepinv]'``).
        ValueError: an unknown domain, an image_size given with a system, or ``share`` with a ``device``.
    """
    _require_deepinv()
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {', '.join(map(repr, DOMAINS))}; got {domain!r}")
    if isinstance(source, Run):
        source, device = source.load_system(device if device is not None else "cpu"), None
    if share and device is not None:
        raise ValueError("share=True uses the sensing module where it is: move the system instead of passing "
                         "device")
    if isinstance(source, PRSystem):
        if image_size is not None:
            raise ValueError("image_size comes from the system's config (cfg.data.image_size); "
                             "do not pass it")
        sensing, image_size = source.sensing, source.cfg.data.image_size
    elif isinstance(source, CDPSensing):
        sensing = source
    else:
        raise TypeError("source must be a PRSystem, a CDPSensing or a registry Run; got "
                        f"{type(source).__name__}")
    field = sensing.phi.shape[-1]
    image_size = field if domain == "field" or image_size is None else image_size
    if not share:
        sensing = copy.deepcopy(sensing).requires_grad_(False)
        if device is not None:
            sensing = sensing.to(device)
    classes = _classes()
    physics = classes["CDPPhaseRetrieval"](classes["CDPLinearPhysics"](sensing, image_size=image_size))
    physics.name = f"prkd CDP phase retrieval ({sensing.n_masks} masks, {domain} domain)"
    return physics


def from_run(registry: Registry | str | os.PathLike, run_id: str,
             device: torch.device | str = "cpu", **options):
    """The masks of a complete run of ``registry`` (a ``Registry`` or its root folder) as a deepinv physics.

    ``options`` go to ``as_deepinv_physics`` (``domain``, ``share``). Raises ``RunNotFoundError`` for an
    unknown or incomplete run, ImportError without deepinv.
    """
    _require_deepinv()  # before loading anything
    if not isinstance(registry, Registry):
        registry = open_registry(registry)
    return as_deepinv_physics(registry.find(run_id), device=device, **options)


def _prkd_weights(y: torch.Tensor, physics=None, *, weighting: str, truncation: float) -> torch.Tensor:
    """prkd's w(y) (``SpectralInit.weights``) in the form of deepinv's ``preprocessing(y, physics)``.

    deepinv passes y / mean(y) over the batch: the per-image truncation threshold scales with it, so the kept
    measurements are the same, and a common positive factor changes no iterate's direction.
    """
    if weighting == "y":
        return y
    mean = y.mean(dim=tuple(range(1, y.dim())), keepdim=True)
    return y * (y <= truncation * mean).to(y.dtype)


def spectral_options(physics, init: SpectralInit | PRSystem, batch_size: int) -> dict:
    """Keyword arguments of ``deepinv.optim.phase_retrieval.spectral_methods(y, physics, **options)`` that
    make it prkd's unfiltered Algorithm 1: the weighting w(y) and truncation of ``init``, its start z0
    (shared by every image, cropped to the object with ``domain="object"``), its T iterations, lamb = 0 and
    no early stop.

    With ``domain="field"`` (or pad_factor 1) the result points, image by image, where ``init`` with an
    identity filter does; with padding and ``domain="object"`` it is the same method restricted to the
    object's support.
    """
    if isinstance(init, PRSystem):
        init = init.init
    n = physics.B.image_size
    start = init.z0[:n, :n].to(physics.B.sensing.phi.device).expand(batch_size, 1, n, n).clone()
    return dict(x=start, n_iter=init.T, lamb=0.0, early_stop=False,
                preprocessing=functools.partial(_prkd_weights, weighting=init.weighting,
                                                truncation=init.truncation))
