"""Physics of the sensing model, Eq. (1): adjointness, Parseval, global-phase invariance, noise, R(phi)."""

import math

import pytest
import torch

from prkd.physics.optics import CDPSensing, add_noise, mask_level_penalty


def _crandn(*shape, gen, dtype=torch.complex64):
    return torch.randn(*shape, generator=gen, dtype=dtype)


def _inner(a, b):
    return (a.conj() * b).sum()


@pytest.mark.parametrize("L", [1, 4])
def test_adjoint(device, L):
    gen = torch.Generator().manual_seed(1)
    op = CDPSensing(n_masks=L, size=16, generator=gen).to(device)
    x = _crandn(3, 16, 16, gen=gen).to(device)
    v = _crandn(3, L, 16, 16, gen=gen).to(device)
    lhs, rhs = _inner(op.A(x), v), _inner(x, op.A_adjoint(v))
    assert abs(lhs - rhs) / abs(lhs) < 1e-5


def test_orthonormal_fft_keeps_energy_parseval(device):
    gen = torch.Generator().manual_seed(2)
    op = CDPSensing(n_masks=5, size=12, generator=gen).to(device)
    x = _crandn(2, 12, 12, gen=gen).to(device)
    y = op(x)
    # Each B_l is unitary: sum_i y_{l,i} = ||x||^2 for every snapshot l.
    energy = x.abs().square().sum(dim=(1, 2))
    torch.testing.assert_close(y.sum(dim=(2, 3)), energy[:, None].expand(2, 5), rtol=1e-5, atol=0)
    # B^H B = L * identity (sum of L unitary maps composed with their adjoints).
    torch.testing.assert_close(op.A_adjoint(op.A(x)), 5 * x, rtol=1e-5, atol=1e-5)


def test_cdps_do_not_see_a_global_phase(device):
    gen = torch.Generator().manual_seed(3)
    op = CDPSensing(n_masks=3, size=16, generator=gen).to(device)
    x = _crandn(2, 16, 16, gen=gen).to(device)
    c = 0.7321
    torch.testing.assert_close(op(x * complex(math.cos(c), math.sin(c))), op(x), rtol=1e-5, atol=1e-6)


def test_masks_are_unit_modulus_and_initialised_uniformly():
    op = CDPSensing(n_masks=4, size=64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(op.masks().abs(), torch.ones(4, 64, 64))
    phi = op.phi.detach()
    assert phi.min() >= 0 and phi.max() < 2 * math.pi
    assert abs(phi.mean().item() - math.pi) < 0.05  # U[0, 2 pi) has mean pi; 16k samples


def test_frozen_masks_get_no_gradient():
    op = CDPSensing(n_masks=1, size=8, trainable=False)
    assert not op.phi.requires_grad


def test_gaussian_noise_reaches_the_requested_snr():
    y = torch.rand(4, 2, 32, 32) + 0.5
    gen = torch.Generator().manual_seed(0)
    noisy = add_noise(y, kind="gaussian", snr_db=20.0, generator=gen)
    snr = 10 * torch.log10(y.square().mean(dim=(1, 2, 3)) / (noisy - y).square().mean(dim=(1, 2, 3)))
    assert torch.allclose(snr, torch.full((4,), 20.0), atol=0.3)


def test_poisson_noise_has_the_photon_statistics():
    y = torch.full((1, 1, 128, 128), 3.0)
    noisy = add_noise(y, kind="poisson", photons=100.0, generator=torch.Generator().manual_seed(0))
    counts = noisy * 100.0 / 3.0
    torch.testing.assert_close(counts, counts.round())  # whole photons
    assert abs(counts.mean().item() - 100) < 1 and abs(counts.var().item() - 100) < 5  # mean = variance


def test_noise_is_seeded_and_optional():
    y = torch.rand(2, 1, 8, 8)
    assert add_noise(y, kind="none") is y
    a = add_noise(y, kind="gaussian", generator=torch.Generator().manual_seed(5))
    b = add_noise(y, kind="gaussian", generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_gradient_passes_through_noise_to_the_masks():
    op = CDPSensing(n_masks=2, size=8, generator=torch.Generator().manual_seed(0))
    x = torch.polar(torch.ones(1, 8, 8), torch.rand(1, 8, 8))
    add_noise(op(x), kind="poisson", photons=10.0,
              generator=torch.Generator().manual_seed(0)).square().sum().backward()
    assert op.phi.grad is not None and torch.isfinite(op.phi.grad).all() and op.phi.grad.abs().sum() > 0


def test_mask_penalty_is_zero_exactly_on_the_fabrication_levels():
    K = 4
    levels = 2 * math.pi * torch.randint(0, K, (2, 8, 8)) / K
    assert mask_level_penalty(levels, K) < 1e-12
    assert mask_level_penalty(levels + math.pi / K, K) == pytest.approx(1.0)  # half-way between levels
    phi = torch.rand(2, 8, 8, requires_grad=True)
    mask_level_penalty(phi, K).backward()
    assert phi.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["gaussian", "poisson"])
def test_noise_is_drawn_on_the_generators_device_and_is_reproducible_per_seed(kind, device):
    """A generator on the data's device draws there (no copy from the host each step, no synchronisation);
    the same seed gives the same noise; on the CPU the draw is that of a CPU generator (results unchanged)."""
    from prkd.utils.seeding import seeded_generator
    y = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)).to(device)
    a = add_noise(y, kind=kind, photons=50.0, generator=seeded_generator(1, 0, 0, "noise", device=device))
    b = add_noise(y, kind=kind, photons=50.0, generator=seeded_generator(1, 0, 0, "noise", device=device))
    c = add_noise(y, kind=kind, photons=50.0, generator=seeded_generator(1, 0, 1, "noise", device=device))
    assert a.device == y.device and torch.equal(a, b) and not torch.equal(a, c)
    if device.type == "cpu":
        ref = add_noise(y, kind=kind, photons=50.0, generator=torch.Generator().manual_seed(
            seeded_generator(1, 0, 0, "noise").initial_seed()))
        assert torch.equal(a, ref)
    else:  # a host generator still works for data on the device (drawn on the host, then copied)
        cpu = add_noise(y, kind=kind, photons=50.0, generator=seeded_generator(1, 0, 0, "noise"))
        assert cpu.device == y.device
