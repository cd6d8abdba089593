"""Classical phase retrieval (``prkd.classical``) on the project's CDPs: RAAR recovers noise-free phase
objects, every solver lowers its own objective, results do not depend on the batch, bad arguments are
refused."""

import math

import pytest
import torch

import prkd
from prkd import classical
from prkd.classical import gerchberg_saxton, phase_image, raar, wirtinger_flow, zero_phase
from prkd.data import to_images
from prkd.metrics import psnr
from prkd.physics.optics import CDPSensing
from prkd.physics.scene import phase_object

PR = math.pi
SOLVERS = {"gerchberg_saxton": gerchberg_saxton, "raar": raar, "wirtinger_flow": wirtinger_flow}


def _measured(img, L, **overrides):
    """(system, y) for images img (B, 1, N, N) at L masks, noise-free, quick preset (random masks, seed 0)."""
    system = prkd.PRSystem(prkd.make("quick", n_masks=L, **overrides))
    with torch.no_grad():
        return system, system.measure(img)


def _random_images(b=3, n=32, seed=1):
    return torch.rand(b, 1, n, n, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def fashion_at_4(test_images):
    """8 Fashion-MNIST test images at 32 x 32, their CDPs at L = 4, RAAR's and the zero-phase estimates."""
    img = to_images(test_images[:8], 32)
    system, y = _measured(img, 4)
    return img, raar(y, system.sensing, iterations=500), zero_phase(y, system.sensing)


def test_raar_recovers_noise_free_phase_objects_at_four_masks(fashion_at_4):
    img, result, _ = fashion_at_4
    db = psnr(phase_image(result.z, PR, reference=img), img)
    assert db.min() >= 40, db
    system, y = _measured(img, 4)  # also from the unfiltered spectral initialization
    db = psnr(phase_image(raar(y, system.sensing, init="unfiltered", iterations=500).z, PR,
                          reference=img), img)
    assert db.min() >= 40, db


def test_the_zero_phase_floor_is_far_below_raar(fashion_at_4):
    img, result, floor = fashion_at_4
    raar_db = psnr(phase_image(result.z, PR, reference=img), img).clamp_max(100)
    floor_db = psnr(phase_image(floor.z, PR, reference=img), img)
    assert torch.all(floor.z == 1) and floor.z.shape == (8, 32, 32)
    assert floor_db.mean() < 20 and floor_db.mean() + 20 < raar_db.mean(), (floor_db, raar_db)
    assert torch.all(floor.objective[:, 0] > 10 * result.objective[:, -1])


@pytest.mark.parametrize("name", SOLVERS)
def test_every_solver_lowers_its_own_objective(name):
    system, y = _measured(_random_images(2), 4)
    result = SOLVERS[name](y, system.sensing, iterations=60, tol=0)
    f = result.objective
    assert f.shape == (2, 61) and torch.all(result.iterations == 60)
    assert torch.all(f[:, -1] < 0.5 * f[:, 0]), f[:, [0, -1]]
    if name == "wirtinger_flow":  # the line search never accepts an increase
        assert torch.all(f.diff(dim=1) <= 0)
    if name == "gerchberg_saxton":  # alternating projections: non-increasing up to float rounding
        assert torch.all(f.diff(dim=1) <= 1e-6)


@pytest.mark.parametrize("name, tol", [("gerchberg_saxton", 1e-2), ("raar", 1e-4), ("wirtinger_flow", 3e-3)])
def test_an_image_result_does_not_depend_on_its_batch(name, tol):
    # from the unfiltered start the images stop at different times
    system, y = _measured(_random_images(3), 3)
    together = SOLVERS[name](y, system.sensing, init="unfiltered", iterations=300, tol=tol)
    assert len(set(together.iterations.tolist())) == 3, together.iterations
    for i in range(3):
        alone = SOLVERS[name](y[i:i + 1], system.sensing, init="unfiltered", iterations=300, tol=tol)
        assert torch.equal(alone.iterations, together.iterations[i:i + 1])
        k = alone.objective.shape[1]
        torch.testing.assert_close(alone.z, together.z[i:i + 1], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(alone.objective, together.objective[i:i + 1, :k], rtol=1e-4, atol=1e-6)
        assert torch.all(together.objective[i, k:] == together.objective[i, k - 1])  # frozen once stopped


def test_a_converged_image_stops_and_keeps_its_result():
    system, y = _measured(_random_images(2), 6)
    result = raar(y, system.sensing, iterations=2000, tol=1e-5)
    assert torch.all(result.iterations < 2000), result.iterations
    assert result.objective.shape[1] == int(result.iterations.max()) + 1


def test_padded_scenes_are_solved_on_their_support():
    img = _random_images(2, n=16)
    system, y = _measured(img, 2, image_size=16, pad_factor=2)
    result = raar(y, system.sensing, size=16, iterations=300)
    assert result.z.shape == (2, 16, 16)
    assert psnr(phase_image(result.z, PR, reference=img), img).min() >= 40


def test_phase_image_removes_the_global_phase(test_images):
    img = to_images(test_images[:4], 32)
    c = torch.tensor([0.3, 2.0, -1.0, 3.1])[:, None, None]
    x = phase_object(img, phase_range=PR) * torch.polar(torch.ones_like(c), c)
    for ref in (img, None):  # the Fashion-MNIST images reach 0, so the data-only rule is exact too
        torch.testing.assert_close(phase_image(x, PR, reference=ref), img, rtol=0, atol=1e-5)


def test_solvers_run_on_the_device_of_the_data(device):
    sensing = CDPSensing(n_masks=3, size=16, generator=torch.Generator().manual_seed(0)).to(device)
    img = _random_images(2, n=16).to(device)
    y = sensing(phase_object(img, phase_range=PR))
    for solve in SOLVERS.values():
        result = solve(y, sensing, iterations=5)
        assert result.z.device.type == device.type and result.z.is_complex()


@pytest.mark.parametrize("call, message", [
    (lambda y, s: raar(y, s, iterations=0), "iterations must be an integer >= 1"),
    (lambda y, s: gerchberg_saxton(y, s, iterations=2.5), "iterations must be an integer >= 1"),
    (lambda y, s: raar(y, s, tol=-1.0), "tol must be a finite number >= 0"),
    (lambda y, s: raar(y, s, beta=0.0), r"beta must be a number in \(0, 1\]"),
    (lambda y, s: raar(y, s, beta=1.5), r"beta must be a number in \(0, 1\]"),
    (lambda y, s: wirtinger_flow(y, s, step=0), "step must be a finite number > 0"),
    (lambda y, s: wirtinger_flow(y, s, armijo=1.0), r"armijo must be a number in \(0, 1\)"),
    (lambda y, s: wirtinger_flow(y, s, max_backtracks=0), "max_backtracks must be an integer >= 1"),
    (lambda y, s: raar(y, s, size=17), r"size \(the scene side N\) must be an integer in \[1, 16\]"),
    (lambda y, s: raar(y[:, :2], s), r"y must be CDPs of shape \(B, 3, 16, 16\)"),
    (lambda y, s: raar(y, s, init=torch.ones(2, 8, 8)),
     r"init must be a complex tensor of shape \(2, 16, 16\)"),
    (lambda y, s: raar(y, s, init="random"),
     "init must be 'gaussian', 'unfiltered', a SpectralInit or a tensor"),
    (lambda y, s: zero_phase(y, s, size=0), r"size \(the scene side N\) must be an integer"),
    (lambda y, s: phase_image(torch.ones(2, 4, 4, dtype=torch.complex64), 0.0),
     r"phase_range must be a number"),
])
def test_bad_arguments_are_refused_with_the_reason(call, message):
    sensing = CDPSensing(n_masks=3, size=16)
    y = sensing(torch.ones(2, 16, 16, dtype=torch.complex64))
    with pytest.raises(ValueError, match=message):
        call(y, sensing)


def test_the_module_exports_what_it_documents():
    assert set(classical.__all__) == {"SolverResult", "gerchberg_saxton", "raar", "wirtinger_flow",
                                      "zero_phase", "phase_image"}


def test_starts_from_the_truth_a_spectral_init_module_or_the_default(test_images):
    img = to_images(test_images[:2], 32)
    system, y = _measured(img, 3)
    truth = system.scene(img)
    exact = gerchberg_saxton(y, system.sensing, init=truth, iterations=3)
    assert torch.all(exact.objective < 1e-5)
    torch.testing.assert_close(exact.z, truth, rtol=0, atol=1e-4)
    for init in (system.init, "gaussian", "unfiltered"):
        result = wirtinger_flow(y, system.sensing, init=init, iterations=20)
        assert torch.all(result.objective[:, -1] < result.objective[:, 0])
