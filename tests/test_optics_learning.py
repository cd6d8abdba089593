"""Optics that learn: the masks' own learning rates, their initialisation, the forms of L_cdp, and the
per-epoch diagnostics every run records (mask drift, speckle contrast, init correlation, L_cdp)."""

import math

import pytest
import torch

import prkd
from prkd.config import ConfigError
from prkd.data import load_splits
from prkd.learning.objectives import cdp_loss
from prkd.physics.optics import CDPSensing, speckle_contrast
from prkd.learning import get_or_train
from prkd.learning.optimizer import build_optimizer

TINY = dict(n_train=64, n_val=32, n_test=32, batch_size=16, epochs=2)


@pytest.fixture(scope="module")
def tiny_data():
    return load_splits(prkd.make("smoke", **TINY).data, download=False)


@pytest.mark.parametrize("overrides, field, allowed", [
    (dict(mask_lr=0.0), "mask_lr", "(0, 1]"), (dict(mask_lr=2.0), "mask_lr", "(0, 1]"),
    (dict(filter_lr=-1.0), "filter_lr", "(0, 1]"), (dict(mask_init_std=0.0), "mask_init_std", "(0, 10]"),
    (dict(mask_init="gaussian"), "mask_init", "'uniform', 'normal'"),
    (dict(mode="student", alpha=0.5, beta=0.25, cdp_loss="log"), "cdp_loss", "'paper', 'standardized'"),
])
def test_optics_fields_name_the_field_and_the_allowed_range(overrides, field, allowed):
    with pytest.raises(ConfigError) as err:
        prkd.make("smoke", **overrides)
    assert f"'{field}'" in str(err.value) and allowed in str(err.value)


def test_cdp_loss_form_belongs_to_the_student():
    with pytest.raises(ConfigError, match="'cdp_loss'.*only to mode 'student'"):
        prkd.make("smoke", mode="e2e", cdp_loss="standardized")
    assert prkd.make("smoke", mode="student", alpha=0.5, beta=0.25,
                     cdp_loss="standardized").train.cdp_loss == "standardized"


