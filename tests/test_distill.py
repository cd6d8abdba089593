"""The frozen teacher's targets (prkd.learning.teacher_targets.TeacherTargets): cached once or computed per
step, the same values."""

import torch

import prkd
from prkd.data import to_images
from prkd.learning.teacher_targets import TeacherTargets


def _teacher(**overrides) -> prkd.PRSystem:
    return prkd.PRSystem(prkd.make("smoke", mode="teacher", n_masks=3, **overrides))


def test_cached_targets_are_the_teachers_mean_cdp_and_features(test_images):
    teacher, index = _teacher(), torch.tensor([5, 0, 11])
    targets = TeacherTargets(teacher, test_images, device=torch.device("cpu"), batch_size=4)
    assert targets.cached
    img = to_images(test_images[index], teacher.cfg.data.image_size)
    with torch.inference_mode():
        out = teacher(img)
    mean_cdp, features = targets(index, img)
    assert mean_cdp.shape == (3, 1, 16, 16) and features.shape == out.features.shape
    torch.testing.assert_close(mean_cdp, out.y.mean(dim=1, keepdim=True))
    torch.testing.assert_close(features, out.features)
    # the size it budgets is the size it holds
    assert targets.cache_bytes == (targets.mean_cdp.numel() + targets.features.numel()) * 4


def test_a_cache_over_budget_runs_the_teacher_per_step_with_the_same_values(test_images):
    teacher, index = _teacher(), torch.arange(6)
    cached = TeacherTargets(teacher, test_images, device=torch.device("cpu"))
    per_step = TeacherTargets(teacher, test_images, device=torch.device("cpu"),
                              budget_bytes=cached.cache_bytes - 1)
    assert cached.cached and not per_step.cached and not hasattr(per_step, "mean_cdp")
    img = to_images(test_images[index], teacher.cfg.data.image_size)
    for a, b in zip(cached(index, img), per_step(index, img)):
        torch.testing.assert_close(a, b)


def test_a_noisy_teacher_is_not_cached_unless_asked(test_images):
    noisy = _teacher(noise="gaussian", snr_db=20.0)
    assert not TeacherTargets(noisy, test_images, device=torch.device("cpu")).cached
    assert TeacherTargets(noisy, test_images, device=torch.device("cpu"), cache=True).cached
