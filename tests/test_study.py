"""The study's plan (prkd.experiments.study): its configs, shared runs and seed pairing. Its launch, the
command line and the wall time are in tests/test_study_launch.py. Nothing here trains."""

from collections import Counter

import pytest
import torch

import prkd
from prkd import experiments
from prkd.experiments import study
from prkd.config import from_dict
from prkd.physics.system import PRSystem
from prkd.learning import teacher_config

PRESETS = ["smoke", "study"]
CORE = ("e2e", "random", "KD", "L_cdp only", "L_feat only")
SWEEP_BETAS = {0.0, 0.003, 0.01, 0.03, 0.1, 0.3}


def _group_seeds(configs: dict, group: str) -> set[int]:
    prefix = f"{group} s"
    return {int(n[len(prefix):]) for n in configs if n.startswith(prefix) and n[len(prefix):].isdigit()}


@pytest.mark.parametrize("preset", PRESETS)
def test_every_config_validates_names_are_unique_and_teachers_come_first(preset, registry):
    configs = study.study_configs(preset)
    names = list(configs)
    assert len(names) == len(set(names))
    for name, cfg in configs.items():
        assert cfg.preset == preset
        assert from_dict(cfg.to_dict()) == cfg, name  # re-validates every field and relation
        expected_seed = 0 if name.startswith("teacher ") else int(name.rsplit(" s", 1)[1])
        assert cfg.train.seed == expected_seed, name
    modes = [cfg.train.mode for cfg in configs.values()]
    n_teachers = modes.count("teacher")
    assert n_teachers >= 2 and set(modes[:n_teachers]) == {"teacher"} and "teacher" not in modes[n_teachers:]
    # every student's teacher is a run of the plan (so a shard can wait for it instead of training it twice)
    teacher_ids = {experiments.plan_run_id(c) for c in configs.values() if c.train.mode == "teacher"}
    for name, cfg in configs.items():
        if cfg.train.mode == "student":
            assert registry.run_for(teacher_config(cfg)).id in teacher_ids, name


def test_study_plan_has_the_paired_seeds_sweeps_and_variants():
    configs = study.study_configs("study")
    for group in CORE:
        assert _group_seeds(configs, group) >= set(range(5)), group
    kd = configs["KD s0"].train
    assert (kd.mode, kd.alpha, kd.beta, kd.teacher_masks, kd.cdp_loss) == ("student", 0.5, 0.25, 9, "paper")
    assert (configs["L_cdp only s0"].train.alpha, configs["L_cdp only s0"].train.beta) == (0.5, 0.5)
    assert configs["L_cdp only s0"].sigma == 0.0
    assert (configs["L_feat only s0"].train.alpha, configs["L_feat only s0"].train.beta) == (0.5, 0.0)
    assert configs["random s0"].train.mode == "random" and configs["e2e s0"].train.mode == "e2e"
    for series in ("sigma=0", "alpha=0.5"):
        betas = set()
        for name, cfg in configs.items():
            if name.startswith(f"{series} beta="):
                betas.add(cfg.train.beta)
                if series == "sigma=0":
                    assert cfg.sigma == pytest.approx(0.0, abs=1e-12), name
                elif cfg.train.beta < 0.5:
                    assert cfg.train.alpha == 0.5 and cfg.sigma > 0, name
        assert betas == SWEEP_BETAS, series
        for beta in SWEEP_BETAS:
            assert len(_group_seeds(configs, f"{series} beta={beta:g}")) >= 3, (series, beta)
    kd_variants = {(c.optics.mask_init, c.train.cdp_loss) for n, c in configs.items()
                   if c.train.mode == "student" and (c.train.alpha, c.train.beta) == (0.5, 0.25)}
    assert kd_variants == {("uniform", "paper"), ("normal", "paper"), ("uniform", "standardized"),
                           ("normal", "standardized")}
    assert configs["e2e normal s0"].optics.mask_init == "normal"
    assert configs["teacher L_t=9 normal"].optics.mask_init == "normal"


def test_study_preset_lets_the_masks_travel_at_least_10_rad():
    cfg = prkd.make("study")
    steps = cfg.train.epochs * (cfg.data.n_train // cfg.train.batch_size)
    assert cfg.train.mask_lr * steps >= 10.0  # Adam's phase-travel bound of prkd.config
    assert all(c.train.mask_lr == cfg.train.mask_lr for c in study.study_configs("study").values())


@pytest.mark.parametrize("preset", PRESETS)
def test_identical_configs_share_one_run(preset, registry):
    configs = study.study_configs(preset)
    ids = {name: experiments.plan_run_id(cfg) for name, cfg in configs.items()}
    seeds = study.STUDY_PLANS[preset].sweep_seeds
    for s in seeds:
        assert ids[f"alpha=0.5 beta=0 s{s}"] == ids[f"L_feat only s{s}"]
        assert ids[f"sigma=0 beta=0 s{s}"] == ids[f"e2e s{s}"]
    counts = Counter(ids.values())
    shared = {n for n in ids if counts[ids[n]] > 1}
    assert shared == {f"{g} s{s}" for s in seeds for g in ("alpha=0.5 beta=0", "L_feat only",
                                                           "sigma=0 beta=0", "e2e")}
    assert all(c == 2 for c in counts.values() if c > 1)
    # a student's id includes its teacher's: the same student config under another teacher is another run
    kd = configs["KD s0"]
    assert experiments.run_of(kd, registry) == registry.run_for(kd)
    assert experiments.run_of(kd, registry) != registry.run_for(kd, "teacher-L9-other-s1-0123456789")


@pytest.mark.parametrize("group", ["KD", "random", "L_cdp only", "KD standardized"])
def test_seed_s_of_every_group_starts_from_the_same_masks_and_weights(group):
    configs = study.study_configs("study")

    def tensors(cfg):
        system = PRSystem(cfg)
        return {"phi": system.sensing.phi.detach(), "phi0": system.sensing.phi0, **system.state_dict()}

    for s in (0, 1):
        a, b = tensors(configs[f"e2e s{s}"]), tensors(configs[f"{group} s{s}"])
        assert a.keys() == b.keys()
        for key in ("phi", "init.filter.psi", "init.z0", "unet.down.0.0.weight", "unet.bottleneck.0.weight"):
            assert torch.equal(a[key], b[key]), (group, s, key)
        assert all(torch.equal(a[k], b[k]) for k in a)
    s0, s1 = tensors(configs[f"{group} s0"]), tensors(configs[f"{group} s1"])
    assert not torch.equal(s0["phi"], s1["phi"])
    assert not torch.equal(s0["unet.down.0.0.weight"], s1["unet.down.0.0.weight"])


def test_normal_mask_init_pairs_its_own_groups():
    configs = study.study_configs("smoke")
    e2e, kd, uniform = (PRSystem(configs[n]) for n in ("e2e normal s1", "KD normal s1", "e2e s1"))
    assert torch.equal(e2e.sensing.phi, kd.sensing.phi)
    assert not torch.equal(e2e.sensing.phi, uniform.sensing.phi)
    assert all(torch.equal(p, q) for p, q in zip(e2e.unet.parameters(), kd.unet.parameters()))