def test_presets_let_the_masks_travel_as_far_as_the_papers():
    """steps x mask_lr (Adam's bound on a phase's travel) is of the paper's order (28 rad) at quick and
    study."""
    def travel(cfg):
        return cfg.train.epochs * (cfg.data.n_train // cfg.train.batch_size) * cfg.train.mask_lr
    paper = travel(prkd.make("paper"))
    assert 25 < paper < 30
    for preset in ("quick", "study"):
        assert paper / 3 < travel(prkd.make(preset)) < paper * 3, preset


def test_optimizer_gives_masks_filter_and_unet_their_own_rates():
    cfg = prkd.make("smoke", mask_lr=0.1, filter_lr=0.01, lr=1e-3)
    system = prkd.PRSystem(cfg)
    groups = {g["lr"]: g["params"] for g in build_optimizer(system, cfg.train).param_groups}
    assert groups[0.1] == [system.sensing.phi]
    assert {id(p) for p in groups[0.01]} == {id(p) for p in system.init.parameters()}
    assert {id(p) for p in groups[1e-3]} == {id(p) for p in system.unet.parameters()}
    frozen = prkd.PRSystem(cfg, trainable_optics=False)
    assert [g["lr"] for g in build_optimizer(frozen, cfg.train).param_groups] == [1e-3]


def test_normal_mask_init_has_the_requested_spread_and_keeps_the_scene_far_field():
    gen = torch.Generator().manual_seed(0)
    s = CDPSensing(n_masks=8, size=32, generator=gen, init="normal", init_std=0.5)
    assert s.phi.mean().abs() < 0.02 and abs(s.phi.std().item() - 0.5) < 0.02
    u = CDPSensing(n_masks=8, size=32, generator=gen)
    assert 0 <= u.phi.min() and u.phi.max() < 2 * math.pi and abs(u.phi.mean().item() - math.pi) < 0.1
    with pytest.raises(ValueError, match="'uniform' or 'normal'"):
        CDPSensing(n_masks=1, size=8, init="laplace")


def test_drift_is_wrapped_and_zero_at_the_start():
    s = CDPSensing(n_masks=2, size=8, generator=torch.Generator().manual_seed(1))
    assert s.drift_rad() == 0.0
    with torch.no_grad():
        s.phi += 2 * math.pi  # the same masks
    assert s.drift_rad() < 1e-5
    with torch.no_grad():
        s.phi.copy_(s.phi0 + 0.3)
    assert abs(s.drift_rad() - 0.3) < 1e-5
    with torch.no_grad():
        s.phi.copy_(s.phi0 - 3.0)
    assert abs(s.drift_rad() - 3.0) < 1e-5
    assert "phi0" not in s.state_dict()  # redrawn from the seed, never saved


def test_speckle_contrast_of_uniform_masks_is_one_and_falls_as_one_over_sqrt_L():
    gen = torch.Generator().manual_seed(2)
    x = torch.ones(4, 64, 64, dtype=torch.complex64)
    y = CDPSensing(n_masks=16, size=64, generator=gen)(x)
    assert abs(speckle_contrast(y).mean().item() - 1.0) < 0.05
    assert abs(speckle_contrast(y.mean(dim=1, keepdim=True)).mean().item() - 0.25) < 0.03


def test_standardized_cdp_loss_is_two_one_minus_r_and_blind_to_contrast_and_offset():
    gen = torch.Generator().manual_seed(3)
    t, s = torch.rand(3, 4, 8, 8, generator=gen), torch.rand(3, 1, 8, 8, generator=gen)
    tm, sm = t.mean(dim=1).flatten(1), s.mean(dim=1).flatten(1)
    r = torch.stack([torch.corrcoef(torch.stack([a, b]))[0, 1] for a, b in zip(tm, sm)])
    assert torch.allclose(cdp_loss(t, s, "standardized"), (2 * (1 - r)).mean(), atol=1e-5)
    assert torch.allclose(cdp_loss(t, 5 * s + 2, "standardized"), cdp_loss(t, s, "standardized"), atol=1e-5)
    assert cdp_loss(t, t, "standardized") < 1e-6
    assert torch.allclose(cdp_loss(t, s), cdp_loss(t, s, "paper"))
    with pytest.raises(ValueError, match="'paper', 'standardized'"):
        cdp_loss(t, s, "l1")


def test_every_run_logs_the_optics_diagnostics_per_epoch(tiny_data, registry):
    logs = []
    teacher = get_or_train(prkd.make("smoke", mode="teacher", n_masks=3, mask_lr=0.1, **TINY),
                           registry=registry, data=tiny_data,
                           progress=False, log=logs.append)
    e2e = get_or_train(prkd.make("smoke", mode="e2e", mask_lr=0.1, teacher_masks=3, **TINY),
                       registry=registry, data=tiny_data,
                       progress=False, log=logs.append)
    rand = get_or_train(prkd.make("smoke", mode="random", mask_lr=0.1, teacher_masks=3, **TINY),
                        registry=registry, data=tiny_data,
                        progress=False, log=logs.append)
    for run in (teacher, e2e, rand):
        rows = run.history()
        assert len(rows) == TINY["epochs"]
        assert all(0 <= r["init_corr"] <= 1 and r["speckle_contrast"] > 0 for r in rows)
        m = run.metrics()
        assert len(m["test_psnr_per_image"]) == TINY["n_test"]
        assert abs(sum(m["test_psnr_per_image"]) / TINY["n_test"] - m["test_psnr"]) < 1e-3
        assert m["mask_drift_rad"] == rows[-1]["mask_drift"]
    assert 0 < e2e.history()[0]["mask_drift"] < e2e.history()[1]["mask_drift"]
    assert rand.metrics()["mask_drift_rad"] == 0
    assert "val_cdp" not in teacher.history()[0]  # no teacher of its own: blank
    # the teacher its student would have
    assert "val_cdp" in e2e.history()[0] and "val_cdp_std" in rand.history()[0]
    assert e2e.metrics()["speckle_contrast_start"] == pytest.approx(1.0, abs=0.1)


def test_a_run_whose_masks_barely_moved_says_so(tiny_data, registry):
    logs = []
    get_or_train(prkd.make("smoke", mode="e2e", mask_lr=1e-6, **TINY), registry=registry, data=tiny_data,
                 progress=False, log=logs.append)
    assert any("masks moved only" in line and "< 0.1 rad" in line for line in logs)
    logs.clear()
    get_or_train(prkd.make("smoke", mode="e2e", mask_lr=0.3, seed=1, **TINY), registry=registry,
                 data=tiny_data, progress=False,
                 log=logs.append)
    assert not any("masks moved only" in line for line in logs)


def test_student_with_the_standardized_cdp_loss_trains_and_its_teacher_is_the_papers(tiny_data, registry):
    cfg = prkd.make("smoke", mode="student", alpha=0.5, beta=0.5, teacher_masks=3, cdp_loss="standardized",
                    mask_lr=0.1, **TINY)
    run = get_or_train(cfg, registry=registry, data=tiny_data, progress=False, log=lambda m: None)
    from prkd.learning import teacher_config
    assert teacher_config(cfg).train.cdp_loss == "paper"
    rows = run.history()
    assert all(0 <= r["cdp"] <= 4 for r in rows)  # 2 (1 - r) lies in [0, 4]


def test_drift_without_offset_ignores_a_common_phase_the_cdps_cannot_see():
    s = CDPSensing(n_masks=2, size=16, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        s.phi.copy_(s.phi0 + torch.tensor([0.7, -1.2]).view(2, 1, 1))  # one constant offset per mask
    x = torch.polar(torch.ones(1, 16, 16), torch.rand(1, 16, 16))
    fresh = CDPSensing(n_masks=2, size=16, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(s(x), fresh(x), atol=1e-5)  # the CDPs are unchanged
    assert abs(s.drift_rad() - 0.95) < 1e-4 and s.drift_rad(remove_offset=True) < 1e-4
    with torch.no_grad():
        s.phi.copy_(s.phi0 + 0.5 * torch.randn(2, 16, 16, generator=torch.Generator().manual_seed(5)))
    assert s.drift_rad(remove_offset=True) > 0.2  # a change the CDPs do see is still counted
