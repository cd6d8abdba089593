"""prkd's masks as a deepinv physics (prkd.interop.deepinv): the same CDPs as prkd, an adjoint that passes
deepinv's test, deepinv's spectral method agreeing with prkd's unfiltered initialization, and a trained run's
learned masks.

The tests that need deepinv (the optional extra ``pip install -e '.[deepinv]'``; CI installs it) skip cleanly
without it; the check that its absence is reported with the install command runs either way."""

import re
import sys

import pytest
import torch

import prkd
from prkd.physics.scene import phase_object
from prkd.interop.deepinv import INSTALL_HINT, as_deepinv_physics, from_run, spectral_options
from prkd.metrics import correlation
from prkd.registry import RunNotFoundError


@pytest.fixture
def dinv():
    return pytest.importorskip("deepinv")


def _system(L, **overrides):
    return prkd.PRSystem(prkd.make("smoke", n_masks=L, noise="none", **overrides))


def _images(system, b=4, seed=0):
    n = system.cfg.data.image_size
    return torch.rand(b, 1, n, n, generator=torch.Generator().manual_seed(seed))


def _object(system, img):
    """The N x N phase object of img (no padding), in deepinv's (B, 1, N, N)."""
    return phase_object(img, phase_range=system.cfg.data.phase_range)[:, None]


@pytest.mark.parametrize("L, pad", [(1, 1), (3, 1), (9, 1), (3, 2)])
def test_the_wrapped_operator_is_prkds_forward_model(dinv, L, pad):
    system = _system(L, pad_factor=pad)
    img = _images(system)
    physics = as_deepinv_physics(system)
    assert isinstance(physics, dinv.physics.PhaseRetrieval)
    assert isinstance(physics.B, dinv.physics.LinearPhysics)
    with torch.no_grad():
        y = physics(_object(system, img))
        expected = system.measure(img)
        field = as_deepinv_physics(system, domain="field")
        y_field = field(system.scene(img)[:, None])
        bx = physics.B(_object(system, img))
    m = system.cfg.data.image_size * pad
    assert y.shape == (4, L, m, m) and y.dtype == torch.float32 and bx.dtype == torch.complex64
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y_field, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bx, system.sensing.A(system.scene(img)))


