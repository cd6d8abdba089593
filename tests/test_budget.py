"""A budget in steps, the cosine learning-rate schedule, the normalized L_cdp and the KD ratios a run records,
the teacher's lazily filled cache, and run ids that survive added fields."""

import math

import pytest
import torch

import prkd
from prkd.config import ConfigError
from prkd.data import load_splits
from prkd.learning import loop as loop_module
from prkd.learning.optimizer import build_optimizer, schedule_learning_rates
from prkd.learning import get_or_train
from prkd.learning.objectives import cdp_loss, normalized_cdp_scale
from prkd.learning.teacher_targets import TeacherTargets
from prkd.physics.system import PRSystem
from prkd.registry import run_id

TINY = dict(n_train=64, n_val=32, n_test=32, batch_size=16, epochs=2)


@pytest.fixture(scope="module")
def tiny_data():
    return load_splits(prkd.make("smoke", **TINY).data, download=False)


def _quiet(**kw):
    return dict(progress=False, log=lambda msg: None, **kw)


def test_steps_per_epoch_sets_the_budget_and_is_checked():
    assert prkd.make("smoke", **TINY).epoch_steps == 4  # 64 images // 16
    cfg = prkd.make("smoke", **TINY, steps_per_epoch=2)
    assert (cfg.epoch_steps, cfg.total_steps) == (2, 4)
    with pytest.raises(ConfigError, match=r"'steps_per_epoch' must be in \[0, n_train // batch_size\] = \[0, "
                                          r"4\]"):
        prkd.make("smoke", **TINY, steps_per_epoch=5)
    with pytest.raises(ConfigError, match="'lr_schedule' must be one of 'constant', 'cosine'"):
        prkd.make("smoke", lr_schedule="linear")


def test_added_fields_at_their_default_leave_run_ids_unchanged():
    cfg = prkd.make("quick", mode="e2e")
    assert run_id(cfg) == "e2e-L1-quick-s0-c29f65c76e"  # the id committed in docs/results/classical
    assert run_id(prkd.make("quick", mode="e2e", lr_schedule="cosine")) != run_id(cfg)
    assert run_id(prkd.make("quick", mode="e2e", steps_per_epoch=8)) != run_id(cfg)


def test_cosine_schedule_decays_every_group_from_its_base_rate():
    cfg = prkd.make("smoke", **TINY, lr_schedule="cosine", mask_lr=0.1)
    system = PRSystem(cfg)
    opt = build_optimizer(system, cfg.train)
    rates = []
    for step in range(cfg.total_steps):
        schedule_learning_rates(opt, cfg, step)
        rates.append([g["lr"] for g in opt.param_groups])
    assert rates[0] == [0.1, cfg.train.filter_lr, cfg.train.lr]
    half = cfg.total_steps // 2
    assert rates[half] == pytest.approx([r / 2 for r in rates[0]])
    assert all(a[0] > b[0] for a, b in zip(rates, rates[1:]))
    constant = prkd.make("smoke", **TINY)
    opt = build_optimizer(PRSystem(constant), constant.train)
    schedule_learning_rates(opt, constant, 5)
    assert [g["lr"] for g in opt.param_groups] == [constant.train.mask_lr, constant.train.filter_lr,
                                                   constant.train.lr]


def test_normalized_cdp_equals_the_task_loss_at_its_reference():
    y_t, y_s = torch.rand(4, 1, 8, 8) + 0.5, torch.rand(4, 1, 8, 8) + 0.5
    paper = cdp_loss(y_t, y_s, "paper").item()
    scale = normalized_cdp_scale(0.02, paper)
    assert cdp_loss(y_t, y_s, "normalized", scale).item() == pytest.approx(0.02)
    with pytest.raises(ValueError, match="needs its run's positive scale"):
        cdp_loss(y_t, y_s, "normalized")
    with pytest.raises(ValueError, match="positive L_task and L_cdp"):
        normalized_cdp_scale(0.0, paper)


def test_a_normalized_student_gives_beta_as_the_share_of_its_first_step(tiny_data, registry, monkeypatch):
    beta = 0.1
    cfg = prkd.make("smoke", **TINY, mode="student", alpha=1 - beta, beta=beta, teacher_masks=3,
                    cdp_loss="normalized")
    first = {}
    original = loop_module.train_step

    def spy(system, optimizer, images, index, *, targets=None, key=None):
        terms = original(system, optimizer, images, index, targets=targets, key=key)
        if targets is not None and not first:  # the student's step 0, not its teacher's
            first.update({k: v.item() for k, v in terms.items()})
        return terms

    monkeypatch.setattr(loop_module, "train_step", spy)
    run = get_or_train(cfg, registry=registry, data=tiny_data, **_quiet())
    assert first["cdp"] == pytest.approx(first["task"], rel=1e-5)  # normalized: L_cdp = L_task at step 0
    share = beta * first["cdp"] / ((1 - beta) * first["task"] + beta * first["cdp"])
    assert share == pytest.approx(beta, rel=1e-5)
    m = run.metrics()
    assert m["kd_ratio_start"] == pytest.approx(beta / (1 - beta), rel=1e-5)
    assert m["cdp_scale"] == pytest.approx(m["task_start"] / m["cdp_paper_start"])
    assert m["kd_ratio_end"] > 0 and m["steps"] == cfg.total_steps


def test_a_paper_form_student_records_its_ratio_on_the_paper_scale(tiny_data, registry):
    cfg = prkd.make("smoke", **TINY, mode="student", alpha=0.5, beta=0.25, teacher_masks=3)
    m = get_or_train(cfg, registry=registry, data=tiny_data, **_quiet()).metrics()
    assert m["cdp_scale"] == 1.0
    assert m["kd_ratio_start"] == pytest.approx(0.25 * m["cdp_paper_start"] / (0.5 * m["task_start"]))
    assert m["kd_ratio_start"] > 1  # the paper's form outweighs the task term from the first step


def test_the_lazy_cache_gives_the_targets_of_a_full_pass(tiny_data):
    teacher = PRSystem(prkd.make("smoke", **TINY, mode="teacher", n_masks=3)).eval()
    images = tiny_data.train
    size = teacher.cfg.data.image_size
    targets = TeacherTargets(teacher, images, device=torch.device("cpu"), cache=True)
    index = torch.tensor([5, 3, 5, 60])
    img = prkd.data.to_images(images[index], size)
    mean_cdp, features = targets(index, img)
    assert int(targets.filled.sum()) == 3
    with torch.no_grad():
        out = teacher(prkd.data.to_images(images, size))
    assert torch.allclose(mean_cdp, out.y.mean(dim=1, keepdim=True)[index], rtol=1e-5, atol=1e-6)
    assert torch.allclose(features, out.features[index], rtol=1e-4, atol=1e-5)


def test_a_scheduled_run_with_few_steps_per_epoch_trains_and_resumes_alike(tiny_data, registry, tmp_path):
    cfg = prkd.make("smoke", **TINY, mode="e2e", steps_per_epoch=2, lr_schedule="cosine")
    run = get_or_train(cfg, registry=registry, data=tiny_data, **_quiet())
    assert run.metrics()["steps"] == 4 and math.isfinite(run.metrics()["test_psnr"])
    assert len(run.history()) == 2
