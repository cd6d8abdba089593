"""Filtered spectral initialization (Eq. 2, Algorithm 1): it finds the scene, and gradients reach phi and
psi."""

import torch

import prkd
from prkd.data import to_images
from prkd.metrics import correlation
from prkd.physics.optics import CDPSensing
from prkd.physics.spectral_init import LowPassFilter, SpectralInit
from prkd.utils.kernels import gaussian_kernel


def _correlation_at(L, images, T=50):
    cfg = prkd.make("quick", n_masks=L, T=T)
    system = prkd.PRSystem(cfg)
    system.init.filter.set_identity()
    img = to_images(images, cfg.data.image_size)
    with torch.no_grad():
        z = system.initialize(system.measure(img))
    return correlation(z, system.scene(img)).mean().item()


def test_noise_free_estimate_correlates_with_the_scene_and_improves_with_L(test_images):
    corr = [_correlation_at(L, test_images) for L in (1, 3, 6, 9, 15)]
    assert corr[-1] >= 0.85, corr
    assert all(a < b for a, b in zip(corr, corr[1:])), corr


def test_power_iteration_matches_the_leading_eigenvector_of_the_dense_matrix():
    # Tiny case where Gamma can be formed densely: the power iteration converges to its leading eigenvector.
    gen = torch.Generator().manual_seed(0)
    n, L = 6, 4
    op = CDPSensing(n_masks=L, size=n, generator=gen).double()
    init = SpectralInit(size=n, T=500, weighting="y", generator=gen).double()
    init.filter.set_identity()
    x = torch.polar(torch.ones(1, n, n, dtype=torch.float64),
                    torch.rand(1, n, n, generator=gen, dtype=torch.float64))
    y = op(x)
    eye = torch.eye(n * n, dtype=torch.complex128).reshape(n * n, n, n)
    w = y / (L * n * n)
    gamma = torch.stack([op.A_adjoint(w * op.A(e[None]))[0].flatten() for e in eye], dim=1)
    torch.testing.assert_close(gamma, gamma.conj().T)  # Hermitian
    evals, evecs = torch.linalg.eigh(gamma)
    z = init(y, op)
    assert correlation(z, evecs[:, -1].reshape(1, n, n)).item() > 1 - 1e-6


def test_scale_is_the_norm_estimated_from_the_data_and_global_phase_is_fixed():
    gen = torch.Generator().manual_seed(0)
    op = CDPSensing(n_masks=3, size=16, generator=gen)
    init = SpectralInit(size=16, T=5, generator=gen)
    x = 2.5 * torch.polar(torch.ones(2, 16, 16), torch.rand(2, 16, 16, generator=gen))
    z = init(op(x), op)
    torch.testing.assert_close(z.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1), rtol=1e-4, atol=0)
    s = z.sum(dim=(1, 2))
    assert torch.all(s.imag.abs() < 1e-4 * s.abs()) and torch.all(s.real > 0)


def test_all_zero_measurement_gives_zero_not_nan():
    op = CDPSensing(n_masks=2, size=8)
    z = SpectralInit(size=8, T=3)(torch.zeros(2, 2, 8, 8), op)
    assert torch.isfinite(torch.view_as_real(z)).all() and z.abs().max() == 0


def test_gaussian_filter_is_a_normalised_low_pass():
    k = gaussian_kernel(5, 1.0)
    assert k.shape == (5, 5) and torch.isclose(k.sum(), torch.tensor(1.0))
    assert k[2, 2] == k.max() and torch.equal(k, k.T) and torch.equal(k, k.flip(0))
    f = LowPassFilter(size=5, sigma=1.0)
    z = torch.polar(torch.ones(1, 16, 16), torch.zeros(1, 16, 16))
    out = f(z)
    torch.testing.assert_close(out[:, 4:12, 4:12], z[:, 4:12, 4:12])  # a constant passes unchanged inside
    f.set_identity()
    w = torch.randn(1, 16, 16, dtype=torch.complex64)
    torch.testing.assert_close(f(w), w)


def test_gradients_reach_phi_and_psi(device):
    cfg = prkd.make("smoke", n_masks=2, T=5)
    system = prkd.PRSystem(cfg).to(device)
    img = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0)).to(device)
    z = system.initialize(system.measure(img))
    (z.real.square().sum() + z[:, :4, :4].imag.sum()).backward()
    for p in (system.sensing.phi, system.init.filter.psi):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


class _SenseAndInit(torch.nn.Module):
    """x -> z through the sensing operator and the initialization, for functional_call."""

    def __init__(self, op, init):
        super().__init__()
        self.op, self.init = op, init

    def forward(self, x):
        return self.init(self.op(x), self.op)


