"""The study's plan (prkd.study): its configs, shared runs, seed pairing, shards, bad input and wall time.
Nothing here trains: launch's worker processes are replaced by a stub."""

import signal
import json
import math
from collections import Counter

import pytest
import torch

import prkd
from prkd import experiments
from prkd.experiments import study
from prkd.__main__ import main
from prkd.config import ConfigError, from_dict
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
    assert shared == {f"{g} s{s}" for s in seeds for g in ("alpha=0.5 beta=0", "L_feat only", "sigma=0 beta=0", "e2e")}
    assert all(c == 2 for c in counts.values() if c > 1)
    # a student's id includes its teacher's: the same student config under another teacher is another run
    kd = configs["KD s0"]
    assert experiments.run_of(kd, registry) != registry.run_for(kd, None)


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


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("phase", ["teacher", "other"])
@pytest.mark.parametrize("n_shards", [1, 2, 3])
def test_shards_cover_every_run_once_and_balance_the_load(preset, phase, n_shards):
    configs = study.study_configs(preset)
    items = [(n, c) for n, c in configs.items() if (c.train.mode == "teacher") == (phase == "teacher")]
    all_ids = {experiments.plan_run_id(c) for _, c in items}
    shards = [study._shard_items(items, i, n_shards) for i in range(n_shards)]
    ids = [experiments.plan_run_id(c) for shard in shards for _, c in shard]
    assert len(ids) == len(set(ids)) and set(ids) == all_ids  # each distinct run in exactly one shard
    loads = [sum(study._cost(c) for _, c in shard) for shard in shards]
    assert sum(loads) == pytest.approx(sum(study._cost(c) for c in {experiments.plan_run_id(c): c for _, c in items}.values()))
    assert max(loads) - min(loads) <= max(study._cost(c) for _, c in items) + 1e-9
    assert study._shard_items(items, 0, n_shards) == shards[0]  # deterministic


