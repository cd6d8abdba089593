"""Filtered spectral initialization: Eq. (2) solved by the power iterations of Algorithm 1.

    z* = argmax_{||z|| = 1} z^H Gamma z,   Gamma = (1/m) sum_l B_l^H diag(w(y_l)) B_l,   m = L n

Gamma is never formed: ``Gamma z`` costs one FFT and one inverse FFT per snapshot. It is the sensing
operator's ``A_adjoint(w * A(z))``, computed by ``prkd.physics.power_step.weighted_projection`` with the
masks, the weights and every constant prepared once per initialization, so that an iteration costs little
more than its FFTs, forward and backward. Each iteration filters and normalises (Algorithm 1, lines 5-6):

    z <- G_psi(Gamma z),   z <- z / ||z||

where G_psi is a learnable k x k low-pass filter applied to the real and imaginary parts alike
(initialised as a normalised Gaussian). Weighting w(y) (documented choice):

* ``"truncated"`` (default): w(y) = y * 1[y <= tau * mean(y)], the truncated spectral initialization
  of Chen & Candes [17] also used by the authors' learnable filtered initialization [2]; the few very
  large measurements, which otherwise dominate Gamma, are dropped.
* ``"y"``: w(y) = y.

After T iterations the unit vector is scaled to the norm estimated from the data,
||x||^2 = (1/L) sum_{l,i} y_{l,i} (exact for noise-free CDPs, since every B_l is unitary), and its
global phase -- which the CDPs cannot determine, |B(e^{jc} x)|^2 = |B x|^2 -- is fixed by the
convention sum_i z_i real and positive, so the recovery network always sees the same orientation.
The random start z0 is drawn once from the seed and shared by every image, so an image's estimate
does not depend on the other images of its batch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from prkd.physics.optics import CDPSensing
from prkd.physics.power_step import weighted_projection
from prkd.utils.kernels import gaussian_kernel

__all__ = ["LowPassFilter", "SpectralInit"]

_EPS = 1e-12


def _norm(z: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of each complex image (B, N, N) -> (B,); faster on the CPU than
    ``linalg.vector_norm``."""
    return torch.view_as_real(z).square().sum(dim=(1, 2, 3)).sqrt()