def test_gradcheck_through_sensing_and_initialization():
    gen = torch.Generator().manual_seed(0)
    n = 4
    pipeline = _SenseAndInit(CDPSensing(n_masks=2, size=n, generator=gen),
                             SpectralInit(size=n, T=3, filter_size=3, weighting="y", generator=gen)).double()
    x = torch.polar(torch.ones(1, n, n, dtype=torch.float64),
                    torch.rand(1, n, n, generator=gen, dtype=torch.float64))

    def z_of(phi, psi):
        z = torch.func.functional_call(pipeline, {"op.phi": phi, "init.filter.psi": psi}, (x,))
        return torch.view_as_real(z)

    phi = pipeline.op.phi.detach().clone().requires_grad_(True)
    psi = pipeline.init.filter.psi.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(z_of, (phi, psi), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_fft_filter_equals_a_zero_padded_convolution_of_both_parts():
    gen = torch.Generator().manual_seed(0)
    f = LowPassFilter(size=5, sigma=1.0)
    with torch.no_grad():
        f.psi.copy_(torch.randn(5, 5, generator=gen))  # asymmetric, so a flipped kernel would be caught
    z = torch.randn(3, 12, 12, dtype=torch.complex64, generator=gen)

    def conv(part):
        return torch.nn.functional.conv2d(part[:, None], f.psi[None, None], padding=2)[:, 0]

    torch.testing.assert_close(f(z), torch.complex(conv(z.real), conv(z.imag)), atol=1e-5, rtol=1e-5)


def test_gamma_is_hermitian_and_positive_semidefinite():
    gen = torch.Generator().manual_seed(3)
    op = CDPSensing(n_masks=3, size=8, generator=gen)
    init = SpectralInit(size=8, T=1, generator=gen)
    x = torch.polar(torch.ones(2, 8, 8), torch.rand(2, 8, 8, generator=gen))
    y = op(x)
    u, v = (torch.randn(2, 8, 8, dtype=torch.complex64, generator=gen) for _ in range(2))
    lhs = (init.gamma(u, y, op).conj() * v).sum()
    rhs = (u.conj() * init.gamma(v, y, op)).sum()
    assert abs(lhs - rhs) / abs(lhs) < 1e-5
    quad = (u.conj() * init.gamma(u, y, op)).sum(dim=(1, 2))
    assert torch.all(quad.real >= 0) and torch.all(quad.imag.abs() < 1e-5 * quad.real)


def test_forward_is_the_finished_last_iterate():
    gen = torch.Generator().manual_seed(4)
    op = CDPSensing(n_masks=2, size=8, generator=gen)
    init = SpectralInit(size=8, T=6, generator=gen)
    y = op(torch.polar(torch.ones(1, 8, 8), torch.rand(1, 8, 8, generator=gen)))
    iterates = list(init.iterates(y, op))
    assert len(iterates) == 6
    torch.testing.assert_close(init(y, op), init.finish(iterates[-1], y))


def test_recompute_backward_gives_the_plain_autograd_gradient():
    grads = {}
    for backward in ("recompute", "plain"):
        system = prkd.PRSystem(prkd.make("smoke", n_masks=3, T=6, backward=backward))
        assert system.init.backward == backward
        img = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
        z = system.initialize(system.measure(img))
        (z.real.square().sum() + z.imag[:, :5].sum()).backward()
        grads[backward] = [p.grad.clone() for p in (system.sensing.phi, system.init.filter.psi)]
    for lean_grad, plain_grad in zip(grads["recompute"], grads["plain"]):
        torch.testing.assert_close(lean_grad, plain_grad, rtol=1e-5, atol=1e-7)


def _reference_initialization(init: SpectralInit, y: torch.Tensor, op: CDPSensing) -> torch.Tensor:
    """Algorithm 1 written plainly, as prkd computed it before the fused power step: Gamma through the
    operator's own A and A_adjoint with the orthonormal DFT, the filter as a zero-padded conv2d of both
    parts, autograd through everything."""
    b, L, n1, n2 = y.shape
    w = init.weights(y) / (L * n1 * n2)
    psi = init.filter.psi[None, None]
    pad = psi.shape[-1] // 2

    def conv(part):
        return torch.nn.functional.conv2d(part[:, None], psi.to(part.dtype), padding=pad)[:, 0]

    z = init.z0.expand(b, n1, n2)
    for _ in range(init.T):
        g = op.A_adjoint(w * op.A(z))
        z = torch.complex(conv(g.real), conv(g.imag))
        z = z / torch.linalg.vector_norm(z, dim=(1, 2)).clamp_min(1e-12)[:, None, None]
    return init.finish(z, y)


def _learned_pipeline(L: int, seed: int = 0):
    system = prkd.PRSystem(prkd.make("smoke", n_masks=L, mode="teacher" if L > 1 else "e2e"))
    with torch.no_grad():  # a learned-looking filter and masks, so no symmetry hides a slip
        gen = torch.Generator().manual_seed(seed)
        system.init.filter.psi.add_(0.02 * torch.randn(5, 5, generator=gen))
    img = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(seed + 1))
    return system, img


def test_weighted_projection_is_the_operators_adjoint_of_weighted_forward():
    from prkd.physics.power_step import weighted_projection
    gen = torch.Generator().manual_seed(5)
    op = CDPSensing(n_masks=3, size=8, generator=gen)
    z = torch.randn(2, 8, 8, dtype=torch.complex64, generator=gen)
    w = torch.rand(2, 3, 8, 8, generator=gen)
    n = 64
    torch.testing.assert_close(weighted_projection(z, op.masks(), w / n), op.A_adjoint(w * op.A(z)),
                               atol=1e-6, rtol=1e-5)


def test_initialization_and_its_gradients_equal_the_plain_reference_on_fixed_inputs():
    for L in (1, 3):
        system, img = _learned_pipeline(L)
        results = {}
        for name, run in (("fused", lambda y: system.init(y, system.sensing)),
                          ("reference", lambda y: _reference_initialization(system.init, y, system.sensing))):
            system.zero_grad()
            z = run(system.measure(img))
            (z.real.square().sum() + (z.imag * torch.linspace(-1, 1, 16)).sum()).backward()
            results[name] = [z.detach(), system.sensing.phi.grad.clone(), system.init.filter.psi.grad.clone()]
        for fused, reference in zip(results["fused"], results["reference"]):
            torch.testing.assert_close(fused, reference, rtol=1e-4, atol=1e-5 * reference.abs().max().item())


def test_initialization_without_a_gradient_equals_the_one_with_it():
    system, img = _learned_pipeline(3, seed=2)
    y = system.measure(img).detach()
    with torch.no_grad():
        in_place = system.init(y, system.sensing)
    torch.testing.assert_close(in_place, system.init(y, system.sensing).detach(), rtol=1e-5, atol=1e-6)