def test_cost_is_the_fitted_seconds_and_grows_with_the_number_of_masks(registry):
    from prkd.experiments.schedule import STUDY_FIT
    e2e, teacher = prkd.make("study", mode="e2e"), prkd.make("study", mode="teacher", n_masks=9)
    steps, c0, c1 = 16 * (2048 // 64), STUDY_FIT.seconds_per_step, STUDY_FIT.seconds_per_step_per_mask
    assert study._cost(e2e) == pytest.approx(steps * (c0 + c1))
    assert study._cost(teacher) == pytest.approx(steps * (c0 + 9 * c1))
    assert study._cost(teacher) > study._cost(e2e)


def _nothing_written(registry):
    return not any(registry.runs_dir.iterdir()) and not (registry.root / "study").exists()


@pytest.mark.parametrize("shard, n_shards", [(2, 2), (-1, 2), (0, 0), (1.0, 2), ("0", 1)])
def test_run_shard_refuses_a_shard_out_of_range(shard, n_shards, registry):
    with pytest.raises(ConfigError, match=r"shard must be an integer in \[0, n_shards - 1\].*shard="):
        study.run_shard("smoke", registry=registry, shard=shard, n_shards=n_shards, progress=False)
    assert _nothing_written(registry)


class _FakePopen:
    """Stands in for a worker process: records its command line and environment, exits with ``code``."""

    calls: list = []
    code = 0

    def __init__(self, argv, env=None):
        _FakePopen.calls.append((argv, env))
        self.returncode = _FakePopen.code

    def wait(self):
        return _FakePopen.code

    def poll(self):
        return self.returncode

    def send_signal(self, signum):
        pass


@pytest.fixture
def fake_workers(monkeypatch):
    _FakePopen.calls, _FakePopen.code = [], 0
    monkeypatch.setattr(study.subprocess, "Popen", _FakePopen)
    return _FakePopen


@pytest.mark.parametrize("shards", [0, -1, 65, 1.5, "2", True])
def test_launch_refuses_a_bad_number_of_shards(shards, fake_workers, registry):
    with pytest.raises(ConfigError, match="'shards' must be an integer in \\[1, 64\\]"):
        study.launch("smoke", registry=registry, shards=shards)
    assert fake_workers.calls == [] and _nothing_written(registry)


@pytest.mark.parametrize("preset", ["fast", "quick", "paper"])
def test_an_unknown_study_preset_is_refused_naming_the_field(preset, fake_workers, registry):
    for call in (lambda: study.study_configs(preset), lambda: study.launch(preset, registry=registry, shards=1),
                 lambda: study.run_shard(preset, registry=registry, progress=False)):
        with pytest.raises(ConfigError, match=f"'preset' of the study must be one of 'smoke', 'study'; got '{preset}'"):
            call()
    assert fake_workers.calls == [] and _nothing_written(registry)


@pytest.mark.parametrize("shard", ["x", "2", "1/", "/2", "a/b", "-1/2", "1/-2"])
def test_cli_refuses_a_malformed_shard(shard, capsys, registry):
    with pytest.raises(SystemExit) as exc:
        main(["study", "--preset", "smoke", f"--shard={shard}"])
    assert exc.value.code == 2
    assert "--shard takes I/N" in capsys.readouterr().err
    assert _nothing_written(registry)


@pytest.mark.parametrize("argv, message", [
    (["--preset", "smoke", "--shard", "2/2"], "shard must be an integer"),
    (["--preset", "smoke", "--shard", "0/0"], "shard must be an integer"),
    (["--preset", "fast", "--shard", "0/1"], "'preset' of the study"),
    (["--preset", "smoke", "--shards", "0"], "'shards' must be an integer"),
    (["--preset", "smoke", "--workers", "0"], "'workers' must be an integer in [1, 256]"),
])
def test_cli_reports_a_bad_study_argument_and_writes_nothing(argv, message, capsys, fake_workers, registry):
    assert main(["study", *argv]) == 2
    assert message in capsys.readouterr().err
    assert fake_workers.calls == [] and _nothing_written(registry)


@pytest.fixture
def no_training(monkeypatch):
    """run_shard and launch replaced by stubs that record their calls (so a CLI test can never train)."""
    calls = []
    monkeypatch.setattr(study, "run_shard", lambda *a, **k: calls.append(("run_shard", a, k)))
    monkeypatch.setattr(study, "launch", lambda *a, **k: calls.append(("launch", a, k)))
    return calls


@pytest.mark.parametrize("other", [["--shards", "3"], ["--shards", "2"], ["--workers", "2"], ["--scheduler", "tcp://x:1"]])
def test_cli_refuses_shard_with_another_way_to_run(other, no_training, capsys, registry):  # "2": the default
    with pytest.raises(SystemExit) as exc:
        main(["study", "--preset", "smoke", "--shard", "0/2", *other])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert no_training == [] and _nothing_written(registry)


def test_cli_passes_a_good_shard_and_workers_on(no_training, registry):
    assert main(["study", "--preset", "smoke", "--shard", "1/3"]) == 0
    assert main(["study", "--preset", "smoke", "--shards", "4"]) == 0
    assert no_training == [("run_shard", ("smoke",), {"registry": registry, "shard": 1, "n_shards": 3}),
                           ("launch", ("smoke",), {"registry": registry, "shards": 4})]


def test_launch_records_each_session_and_wall_time_sums_them(fake_workers, registry):
    assert study.wall_time("smoke", registry) == {"sessions": [], "total_seconds": 0}
    first = study.launch("smoke", registry=registry, shards=3, log=lambda _: None)
    argvs = [argv for argv, _ in fake_workers.calls]
    assert [a[-3:] for a in argvs] == [["smoke", "--shard", f"{i}/3"] for i in range(3)]
    assert all(a[1:6] == ["-m", "prkd", "--output-dir", str(registry.root), "study"] for a in argvs)  # one registry
    assert all(env["OMP_NUM_THREADS"] == "1" and env["MKL_NUM_THREADS"] == "1" for _, env in fake_workers.calls)
    assert len(first["sessions"]) == 1 and first["sessions"][0]["workers"] == 3
    assert first["sessions"][0]["exit_codes"] == [0, 0, 0]
    fake_workers.code = 1
    with pytest.raises(RuntimeError, match=r"shard\(s\) \[0, 1\] of 2 exited with \[1, 1\]"):
        study.launch("smoke", registry=registry, shards=2)
    wall = study.wall_time("smoke", registry)
    assert [s["workers"] for s in wall["sessions"]] == [3, 2]  # a failed launch is recorded too
    assert wall["total_seconds"] == pytest.approx(sum(s["seconds"] for s in wall["sessions"]))
    assert study.wall_time("study", registry) == {"sessions": [], "total_seconds": 0}  # per preset


def test_wall_time_reads_the_sessions_file(registry):
    path = registry.root / "study" / "smoke" / "wall.json"
    path.parent.mkdir(parents=True)
    sessions = [{"started": "2024-01-01T00:00:00+0000", "seconds": 61.5, "workers": 2, "exit_codes": [0, 0]},
                {"started": "2024-01-02T00:00:00+0000", "seconds": 120.25, "workers": 2, "exit_codes": [0, 1]}]
    path.write_text(json.dumps({"sessions": sessions}))
    wall = study.wall_time("smoke", registry)
    assert wall["sessions"] == sessions and math.isclose(wall["total_seconds"], 181.75)


def test_launch_stops_the_other_shards_when_one_fails(monkeypatch):
    class Proc:
        def __init__(self, code_after):
            self.code_after, self.polls, self.returncode, self.terminated = code_after, 0, None, False

        def poll(self):
            self.polls += 1
            if self.returncode is None and (self.terminated or self.polls > self.code_after[0]):
                self.returncode = -15 if self.terminated else self.code_after[1]
            return self.returncode

        def send_signal(self, signum):
            assert signum == signal.SIGINT  # the shard checkpoints its run and exits
            self.terminated = True

        def wait(self):
            return self.returncode

    failing, waiting = Proc((2, 2)), Proc((10**9, 0))
    assert study._wait_all([failing, waiting], poll_s=0) == [2, -15]
    assert waiting.terminated and not failing.terminated


def test_an_interrupted_launch_stops_its_shards():
    signals = []

    class Proc:
        def __init__(self):
            self.stopped = False

        def poll(self):
            return -2 if self.stopped else None

        def send_signal(self, signum):
            signals.append(signum)
            self.stopped = True

        def wait(self):
            return -2

    def interrupt(_):
        raise KeyboardInterrupt

    import pytest as _pytest
    with _pytest.MonkeyPatch.context() as mp:
        mp.setattr(study.time, "sleep", interrupt)
        with _pytest.raises(KeyboardInterrupt):
            study._wait_all([Proc(), Proc()])
    assert signals == [signal.SIGINT, signal.SIGINT]


def test_a_failed_baseline_does_not_stop_the_shard(monkeypatch, registry):
    """A diverged student is skipped (the registry marks it failed); the shard trains the rest, then says which."""
    trained = []

    diverging = experiments.plan_run_id(study.study_configs("smoke")["KD s1"])

    def fake_get_or_train(cfg, **kwargs):
        if experiments.plan_run_id(cfg) == diverging:
            raise study.TrainingDiverged("loss became nan")
        trained.append(cfg)

    monkeypatch.setattr(study, "get_or_train", fake_get_or_train)
    monkeypatch.setattr(study, "_wait_for", lambda *a, **k: None)
    with pytest.raises(study.RunFailedError, match="1 run\\(s\\) of shard 0 failed.*KD s1"):
        study.run_shard("smoke", registry=registry, progress=False, log=lambda m: None, data=object())
    distinct = {experiments.plan_run_id(c) for c in study.study_configs("smoke").values()}
    assert len(trained) == len(distinct) - 1