@pytest.mark.parametrize("pad, domain", [(1, "object"), (2, "object"), (2, "field")])
def test_deepinvs_adjointness_test_passes_and_the_pseudo_inverse_is_exact(dinv, pad, domain):
    system = _system(3, pad_factor=pad)
    B = as_deepinv_physics(system, domain=domain).B
    torch.manual_seed(0)
    error = B.adjointness_test(dtype=torch.complex64, num_samples=4)
    assert error < 1e-5, error
    x = torch.randn(2, *B.img_size, dtype=torch.complex64)
    torch.testing.assert_close(B.A_dagger(B(x)), x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(B.A_adjoint_A(x), B.A_adjoint(B.A(x)), rtol=1e-5, atol=1e-5)
    # the test can fail: an "adjoint" that forgets to conjugate the masks is caught
    n = B.image_size

    def unconjugated(v, **kwargs):
        return (B.sensing.masks() * torch.fft.ifft2(v, norm="ortho")).sum(dim=1)[:, None, :n, :n]
    wrong = dinv.physics.LinearPhysics(A=B.A, A_adjoint=unconjugated)
    assert wrong.adjointness_test(dtype=torch.complex64, img_size=B.img_size) > 0.1


@pytest.mark.parametrize("L, weighting, pad", [(3, "y", 1), (9, "truncated", 1), (3, "truncated", 2)])
def test_deepinvs_spectral_method_is_prkds_unfiltered_initialization(dinv, L, weighting, pad):
    from deepinv.optim.phase_retrieval import spectral_methods
    system = _system(L, weighting=weighting, pad_factor=pad, T=25)
    system.init.filter.set_identity()
    img = _images(system, b=6)
    physics = as_deepinv_physics(system, domain="field")
    with torch.no_grad():
        y = system.measure(img)
        ours = system.init(y, system.sensing)
        theirs = spectral_methods(y, physics, **spectral_options(physics, system.init, len(y)))
    cosine = correlation(theirs[:, 0], ours)  # |<a, b>| / (|a| |b|) per image: blind to the global phase
    assert cosine.min() >= 0.99, cosine
    # the same numbers once each image is normalised and prkd's finish (scale from y, global phase) applied
    unit = theirs[:, 0] / theirs[:, 0].flatten(1).norm(dim=1)[:, None, None]
    torch.testing.assert_close(system.init.finish(unit, y), ours, rtol=1e-3, atol=1e-3)


def test_deepinvs_default_spectral_method_and_data_fidelity_gradient_run_on_the_masks(dinv):
    system = _system(9, T=50)
    img = _images(system, b=3)
    physics = as_deepinv_physics(system)
    x = _object(system, img)
    y = physics(x)
    torch.manual_seed(0)
    x0 = physics.A_dagger(y)  # deepinv's own spectral method: its preprocessing, random start, lamb = 10 L
    assert x0.shape == x.shape and torch.isfinite(x0).all()
    assert correlation(x0[:, 0], x[:, 0]).min() > 0.5
    fidelity = dinv.optim.data_fidelity.L2()
    z = x0.detach().clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(fidelity(z, y, physics).sum(), z)
    torch.testing.assert_close(fidelity.grad(x0, y, physics), auto, rtol=1e-4, atol=1e-4)


def test_shared_masks_receive_gradients_and_a_copy_is_frozen(dinv):
    system = _system(3)
    x = _object(system, _images(system, b=2))
    shared = as_deepinv_physics(system, share=True)
    shared(x).sum().backward()
    assert system.sensing.phi.grad is not None and system.sensing.phi.grad.abs().sum() > 0
    frozen = as_deepinv_physics(system)
    assert not any(p.requires_grad for p in frozen.parameters())
    before = frozen(x)
    with torch.no_grad():
        system.sensing.phi.add_(torch.rand(system.sensing.phi.shape,
                                           generator=torch.Generator().manual_seed(2)))
    torch.testing.assert_close(frozen(x), before)
    assert not torch.allclose(shared(x), before)


def test_wrong_inputs_are_refused_with_the_convention(dinv):
    system = _system(3)
    physics = as_deepinv_physics(system)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 16, 16\)"):
        physics(torch.ones(2, 16, 16, dtype=torch.complex64))
    with pytest.raises(ValueError, match="domain must be one of"):
        as_deepinv_physics(system, domain="pupil")
    with pytest.raises(ValueError, match="image_size comes from the system"):
        as_deepinv_physics(system, image_size=8)
    with pytest.raises(TypeError, match="PRSystem, a CDPSensing or a registry Run"):
        as_deepinv_physics(system.unet)
    bare = as_deepinv_physics(system.sensing, image_size=10)  # a bare CDPSensing: object padded to its 16 px
    assert bare.B.img_size == (1, 10, 10)
    assert bare(torch.ones(1, 1, 10, 10, dtype=torch.complex64)).shape == (1, 3, 16, 16)


def test_without_deepinv_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "deepinv", None)  # `import deepinv` now raises ImportError
    with pytest.raises(ImportError, match=re.escape(INSTALL_HINT)):
        as_deepinv_physics(_system(1))
    with pytest.raises(ImportError, match=re.escape(INSTALL_HINT)):
        from_run("unused", "no-such-run")


@pytest.mark.real_data
def test_from_run_wraps_a_trained_runs_learned_masks(dinv, tmp_path):
    from prkd.learning import get_or_train
    cfg = prkd.make("smoke", mode="teacher", n_masks=3, n_train=64, n_val=32, n_test=32,
                    batch_size=16, epochs=1)
    registry = prkd.open_registry(tmp_path)
    run = get_or_train(cfg, registry=registry, progress=False, log=lambda m: None)
    physics = from_run(registry, run.id)
    sensing = run.load_system().sensing
    assert not torch.equal(sensing.phi, sensing.phi0)  # learned: the masks moved from their initialization
    torch.testing.assert_close(physics.B.sensing.phi, sensing.phi)
    scene = phase_object(torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1)),
                         phase_range=torch.pi)
    with torch.no_grad():
        torch.testing.assert_close(physics(scene[:, None]), sensing(scene), rtol=1e-5, atol=1e-6)
    assert from_run(str(tmp_path), run.id).B.n_masks == 3  # the registry's root folder works too
    with pytest.raises(RunNotFoundError, match="does not exist"):
        from_run(registry, "no-such-run")
