"""Training the four configurations through the registry: what is trained, what stays frozen, reuse,
resume, determinism, and the errors around a student's teacher."""

import os
import subprocess
import sys

import pytest
import torch

import prkd
from conftest import InterruptAfter
from prkd.learning import loop as loop_module
from prkd.learning import train as train_module
from prkd.config import ConfigError
from prkd.data import load_splits
from prkd.registry import Run, RunNotFoundError
from prkd.learning import get_or_train, teacher_config

TINY = dict(n_train=64, n_val=32, n_test=32, batch_size=16, epochs=2)


@pytest.fixture(scope="module")
def tiny_data():
    return load_splits(prkd.make("smoke", **TINY).data, download=False)


def _cfg(mode, **kw):
    extra = dict(alpha=0.5, beta=0.25, teacher_masks=3) if mode == "student" else {}
    return prkd.make("smoke", mode=mode, **{**TINY, **extra, **kw})


def _state(run):
    return torch.load(run.model_file, weights_only=True)["state_dict"]


def _quiet(**kw):
    return dict(progress=False, log=lambda msg: None, **kw)


@pytest.mark.parametrize("mode, L", [("teacher", 3), ("e2e", 1)])
def test_e2e_modes_train_phi_psi_and_theta(mode, L, tiny_data, registry):
    cfg = _cfg(mode, n_masks=L)
    initial = prkd.PRSystem(cfg).state_dict()
    trained = _state(get_or_train(cfg, registry=registry, data=tiny_data, **_quiet()))
    for name in ("sensing.phi", "init.filter.psi", "unet.head.weight"):
        assert not torch.equal(initial[name], trained[name]), f"{name} did not change"


def test_random_mode_keeps_phi_and_psi_at_their_initialisation(tiny_data, registry):
    cfg = _cfg("random")
    initial = prkd.PRSystem(cfg).state_dict()
    trained = _state(get_or_train(cfg, registry=registry, data=tiny_data, **_quiet()))
    assert torch.equal(initial["sensing.phi"], trained["sensing.phi"])
    assert torch.equal(initial["init.filter.psi"], trained["init.filter.psi"])
    assert not torch.equal(initial["unet.head.weight"], trained["unet.head.weight"])


def test_every_mode_lowers_its_training_loss(tiny_data, registry):
    for mode in ("teacher", "e2e", "random", "student"):
        run = get_or_train(_cfg(mode, epochs=3, n_masks=3 if mode == "teacher" else 1), registry=registry,
                           data=tiny_data, **_quiet())
        losses = [row["loss"] for row in run.history()]
        assert len(losses) == 3 and losses[-1] < losses[0], (mode, losses)


def test_student_trains_its_teacher_first_and_leaves_it_unchanged(tiny_data, monkeypatch, registry):
    messages = []
    cfg = _cfg("student")
    teacher_run = registry.run_for(teacher_config(cfg))
    assert not teacher_run.is_complete
    loaded = []
    original = Run.load_system
    monkeypatch.setattr(Run, "load_system", lambda self,
                        device="cpu": loaded.append(original(self, device)) or loaded[-1])
    student = get_or_train(cfg, registry=registry, data=tiny_data, progress=False, log=messages.append)
    assert any("training it first" in m and teacher_run.id in m for m in messages)
    assert teacher_run.is_complete and student.teacher_id() == teacher_run.id
    teacher = loaded[-1]
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    saved = _state(teacher_run)
    for name, value in teacher.state_dict().items():
        assert torch.equal(value, saved[name]), f"teacher's {name} changed while the student trained"
    student_state = _state(student)
    assert not torch.equal(student_state["sensing.phi"], prkd.PRSystem(cfg).state_dict()["sensing.phi"])


def test_a_complete_run_is_returned_without_training(tiny_data, monkeypatch, registry):
    cfg = _cfg("e2e")
    first = get_or_train(cfg, registry=registry, data=tiny_data, **_quiet())
    stamp = first.metrics_file.stat().st_mtime_ns

    def must_not_train(*args, **kwargs):
        raise AssertionError("a complete run was trained again")

    monkeypatch.setattr(train_module, "new_fit", must_not_train)
    again = get_or_train(cfg, registry=registry, data=tiny_data, **_quiet())
    assert again == first and again.metrics_file.stat().st_mtime_ns == stamp
    assert [r.id for r in registry.runs(mode="e2e", complete=True)] == [first.id]


