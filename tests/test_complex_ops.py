"""The fast complex arithmetic of the classical solvers agrees with torch's own, and the solvers'
projections keep their definition at exact zeros."""

import torch

from prkd.classical import _fit_data, _unit
from prkd.physics.complex_ops import item_norms, modulus, squared_modulus, sum_masks
from prkd.physics.optics import CDPSensing


def _complex(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(*shape, generator=g), torch.randn(*shape, generator=g))


def test_the_moduli_and_norms_are_torchs_to_float_rounding():
    t = _complex(8, 3, 16, 16)
    torch.testing.assert_close(modulus(t), t.abs(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(squared_modulus(t), t.abs().square(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(item_norms(t), t.abs().square().flatten(1).sum(1).sqrt(), rtol=1e-6, atol=0)
    real = t.real.contiguous()
    expected = real.abs().square().flatten(1).sum(1).sqrt()
    torch.testing.assert_close(item_norms(real), expected, rtol=1e-6, atol=0)
    for masks in (1, 3):
        u = _complex(4, masks, 8, 8, seed=masks)
        torch.testing.assert_close(sum_masks(u), u.sum(dim=1), rtol=1e-6, atol=1e-6)


def test_the_frozen_operators_are_the_operators_without_a_gradient():
    sensing = CDPSensing(n_masks=3, size=16, generator=torch.Generator().manual_seed(0))
    forward, adjoint = sensing.frozen_operators()
    x, v = _complex(5, 16, 16, seed=1), _complex(5, 3, 16, 16, seed=2)
    with torch.no_grad():
        torch.testing.assert_close(forward(x), sensing.A(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(adjoint(v), sensing.A_adjoint(v), rtol=1e-5, atol=1e-5)
    assert not forward(x).requires_grad and not adjoint(v).requires_grad


def test_the_projections_give_a_zero_its_defined_value():
    support = torch.ones(4, 4)
    support[3] = 0
    x = _complex(2, 4, 4)
    x[0, 1, 2] = 0
    unit = _unit(x, support)
    assert unit[0, 1, 2] == 1 and (unit[:, 3] == 0).all()
    torch.testing.assert_close(unit[1, :3].abs(), torch.ones(3, 4))
    amp = torch.rand(2, 1, 4, 4) + 0.5
    v = _complex(2, 1, 4, 4, seed=3)
    v[1, 0, 0, 0] = 0
    fitted = _fit_data(v, amp)
    assert fitted[1, 0, 0, 0] == amp[1, 0, 0, 0]
    torch.testing.assert_close(fitted.abs(), amp)
