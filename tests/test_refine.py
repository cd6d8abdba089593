"""Refining a system's output on its own CDPs (prkd.learning.refine): no oracle, the start's global phase
kept, a noisy start improved, bad values refused, and the evaluation's refined scores beside the raw ones."""

import math

import pytest
import torch

import prkd
from prkd.config import ConfigError
from prkd.data import to_images
from prkd.learning.evaluation import evaluate
from prkd.learning.refine import check_refine, refine_output
from prkd.metrics import psnr
from prkd.physics.optics import CDPSensing

PHASE_RANGE = math.pi


def _blob_images(n: int = 16, count: int = 3) -> torch.Tensor:
    """Smooth phase images (count, 1, n, n) in [0, 0.8] with a zero background, different per image."""
    r = torch.arange(n, dtype=torch.float32)
    images = []
    for k in range(count):
        cy, cx, width = 5.0 + 2 * k, 8.0 - k, 2.5 + 0.5 * k
        g = torch.exp(-((r[:, None] - cy) ** 2 + (r[None, :] - cx) ** 2) / (2 * width**2))
        images.append(0.8 * g * (g > 0.05))
    return torch.stack(images)[:, None]


def _measured(img: torch.Tensor, L: int, seed: int = 0):
    op = CDPSensing(n_masks=L, size=img.shape[-1], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y = op(torch.polar(torch.ones_like(img[:, 0]), PHASE_RANGE * img[:, 0]))
    return op, y


@pytest.mark.parametrize("L", [1, 2])
def test_refinement_improves_a_noisy_start(L):
    img = _blob_images()
    op, y = _measured(img, L)
    noisy = (img + 0.08 * torch.randn(img.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    refined = refine_output(noisy, y, op, phase_range=PHASE_RANGE, refine="raar", iterations=150)
    before, after = psnr(noisy, img), psnr(refined, img)
    assert torch.all(after > before + 3.0), (before, after)


def test_the_refined_global_phase_follows_the_start_not_the_truth():
    img = _blob_images()
    op, y = _measured(img, 2)
    # the same scene up to a global phase of 0.1 * phase_range: the CDPs cannot tell them apart
    shifted = img + 0.1
    for refine in ("er", "raar"):
        refined = refine_output(shifted, y, op, phase_range=PHASE_RANGE, refine=refine, iterations=100)
        offset = (refined - img).mean(dim=(1, 2, 3))
        torch.testing.assert_close(offset, torch.full_like(offset, 0.1), atol=0.01, rtol=0)


def test_no_refinement_returns_the_output_unchanged():
    img = _blob_images()
    op, y = _measured(img, 1)
    assert refine_output(img, y, op, phase_range=PHASE_RANGE, refine="none") is img


@pytest.mark.parametrize(("refine", "iterations", "field"), [
    ("gd", 10, "'refine'"), ("RAAR", 10, "'refine'"), ("raar", 0, "'iterations'"),
    ("raar", 100_001, "'iterations'"), ("er", 2.5, "'iterations'"), ("er", True, "'iterations'")])
def test_bad_refinements_are_refused_naming_the_field_and_its_range(refine, iterations, field):
    with pytest.raises(ConfigError, match=field) as err:
        check_refine(refine, iterations)
    assert ("one of 'none', 'er', 'raar'" if field == "'refine'" else "[1, 100000]") in str(err.value)


def test_evaluate_gives_refined_scores_beside_the_unchanged_raw_ones():
    system = prkd.PRSystem(prkd.make("smoke"))
    images = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    raw = evaluate(system, images, batch_size=4)
    both = evaluate(system, images, batch_size=4, refine="er", iterations=5)
    assert set(raw) == {"psnr", "ssim", "psnr_per_image", "ssim_per_image"}
    assert {k: both[k] for k in raw} == raw
    assert len(both["refined_psnr_per_image"]) == 6 and math.isfinite(both["refined_psnr"])
    with pytest.raises(ConfigError, match="'refine'"):
        evaluate(system, images, refine="oracle")
    # the images scored are the system's own: its output refined on its own CDPs reaches the truth at L = 1 no
    # worse than at the start, image by image, when the start is the truth itself
    img = to_images(images, 16)
    out = system(img)
    kept = refine_output(img, out.y.detach(), system.sensing, phase_range=system.cfg.data.phase_range,
                         refine="raar", iterations=20)
    assert torch.all(psnr(kept, img) > 30)