@pytest.mark.parametrize("interrupt_after", [2, 4, 5])  # mid-epoch, at the end of epoch 1, early in epoch 2
def test_an_interrupted_run_resumes_to_the_same_result(interrupt_after, tiny_data, tmp_path,
                                                       monkeypatch, registry):
    cfg = _cfg("e2e")
    reference = get_or_train(cfg, registry=registry, data=tiny_data, **_quiet())
    ref_state, ref_metrics = _state(reference), reference.metrics()

    registry = prkd.open_registry(tmp_path / "interrupted")
    with monkeypatch.context() as patch:
        patch.setattr(loop_module, "InterruptFlag", InterruptAfter(interrupt_after))
        with pytest.raises(train_module.TrainingInterrupted, match="Run the same command .* again to resume"):
            get_or_train(cfg, registry=registry, data=tiny_data, **_quiet())
    run = registry.run_for(cfg)
    assert run.checkpoint_file.is_file() and not run.is_complete
    resumed = get_or_train(cfg, registry=registry, data=tiny_data, **_quiet())
    assert resumed.is_complete and not resumed.checkpoint_file.exists()
    for name, value in _state(resumed).items():
        assert torch.equal(value, ref_state[name]), name
    for key in ("test_psnr", "test_ssim", "val_psnr", "val_ssim"):
        assert resumed.metrics()[key] == ref_metrics[key]
    assert [r["loss"] for r in resumed.history()] == [r["loss"] for r in reference.history()]


def test_same_config_and_seed_give_identical_weights_and_metrics(tiny_data, tmp_path, monkeypatch, registry):
    cfg = _cfg("e2e", seed=7)
    a = get_or_train(cfg, registry=registry, data=tiny_data, **_quiet())
    registry = prkd.open_registry(tmp_path / "second")
    b = get_or_train(cfg, registry=registry, data=tiny_data, **_quiet())
    assert a.path != b.path and a.id == b.id
    for name, value in _state(a).items():
        assert torch.equal(value, _state(b)[name]), name
    keys = ("test_psnr", "test_ssim")
    assert {k: a.metrics()[k] for k in keys} == {k: b.metrics()[k] for k in keys}
    c = get_or_train(_cfg("e2e", seed=8), registry=registry, data=tiny_data, **_quiet())
    assert c.id != a.id and not torch.equal(_state(c)["sensing.phi"], _state(a)["sensing.phi"])


def test_run_ids_cover_the_whole_config(registry):
    ids = {registry.run_for(c).id for c in (_cfg("e2e"), _cfg("e2e", lr=1e-3), _cfg("e2e", T=5),
                                            _cfg("random"),
                                          _cfg("teacher", n_masks=3), _cfg("e2e", noise="gaussian"))}
    assert len(ids) == 6
    assert registry.run_for(_cfg("student"), "t1").id != registry.run_for(_cfg("student"), "t2").id


def test_student_refuses_a_missing_or_mismatched_teacher(tiny_data, registry):
    with pytest.raises(RunNotFoundError, match="run 'no-such-run' does not exist"):
        get_or_train(_cfg("student"), registry=registry, teacher_run="no-such-run",
                     data=tiny_data, **_quiet())
    other = get_or_train(prkd.make("smoke", mode="teacher", n_masks=2, image_size=24, n_train=32, n_val=16,
                                   n_test=16, batch_size=16, epochs=1), registry=registry, **_quiet())
    with pytest.raises(ConfigError, match="image_size=24 but the student has image_size=16"):
        get_or_train(_cfg("student"), registry=registry, teacher_run=other.id, data=tiny_data, **_quiet())
    wide = get_or_train(_cfg("teacher", n_masks=2, unet_width=4, epochs=1), registry=registry,
                        data=tiny_data, **_quiet())
    with pytest.raises(ConfigError, match="unet_width=4 but the student has unet_width=8"):
        get_or_train(_cfg("student"), registry=registry, teacher_run=wide.id, data=tiny_data, **_quiet())
    not_a_teacher = get_or_train(_cfg("e2e", epochs=1), registry=registry, data=tiny_data, **_quiet())
    with pytest.raises(ConfigError, match="is a 'e2e' run, not a teacher"):
        get_or_train(_cfg("student"), registry=registry, teacher_run=not_a_teacher.id,
                     data=tiny_data, **_quiet())


