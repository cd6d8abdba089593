"""Classical phase retrieval on the coded diffraction patterns of ``prkd.physics`` (no learning), as
baselines.

Scene model (``prkd.physics.scene.phase_object``): x = exp(j phase_range img) on an N x N support in the
top-left corner of an M x M field (M = pad_factor N), zero elsewhere; measured as y_l = |B_l x|^2, B_l = F
diag(e^{j phi_l}) (``CDPSensing.A`` / ``A_adjoint``; F orthonormal, so B^H B = sum_l B_l^H B_l = L I).

The projection methods iterate on the L sensor fields v = (v_1..v_L), the product-space form of Luke (2005,
Sec. 2):

* data set    M  = {v : |v_l| = sqrt(y_l)},      P_M(v) = sqrt(y) v / |v|   (sqrt(y) where v = 0);
* object set  S' = {B x : x in S},  S = {x : |x| = 1 on the support, 0 off it} (the phase-object constraint),
  P_S'(v) = B P_S(B^H v / L),  P_S(x) = x / |x| on the support (1 where x = 0), 0 off it. Exact: B / sqrt(L)
  is an isometry, so ||v - B x||^2 = ||v - B B^H v / L||^2 + L ||B^H v / L - x||^2.

R = 2P - I. An iteration's estimate is the scene u = P_S(B^H r / L) behind the P_S'(r) its update forms; the
objective is u's relative amplitude misfit || |B u| - sqrt(y) || / || sqrt(y) ||. No HIO: in the general form
of Bauschke, Combettes & Luke (2002) its fixed points satisfy P_S'(r) = beta P_M v, which the (non-conic)
unit-modulus set allows only at beta = 1, i.e. ``raar(beta=1)`` (measured: 18 dB at beta = 0.9, L = 4).

Start (``init``): the truncated spectral initialization of ``prkd.physics.spectral_init`` (T = 50, z0 seeded
with 0) with psi = the untrained 5 x 5 Gaussian (sigma 1) of every system (``"gaussian"``, default) or with
psi = identity (``"unfiltered"``, as Candes et al.; at small L its leading eigenvector is often one speckle
grain B_l^H e_k, not the scene); or a ``SpectralInit`` (``system.init``, e.g. a trained psi); or a complex
tensor (B, N, N). Solvers run without gradients on y's device, each image on its own: one whose iterate
changes by less than ``tol`` (relative) stops and is frozen, so no result depends on its batch.
The CDPs do not fix the global phase (|B e^{jc} x|^2 = |B x|^2); ``phase_image`` removes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from prkd.phase_images import phase_image
from prkd.physics.complex_ops import item_norms, modulus, squared_modulus
from prkd.physics.optics import CDPSensing
from prkd.physics.spectral_init import SpectralInit

__all__ = ["SolverResult", "gerchberg_saxton", "raar", "wirtinger_flow", "zero_phase", "phase_image"]

_EPS = 1e-30
_INIT_T = 50


@dataclass(frozen=True)
class SolverResult:
    """z: (B, N, N) complex estimate (up to a global phase); objective: (B, K + 1) the solver's own objective
    at the start and after each of the K iterations run (a stopped image repeats its last value); iterations:
    (B,) int64, iterations each image ran."""

    z: torch.Tensor
    objective: torch.Tensor
    iterations: torch.Tensor


def _require(name: str, value, kind, test, what: str) -> None:
    """Refuse ``value`` unless it is a ``kind`` (never a bool) passing ``test``; the message names the
    range."""
    if isinstance(value, bool) or not isinstance(value, kind) or not test(value):
        raise ValueError(f"{name} must be {what}; got {value!r}")


def _check(y: torch.Tensor, sensing: CDPSensing, size: int | None, iterations: int = 1,
           tol: float = 0.0) -> int:
    """Validate the common arguments; return the scene side N."""
    _require("iterations", iterations, int, lambda v: v >= 1, "an integer >= 1")
    _require("tol", tol, (int, float), lambda v: 0 <= v < math.inf,
             "a finite number >= 0 (0: run all iterations)")
    L, m = sensing.n_masks, sensing.phi.shape[-1]
    if y.dim() != 4 or tuple(y.shape[1:]) != (L, m, m):
        raise ValueError(f"y must be CDPs of shape (B, {L}, {m}, {m}) for this sensing operator; got "
                         f"{tuple(y.shape)}")
    if y.device != sensing.phi.device:
        raise ValueError(f"y is on {y.device} but the sensing operator on {sensing.phi.device}; move one of "
                         "them")
    n = m if size is None else size
    _require("size (the scene side N)", n, int, lambda v: 1 <= v <= m, f"an integer in [1, {m}]")
    return n


def _bcast(mask: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A (B,) tensor shaped to broadcast against t (B, ...)."""
    return mask.reshape(-1, *([1] * (t.dim() - 1)))


