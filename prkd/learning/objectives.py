"""Loss terms of Eqs. (3)-(7).

Each term is the paper's squared norm per scene averaged over the Q scenes of a batch, divided by the
number of elements per scene (a mean squared error). The division is a constant factor per term: it
leaves each term's minimiser unchanged and keeps the weights alpha, beta, sigma of Eq. (7) from being
dominated by how many pixels or feature values a term happens to have.

* ``task_loss``  -- L_task, Eq. (3): reconstructed vs true phase image.
* ``cdp_loss``   -- L_cdp, Eq. (5): teacher's CDPs averaged over its L_t snapshots vs the student's over L_s.
* ``feature_loss`` -- L_feat, Eq. (6): teacher's vs student's U-Net bottleneck features.
* ``objective``  -- alpha L_task + rho R(phi) + beta L_cdp + sigma L_feat, sigma = 1 - alpha - beta
  (Eq. 7); with alpha = 1, beta = 0 it is the E2E objective of Eq. (4).
R(phi) itself is ``prkd.physics.optics.mask_level_penalty`` (weighted by ``PRSystem.mask_penalty``).
"""

from __future__ import annotations

import torch

__all__ = ["CDP_LOSSES", "STUDENT_ALPHA", "STUDENT_BETA", "task_loss", "cdp_loss", "normalized_cdp_scale",
           "feature_loss", "kd_weights",
           "objective"]

#: Default KD weights of a student (the paper does not state its alpha and beta); sigma = 1 - alpha - beta.
STUDENT_ALPHA, STUDENT_BETA = 0.5, 0.25


def _per_scene_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return (a - b).square().flatten(1).mean(dim=1).mean()


def task_loss(x_hat: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """L_task (Eq. 3). x_hat, img: (Q, 1, N, N) phase images (phase / phase_range)."""
    return _per_scene_mse(x_hat, img)


#: Forms of L_cdp (``TrainConfig.cdp_loss``).
CDP_LOSSES = ("paper", "standardized", "normalized")


def _standardize(y: torch.Tensor) -> torch.Tensor:
    """Each image's pattern (Q, M, M) shifted to mean 0 and scaled to standard deviation 1."""
    flat = y.flatten(1)
    mean, std = flat.mean(dim=1, keepdim=True), flat.std(dim=1, keepdim=True, correction=0)
    return ((flat - mean) / std.clamp_min(1e-12)).view_as(y)


def cdp_loss(y_teacher: torch.Tensor, y_student: torch.Tensor, kind: str = "paper", scale: float | None = None
             ) -> torch.Tensor:
    """L_cdp (Eq. 5) between the CDPs of the same Q scenes: y_teacher (Q, L_t, M, M), or its mean over the
    snapshots (Q, 1, M, M) as ``TeacherTargets`` caches it; y_student (Q, L_s, M, M). Both are averaged over
    their snapshot axis (dim 1) first.

    * ``"paper"``: the MSE between the two mean CDPs, as Eq. (5) writes it.
    * ``"standardized"``: the MSE between the mean CDPs after each image's pattern is standardized (mean 0,
      standard deviation 1), which equals 2 (1 - r) with r the per-image Pearson correlation of the two
      patterns. With masks drawn U[0, 2 pi) the teacher's mean of L_t speckle patterns is nearly flat (its
      contrast is about 1 / sqrt(L_t)), so the paper's form is dominated by the student's own speckle
      contrast and mostly asks for a flatter pattern, whatever the scene; the standardized form is blind to
      contrast and offset and only asks the student's pattern to have the shape of the teacher's.
    * ``"normalized"``: the paper's form times ``scale``, a constant of the run chosen so that L_cdp equals
      L_task at step 0 (``normalized_cdp_scale``). With unit-modulus scenes and an orthonormal FFT the paper's
      form is O(1) while L_task is O(1e-2), so the paper's beta weighs a term some 50 times the task's; after
      the normalisation the share of the loss that L_cdp contributes at step 0 is beta / (alpha + beta) for
      sigma = 0 (exactly beta when alpha = 1 - beta), which is what a beta sweep means to vary.
    """
    t, s = y_teacher.mean(dim=1), y_student.mean(dim=1)
    if kind == "paper":
        return _per_scene_mse(t, s)
    if kind == "normalized":
        if scale is None or not scale > 0:
            raise ValueError("cdp_loss kind 'normalized' needs its run's positive scale "
                             f"(normalized_cdp_scale); got scale={scale!r}")
        return _per_scene_mse(t, s) * scale
    if kind == "standardized":
        return _per_scene_mse(_standardize(t), _standardize(s))
    raise ValueError(f"cdp_loss kind must be one of {', '.join(map(repr, CDP_LOSSES))}; got {kind!r}")


def normalized_cdp_scale(task_at_start: float, cdp_at_start: float) -> float:
    """The constant of the ``"normalized"`` L_cdp: L_task / L_cdp (paper form) of the untrained student on its
    first training batch, so that the normalized L_cdp equals L_task at step 0."""
    if not (task_at_start > 0 and cdp_at_start > 0):
        raise ValueError(f"the normalized L_cdp needs positive L_task and L_cdp at step 0; got "
                         f"L_task={task_at_start!r}, L_cdp={cdp_at_start!r}")
    return task_at_start / cdp_at_start


def feature_loss(f_teacher: torch.Tensor, f_student: torch.Tensor) -> torch.Tensor:
    """L_feat (Eq. 6). Bottleneck features (Q, C, h, w) of the teacher and the student U-Net."""
    return _per_scene_mse(f_teacher, f_student)


def kd_weights(alpha: float, beta: float) -> tuple[float, float, float]:
    """(alpha, beta, sigma) of Eq. (7), sigma = 1 - alpha - beta; refuses alpha < 0, beta < 0, alpha + beta >
    1."""
    if alpha < 0 or beta < 0 or alpha + beta > 1 + 1e-12:
        raise ValueError(f"KD weights must satisfy alpha >= 0, beta >= 0, alpha + beta <= 1 (Eq. 7, sigma = "
                         f"1 - alpha - beta >= 0); got alpha={alpha:g}, beta={beta:g}")
    return alpha, beta, max(0.0, 1.0 - alpha - beta)


def objective(*, task: torch.Tensor, penalty: torch.Tensor, alpha: float = 1.0, beta: float = 0.0,
              cdp: torch.Tensor | None = None, feat: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. (7) (Eq. (4) when alpha = 1, beta = 0): return the total and each unweighted term.

    The terms are detached 0-d tensors on the loss's device (no host synchronisation; the training loop
    reads them in batches for logging).

    ``penalty`` is rho R(phi) already weighted. ``cdp`` / ``feat`` may be None only when their weight is 0.
    """
    alpha, beta, sigma = kd_weights(alpha, beta)
    total = alpha * task + penalty
    terms = {"task": task.detach(), "penalty": penalty.detach()}
    for name, weight, value in (("cdp", beta, cdp), ("feat", sigma, feat)):
        if weight > 0:
            if value is None:
                raise ValueError(f"the KD objective needs L_{name} when its weight is {weight:g}")
            total = total + weight * value
            terms[name] = value.detach()
    return total, terms