def test_explicit_teacher_run_is_used(tiny_data, registry):
    teacher = get_or_train(_cfg("teacher", n_masks=2, epochs=1), registry=registry,
                           data=tiny_data, **_quiet())
    student = get_or_train(_cfg("student"), registry=registry, teacher_run=teacher.id,
                           data=tiny_data, **_quiet())
    assert student.teacher_id() == teacher.id and registry.find(student.id) == student


def test_alpha_beta_belong_to_the_student():
    with pytest.raises(ConfigError, match="apply only to mode 'student'"):
        prkd.make("smoke", mode="e2e", alpha=0.5)


def _cli(*args, env_dir):
    """``python -m prkd ...`` in a real child process (the end-to-end test of the command line)."""
    env = {**os.environ, "PRKD_OUTPUT_DIR": str(env_dir)}
    return subprocess.run([sys.executable, "-m", "prkd", *args], capture_output=True, text=True, env=env)


@pytest.mark.real_data
def test_command_line_trains_and_reuses_a_run(tmp_path):
    args = ["train", "--mode", "random", "--preset", "smoke", "--set", "n_train=32", "n_val=16", "n_test=16",
            "batch_size=16", "epochs=1"]
    first = _cli(*args, env_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "run folder:" in first.stdout and "random-L1-smoke-s0-" in first.stdout
    again = _cli(*args, env_dir=tmp_path)
    assert again.returncode == 0 and "is complete: taken from the registry" in again.stdout
    assert again.stdout.splitlines()[-2:] == first.stdout.splitlines()[-2:]
    listed = _cli("runs", env_dir=tmp_path)
    assert "random-L1-smoke-s0-" in listed.stdout and "complete" in listed.stdout


@pytest.mark.parametrize("args, message", [
    (["--mode", "e2e", "--preset", "smoke", "--alpha", "0.5"], "--alpha applies only to --mode student"),
    (["--mode", "student", "--preset", "smoke", "--alpha", "0.8", "--beta", "0.5"],
     "'alpha' + 'beta' must be <= 1"),
    (["--mode", "teacher", "--preset", "smoke", "--L", "0"], "'n_masks' must be an integer in [1, 64]"),
    (["--mode", "wizard", "--preset", "smoke"], "invalid choice: 'wizard'"),
    (["--mode", "e2e", "--preset", "smoke", "--set", "epochz=2"], "unknown config field(s) 'epochz'"),
])
def test_command_line_refuses_bad_arguments(args, message, tmp_path, prkd_cli):
    result = prkd_cli("train", *args, root=tmp_path)
    # SystemExit(2), not a return
    by_argparse = message.startswith("invalid choice") or "applies only to" in message
    assert result.returncode == 2 and result.exited == by_argparse and message in result.stderr, result
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_step_log_reads_terms_in_batches_and_names_the_first_non_finite_step():
    """No run is passed: the step log writes no files (get_or_train marks a diverged run failed)."""
    from prkd.learning.loop import StepLog, TrainingDiverged
    sums: dict = {}
    log = StepLog(sums, every=4)
    good = {"task": torch.tensor(1.0), "penalty": torch.tensor(0.0), "loss": torch.tensor(1.0)}
    assert [log.add(0, s, good) for s in range(4)] == [False, False, False, True]
    assert sums == {"task": 4.0, "penalty": 0.0, "loss": 4.0} and log.last["loss"] == 1.0
    bad = {**good, "task": torch.tensor(float("nan")), "loss": torch.tensor(float("nan"))}
    log.add(1, 0, good)
    log.add(1, 1, bad)  # queued: not read yet
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 2 \(non-finite term: L_task\)") as caught:
        log.flush()
    assert (caught.value.epoch, caught.value.step, caught.value.terms) == (2, 2, ["L_task"])
    assert sums["loss"] == 5.0  # the good step before it was counted, the bad one not