def _support(n: int, m: int, device: torch.device) -> torch.Tensor:
    """(M, M) real 0/1 indicator of the scene's N x N top-left support."""
    return F.pad(torch.ones(n, n, device=device), (0, m - n, 0, m - n))


def _scaled_phase(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """scale x / |x| element-wise (scale where x = 0): both projections' form."""
    mag = modulus(x)
    if bool(mag.min() == 0):  # exact zeros are rare: only then the slower selection
        return torch.where(mag > 0, x * (scale / mag.clamp_min(_EPS)), scale.to(x.dtype))
    return x * (scale / mag)


def _unit(x: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """P_S(x): x / |x| on the support (1 where x = 0), 0 off it. Scale-invariant: P_S(c x) = P_S(x), c > 0."""
    return _scaled_phase(x, support)


def _fit_data(v: torch.Tensor, amp: torch.Tensor) -> torch.Tensor:
    """P_M(v) = sqrt(y) v / |v| (sqrt(y) where v = 0)."""
    return _scaled_phase(v, amp)


def _misfit(bu: torch.Tensor, amp: torch.Tensor, amp_norm: torch.Tensor | None = None) -> torch.Tensor:
    """Relative amplitude misfit || |B u| - sqrt(y) || / || sqrt(y) ||, (B,) (``amp_norm``: the denominator,
    if already known)."""
    amp_norm = item_norms(amp).clamp_min(_EPS) if amp_norm is None else amp_norm
    return item_norms(modulus(bu) - amp) / amp_norm


def _start(y: torch.Tensor, sensing: CDPSensing, init, n: int) -> torch.Tensor:
    """Starting scene (B, M, M) complex, zero off the support (module docstring)."""
    b, _, m, _ = y.shape
    if isinstance(init, torch.Tensor):
        if init.shape != (b, n, n) or not init.is_complex():
            raise ValueError(f"init must be a complex tensor of shape ({b}, {n}, {n}); got "
                             f"{tuple(init.shape)}")
        z = torch.zeros(b, m, m, dtype=torch.promote_types(init.dtype, torch.complex64), device=y.device)
        z[:, :n, :n] = init.to(y.device)
        return z
    if isinstance(init, str) and init in ("gaussian", "unfiltered"):
        spectral = SpectralInit(size=m, T=_INIT_T, trainable=False,
                                generator=torch.Generator().manual_seed(0))
        if init == "unfiltered":
            spectral.filter.set_identity()
        init = spectral.to(y.device)
    elif not isinstance(init, SpectralInit):
        raise ValueError(f"init must be 'gaussian', 'unfiltered', a SpectralInit or a tensor; got {init!r}")
    return init(y, sensing) * _support(n, m, y.device)


def _run(name: str, step, state: tuple, f0: torch.Tensor, iterations: int, tol: float, progress: bool):
    """Drive ``step(state) -> (new state, estimate, objective)``; an image stops (state, estimate and
    objective frozen) once ||state[0]_new - state[0]|| / ||state[0]|| < tol. Returns (estimate, objective,
    iterations)."""
    active, count = torch.ones_like(f0, dtype=torch.bool), torch.zeros_like(f0, dtype=torch.long)
    history, estimate = [f0], None
    for _ in tqdm(range(iterations), desc=name, disable=not progress, leave=False):
        new, u, f = step(state)
        change = item_norms(new[0] - state[0]) / item_norms(state[0]).clamp_min(_EPS) if tol > 0 else None
        if bool(active.all()):  # nothing frozen yet: the selections below would copy the new values
            state, estimate = new, u
            history.append(f)
        else:
            state = tuple(torch.where(_bcast(active, s), s1, s) for s1, s in zip(new, state))
            estimate = torch.where(_bcast(active, u), u, estimate)
            history.append(torch.where(active, f, history[-1]))
        count += active
        if tol > 0:
            active = active & ~(change < tol)
            if not bool(active.any()):
                break
    return estimate, torch.stack(history, dim=1), count


def _projections(name, y, sensing, size, init, iterations, tol, progress, update) -> SolverResult:
    """Shared driver of ER and RAAR: ``update(v, P_M v, P_S') -> (v_new, u, B u)``."""
    n = _check(y, sensing, size, iterations, tol)
    support = _support(n, y.shape[-1], y.device)
    amp = y.clamp_min(0).sqrt()
    amp_norm = item_norms(amp).clamp_min(_EPS)
    forward, adjoint = sensing.frozen_operators()

    def project_object(v):
        u = _unit(adjoint(v), support)  # P_S(B^H v / L) = P_S(B^H v): P_S is scale-invariant
        return u, forward(u)

    def step(state):
        v, = state
        v_new, u, bu = update(v, _fit_data(v, amp), project_object)
        return (v_new,), u, _misfit(bu, amp, amp_norm)

    with torch.no_grad():
        v0 = forward(_unit(_start(y, sensing, init, n), support))
        u, objective, count = _run(name, step, (v0,), _misfit(v0, amp, amp_norm), iterations, tol, progress)
    return SolverResult(z=u[:, :n, :n], objective=objective, iterations=count)


def gerchberg_saxton(y: torch.Tensor, sensing: CDPSensing, *, size: int | None = None, init="gaussian",
                     iterations: int = 500, tol: float = 1e-6, progress: bool = False) -> SolverResult:
    """Error reduction (Gerchberg & Saxton 1972; Fienup 1982, Appl. Opt. 21:2758) with the phase-object
    constraint.

        v <- P_S'(P_M v),   i.e.   x <- P_S(B^H P_M(B x) / L)

    Alternating projections: the amplitude misfit never increases (Fienup 1982, Sec. II).

    y: (B, L, M, M) CDPs measured by ``sensing``; size: scene side N (top-left N x N of M x M; None: N = M);
    init: start (module docstring); iterations: budget, >= 1; tol: stop an image once its iterate's relative
    change is below tol (0: never); progress: show a tqdm bar.
    """
    def update(v, p, project_object):
        u, bu = project_object(p)
        return bu, u, bu

    return _projections("error reduction", y, sensing, size, init, iterations, tol, progress, update)


def raar(y: torch.Tensor, sensing: CDPSensing, *, beta: float = 0.9, size: int | None = None, init="gaussian",
         iterations: int = 500, tol: float = 1e-6, progress: bool = False) -> SolverResult:
    """Relaxed averaged alternating reflections (Luke 2005, Inverse Problems 21:37, Eq. 2.3).

        v <- beta/2 (R_S' R_M + I) v + (1 - beta) P_M v  =  beta (v + P_S'(2 P_M v - v)) + (1 - 2 beta) P_M v

    beta = 1 is Douglas-Rachford (averaged alternating reflections). Other arguments as ``gerchberg_saxton``;
    beta must lie in (0, 1].
    """
    _require("beta", beta, (int, float), lambda v: 0 < v <= 1, "a number in (0, 1]")

    def update(v, p, project_object):
        u, bu = project_object(2 * p - v)
        return torch.add(v, bu).mul_(beta).add_(p, alpha=1 - 2 * beta), u, bu

    return _projections("RAAR", y, sensing, size, init, iterations, tol, progress, update)


def wirtinger_flow(y: torch.Tensor, sensing: CDPSensing, *, step: float = 1.0, armijo: float = 1e-4,
                   max_backtracks: int = 30, size: int | None = None, init="gaussian", iterations: int = 1000,
                   tol: float = 1e-6, progress: bool = False) -> SolverResult:
    """Wirtinger flow (Candes, Li & Soltanolkotabi 2015, IEEE Trans. Inf. Theory 61:1985) with Armijo
    backtracking.

    Objective (relative intensity misfit, 1 at z = 0) and descent direction d = ||y||^2 / 2 df/dz* (Wirtinger
    gradient) restricted to the known support (projected gradient; the modulus is left free):

        f(z) = || |B z|^2 - y ||^2 / ||y||^2,     d = P_supp B^H((|B z|^2 - y) * B z),     z <- z - tau d

    tau: the largest of 2 tau_prev, tau_prev, tau_prev / 2, ... (at most ``max_backtracks`` halvings) with
    f(z - tau d) <= f(z) - armijo * 4 tau ||d||^2 / ||y||^2 (Armijo); if none qualifies, z is kept. So f never
    increases. First trial: the paper's mu / ||z0||^2, mu = ``step``, in these units (orthonormal F)
    tau = step M^2 / (L ||z0||^2), ||z0||^2 = sum(y) / L. B d is formed once per iteration (B is linear), so
    trials cost no transform. Start and other arguments as ``gerchberg_saxton`` (spectral: the paper's start).
    """
    n = _check(y, sensing, size, iterations, tol)
    _require("step", step, (int, float), lambda v: 0 < v < math.inf, "a finite number > 0")
    _require("armijo", armijo, (int, float), lambda v: 0 < v < 1, "a number in (0, 1)")
    _require("max_backtracks", max_backtracks, int, lambda v: v >= 1, "an integer >= 1")
    b, L, m, _ = y.shape
    support = _support(n, m, y.device)
    y2 = y.square().flatten(1).sum(dim=1).clamp_min(_EPS)
    forward, adjoint = sensing.frozen_operators()

    def misfit(residual):  # residual = |B z|^2 - y
        return residual.square().flatten(1).sum(dim=1) / y2

    def objective(bz):
        return misfit(squared_modulus(bz) - y)

    def wf_step(state):
        z, bz, tau = state
        residual = squared_modulus(bz) - y
        d = adjoint(residual * bz) * support
        bd = forward(d)
        f, slope = misfit(residual), 4 * item_norms(d).square() / y2
        tau, accepted, f_new = 2 * tau, torch.zeros_like(f, dtype=torch.bool), f
        for _ in range(max_backtracks + 1):
            f_try = objective(bz - _bcast(tau, bz) * bd)
            ok = ~accepted & (f_try <= f - armijo * tau * slope)
            f_new, accepted = torch.where(ok, f_try, f_new), accepted | ok
            if bool(accepted.all()):
                break
            tau = torch.where(accepted, tau, tau / 2)
        t = torch.where(accepted, tau, torch.zeros_like(tau))
        z_new = z - _bcast(t, z) * d
        return (z_new, bz - _bcast(t, bz) * bd, tau), z_new, f_new

    with torch.no_grad():
        z0 = _start(y, sensing, init, n)
        bz0 = forward(z0)
        tau0 = step * m * m / y.flatten(1).sum(dim=1).clamp_min(_EPS)  # step M^2 / (L ||z0||^2)
        z, objective_history, count = _run("Wirtinger flow", wf_step, (z0, bz0, tau0 / 2), objective(bz0),
                                           iterations, tol, progress)
    return SolverResult(z=z[:, :n, :n], objective=objective_history, iterations=count)


def zero_phase(y: torch.Tensor, sensing: CDPSensing, *, size: int | None = None) -> SolverResult:
    """The trivial estimate x = 1 on the support (phase 0): the floor. Objective (B, 1): the amplitude
    misfit."""
    n = _check(y, sensing, size)
    b, _, m, _ = y.shape
    with torch.no_grad():
        x = torch.ones(b, m, m, dtype=torch.complex64, device=y.device) * _support(n, m, y.device)
        f = _misfit(sensing.A(x), y.clamp_min(0).sqrt())
    return SolverResult(z=x[:, :n, :n], objective=f[:, None],
                        iterations=torch.zeros(b, dtype=torch.long, device=y.device))
