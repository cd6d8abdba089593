"""The L-stack at the heart of every power iteration, at the cost of its FFTs: the weighted projection

    P(z; m, w) = sum_l conj(m_l) * F^-1(w_l * F(m_l * z)),

with F and F^-1 the unscaled 2-D DFT and inverse DFT (no 1/n anywhere), m the complex masks e^{j phi}
(L, N, N), computed once per initialization, and w (B, L, N, N) real weights with every constant folded in.
With w = w(y) / (L n^2) it is exactly Gamma z of Eq. (2) (``SpectralInit.gamma``): the orthonormal DFT is
F / sqrt(n), and its two 1/sqrt(n) factors are folded into w once instead of scaling the stack twice per
iteration.

Why a hand-written backward (``_Projection``): autograd through the same expression keeps one graph node per
element-wise product and runs their backward one pass over the L-stack at a time. The backward here does
what the gradient needs and no more: two FFTs of the stack (F of m * g, F^-1 of w * that) and the products
that read them once, with the Wirtinger calculus of torch's complex autograd (the gradient of a real loss with
respect to a complex input is dL/d conj(input)):

    a = m z,  u = F a,  s = F^-1 (w u),  out = sum_l conj(m_l) s_l;  given g = dL/d conj(out):
    G = F(m g)                         (dL/d conj(w u): F is the adjoint of the unscaled F^-1)
    dL/dw  = conj(u) G                 (its real part, for the real-valued w of Gamma)
    H = F^-1(w G)                      (dL/d conj(a))
    dL/d conj(z) = sum_l conj(m_l) H_l
    dL/d conj(m) = sum_b conj(z) H + s conj(g)

Without a gradient (inference, evaluation, the random baseline) the products run in place on one buffer.
"""

from __future__ import annotations

import torch

__all__ = ["weighted_projection"]


def _project_in_place(z: torch.Tensor, m: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """P(z; m, w) with no graph: one (B, L, N, N) buffer, transformed and multiplied in place."""
    stack = torch.fft.fft2(m * z.unsqueeze(1))
    stack = torch.fft.ifft2(stack.mul_(w), norm="forward")
    return _sum(stack.mul_(m.conj_physical()), dim=1)


class _Projection(torch.autograd.Function):
    """P(z; m, w) with the backward of the module docstring; saves u = F(m z) and s = F^-1(w u)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, m: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        u = torch.fft.fft2(m * z.unsqueeze(1))
        s = u * w
        s = torch.fft.ifft2(s, norm="forward", out=s)
        ctx.save_for_backward(z, m, w, u, s)
        return _sum(s * m.conj_physical(), dim=1)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        z, m, w, u, s = ctx.saved_tensors
        need_z, need_m, need_w = ctx.needs_input_grad
        stack = torch.fft.fft2(m * g.unsqueeze(1))                          # G
        # conj(u) G; its real part is dL/dw
        grad_w = stack * u.conj() if need_w else None
        stack = torch.fft.ifft2(stack.mul_(w), norm="forward")              # H
        grad_z = _sum(stack * m.conj_physical(), dim=1) if need_z else None
        grad_m = None
        if need_m:
            grad_m = _sum(stack.mul_(z.conj_physical().unsqueeze(1)), dim=0)
            grad_m += _sum(s * g.conj_physical().unsqueeze(1), dim=0)
        return grad_z, grad_m, grad_w


def _sum(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``t.sum(dim)`` of a complex tensor, summed as its real view: on the CPU torch's complex sum over a
    leading dimension runs several times slower than the same sum of the real and imaginary parts."""
    return torch.view_as_complex(torch.view_as_real(t).sum(dim=dim))


def weighted_projection(z: torch.Tensor, m: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """P(z; m, w) = sum_l conj(m_l) F^-1(w_l F(m_l z)) (module docstring).

    Args:
        z: (B, N, N) complex images.
        m: (L, N, N) complex masks (unit modulus in use; any values are allowed).
        w: (B, L, N, N) weights, every constant already folded in, held as a complex tensor (real-valued in
            Gamma: ``SpectralInit.folded_weights`` converts them once per initialization, since a product of
            the complex stack with a real tensor converts that tensor again at every call).
    Returns:
        (B, N, N) complex. Differentiable in z, m and w; without a gradient it runs in place.
    """
    if torch.is_grad_enabled() and (z.requires_grad or m.requires_grad or w.requires_grad):
        return _Projection.apply(z, m, w)
    return _project_in_place(z, m, w)