class LowPassFilter(nn.Module):
    """G_psi: a k x k real filter psi applied to the real and imaginary parts ("same" size, zero border).

    Args:
        size: k, odd.
        sigma: std of the initial Gaussian, pixels.
        trainable: whether psi receives gradients.
    """

    def __init__(self, *, size: int, sigma: float, trainable: bool = True):
        super().__init__()
        self.psi = nn.Parameter(gaussian_kernel(size, sigma), requires_grad=trainable)

    def set_identity(self) -> None:
        """Make G_psi the identity (a centred delta), e.g. to study the unfiltered initialization."""
        with torch.no_grad():
            self.psi.zero_()
            c = self.psi.shape[-1] // 2
            self.psi[c, c] = 1.0

    def spectrum(self, shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
        """The DFT of the flipped psi on the zero-padded grid of ``forward`` for images of ``shape``
        (computed once per initialization, not once per iteration)."""
        k = self.psi.shape[-1]
        grid = (shape[0] + k - 1, shape[1] + k - 1)
        return torch.fft.fft2(self.psi.flip(0, 1).to(dtype), s=grid)

    def forward(self, z: torch.Tensor, spectrum: torch.Tensor | None = None) -> torch.Tensor:
        """z: (B, N, N) complex -> (B, N, N) complex; ``spectrum``: ``self.spectrum(...)``, if already
        computed.

        The same result as ``conv2d(part, psi, padding=k // 2)`` on the real and imaginary parts, computed as
        one complex FFT product on a grid of N + k - 1 points (zero-padded, so nothing wraps around): on the
        CPU this is several times faster, forward and backward, than a convolution with one input channel.
        """
        n1, n2 = z.shape[-2:]
        c = self.psi.shape[-1] // 2
        if spectrum is None:
            spectrum = self.spectrum((n1, n2), z.real.dtype)
        full = torch.fft.fft2(z, s=spectrum.shape[-2:])
        graph = torch.is_grad_enabled() and (full.requires_grad or spectrum.requires_grad)
        full = torch.fft.ifft2(full * spectrum if graph else full.mul_(spectrum))
        return full[..., c:c + n1, c:c + n2]


class SpectralInit(nn.Module):
    """Algorithm 1 with a learnable filter. Differentiable with respect to phi (via ``sensing``) and psi.

    Args:
        size: side N of the (padded) scene.
        T: number of power iterations.
        filter_size, filter_sigma: the k x k Gaussian that initialises psi.
        weighting: ``"truncated"`` or ``"y"`` (module docstring).
        truncation: tau of the truncated weighting.
        trainable: whether psi receives gradients.
        backward: ``"plain"`` autograd through the T iterations, ``"recompute"``: store one iterate per
            iteration and recompute the rest in the backward pass (exact gradients, a fraction of the memory),
            or ``"truncated"``: the first T - ``backward_iterations`` iterations run without a graph and the
            gradient flows through the last ``backward_iterations`` only (an approximation: the start of the
            graphed iterations counts as a constant; close to the exact gradient where the iteration has
            converged, since the early iterations' share of it decays as (lambda_2 / lambda_1)^k). The same
            setting as ``InitConfig.backward``.
        backward_iterations: K of ``"truncated"``, 1 <= K <= T.
        generator: seeds the random start z0.
    """

    def __init__(self, *, size: int, T: int, filter_size: int = 5, filter_sigma: float = 1.0,
                 weighting: str = "truncated", truncation: float = 9.0, trainable: bool = True,
                 backward: str = "plain", backward_iterations: int = 5,
                 generator: torch.Generator | None = None):
        super().__init__()
        if weighting not in ("truncated", "y"):
            raise ValueError(f"weighting must be 'truncated' or 'y'; got {weighting!r}")
        if backward not in ("plain", "recompute", "truncated"):
            raise ValueError(f"backward must be 'plain', 'recompute' or 'truncated'; got {backward!r}")
        if backward == "truncated" and not 1 <= backward_iterations <= T:
            raise ValueError(f"backward_iterations must be in [1, T] = [1, {T}]; got {backward_iterations}")
        self.T, self.weighting, self.truncation = T, weighting, truncation
        #: "recompute": each iteration's intermediates are recomputed in the backward pass, not stored
        #: (exact).
        self.backward, self.backward_iterations = backward, backward_iterations
        self.filter = LowPassFilter(size=filter_size, sigma=filter_sigma, trainable=trainable)
        z0 = torch.randn(size, size, 2, generator=generator)
        self.register_buffer("z0", torch.view_as_complex(z0 / z0.norm()))

    def weights(self, y: torch.Tensor) -> torch.Tensor:
        """w(y) of Gamma, (B, L, N, N) -> (B, L, N, N)."""
        if self.weighting == "y":
            return y
        mean = y.mean(dim=(1, 2, 3), keepdim=True)
        return y * (y <= self.truncation * mean).to(y.dtype)

    def folded_weights(self, y: torch.Tensor) -> torch.Tensor:
        """w(y) / (L n^2), (B, L, N, N): Gamma's weights with the 1/m of Eq. (2) and the orthonormal DFT's two
        1/sqrt(n) folded in once, as a complex tensor of zero imaginary part (``prkd.physics.power_step``)."""
        b, L, n1, n2 = y.shape
        complex_dtype = torch.complex128 if y.dtype == torch.float64 else torch.complex64
        return (self.weights(y) * (1.0 / (L * (n1 * n2) ** 2))).to(complex_dtype)

    def gamma(self, z: torch.Tensor, y: torch.Tensor, sensing: CDPSensing, *,
              masks: torch.Tensor | None = None,
              weights: torch.Tensor | None = None) -> torch.Tensor:
        """Gamma z = (1/m) sum_l B_l^H (w(y_l) * B_l z), m = L n, without forming Gamma. z: (B, N, N) complex.

        The same as ``sensing.A_adjoint(w(y) / m * sensing.A(z))``, computed by ``weighted_projection`` with
        the DFT's scaling folded into the weights. ``masks`` (``sensing.masks()``) and ``weights``
        (``folded_weights(y)``) can be passed when already computed, as ``iterates`` does once for all T."""
        masks = sensing.masks() if masks is None else masks
        weights = self.folded_weights(y) if weights is None else weights
        return weighted_projection(z, masks, weights)

    def iterates(self, y: torch.Tensor, sensing: CDPSensing, T: int | None = None):
        """Yield the unit-norm iterate z^(t), t = 1..T (default ``self.T``), of Algorithm 1 (lines 5-6).

        What does not change between iterations is computed once: the masks e^{j phi}, the folded weights and
        the filter's spectrum."""
        b, L, n1, n2 = y.shape
        masks, weights = sensing.masks(), self.folded_weights(y)
        spectrum = self.filter.spectrum((n1, n2), y.dtype)
        z = self.z0.expand(b, n1, n2)

        def step(z: torch.Tensor, masks: torch.Tensor, weights: torch.Tensor,
                 spectrum: torch.Tensor) -> torch.Tensor:
            # G_psi(Gamma z)
            z = self.filter(self.gamma(z, y, sensing, masks=masks, weights=weights), spectrum)
            # normalization step
            return z / _norm(z).clamp_min(_EPS)[:, None, None]

        # backward = "recompute": keep only each iterate z^(t) (B x N x N) and recompute the iteration's
        # intermediates (B x L x N x N each) during the backward pass; the gradient is unchanged.
        graphed = torch.is_grad_enabled() and any(t.requires_grad for t in (masks, weights, spectrum))
        lean = self.backward == "recompute" and graphed
        T = self.T if T is None else T
        # backward = "truncated": the first T - K iterations build no graph (their iterate is a constant)
        free = max(T - self.backward_iterations, 0) if self.backward == "truncated" and graphed else 0
        for t in range(T):
            if t < free:
                with torch.no_grad():
                    z = step(z, masks.detach(), weights.detach(), spectrum.detach())
            elif lean:
                z = checkpoint(step, z, masks, weights, spectrum, use_reentrant=False)
            else:
                z = step(z, masks, weights, spectrum)
            yield z

    def finish(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scale a unit iterate to the norm estimated from y, and fix its global phase (module docstring)."""
        scale = torch.sqrt(y.sum(dim=(1, 2, 3)).clamp_min(0.0) / y.shape[1])
        s = z.sum(dim=(1, 2))
        unit_phase = s.conj() / s.abs().clamp_min(_EPS)
        return z * (scale * unit_phase)[:, None, None]

    def forward(self, y: torch.Tensor, sensing: CDPSensing) -> torch.Tensor:
        """Initial estimate z from CDPs.

        Args:
            y: (B, L, N, N) CDPs.
            sensing: the operator that produced them (its masks define B).
        Returns:
            z: (B, N, N) complex, ||z|| = estimated ||x||, global phase fixed (module docstring).
        """
        for z in self.iterates(y, sensing):
            pass
        return self.finish(z, y)
