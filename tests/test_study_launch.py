"""The study's launch (prkd.experiments.study): shards started and stopped, bad input refused by the functions and
the command line, the wall time recorded. Nothing here trains: launch's worker processes are replaced by a stub."""

import json
import math
import signal

import pytest

from prkd import experiments
from prkd.experiments import study
from prkd.__main__ import main
from prkd.config import ConfigError


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
