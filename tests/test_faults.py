"""Reliability: SIGKILL at many points and resume to the same result, atomic files, NaN stops and safe
loading. The bad inputs (at least 15 kinds, each one clear error that destroys nothing) are in
tests/test_bad_input.py.

The kill and Ctrl-C tests start real processes (a signal must hit a whole interpreter); the bad-input tests
call the command line in this process (``prkd_cli``: ``prkd.__main__.main`` with its output captured)."""

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import prkd
from prkd.learning import loop as loop_module
from prkd.registry import CorruptCheckpointError, Run, load_checkpoint
from prkd.learning import RunFailedError, TrainingDiverged, get_or_train


TINY = dict(n_train=64, n_val=32, n_test=32, batch_size=16, epochs=2)
CHILD_CFG = "prkd.make('smoke', mode='e2e', n_train=64, n_val=32, n_test=32, batch_size=16, epochs=3)"


def _child(script: str, out_dir, timeout=120) -> subprocess.CompletedProcess:
    """Run a training script in a fresh interpreter (so SIGKILL really kills a whole process)."""
    env = {**os.environ, "PRKD_OUTPUT_DIR": str(out_dir)}
    code = ("import os, signal, prkd\nfrom prkd.learning import loop, train\n"
            "from prkd.utils import atomic\n") + script
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=timeout)


_KILL_HOOKS = {
    # inside a training step (the 3rd loss evaluation of the run)
    "mid-step": """
        calls = [0]
        original = loop.objective
        def objective(**kw):
            calls[0] += 1
            if calls[0] == {n}:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(**kw)
        loop.objective = objective
    """,
    # half-way through writing a file: the temporary file is half written, the target untouched
    # (only prkd.utils.atomic's writes are counted; events.jsonl's appends fsync too)
    "mid-write": """
        import sys
        calls = [0]
        original = atomic.os.fsync
        def fsync(fd):
            if sys._getframe(1).f_globals.get("__name__") == "prkd.utils.atomic":
                calls[0] += 1
                if calls[0] == {n}:
                    os.kill(os.getpid(), signal.SIGKILL)
            return original(fd)
        atomic.os.fsync = fsync
    """,
    # during validation
    "mid-evaluation": """
        calls = [0]
        original = loop.evaluate
        def evaluate(*a, **kw):
            calls[0] += 1
            if calls[0] == {n}:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*a, **kw)
        loop.evaluate = evaluate
    """,
}


def _assert_run_files_are_whole(run_dir):
    """Every visible file parses; only hidden temporary files may be partial."""
    for path in run_dir.iterdir():
        if path.name.startswith("."):
            continue
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".pt":
            load_checkpoint(path)
        elif path.suffix == ".csv":
            lines = path.read_text().splitlines()
            assert lines[0].startswith("epoch,")
            assert all(len(row.split(",")) == len(lines[0].split(",")) for row in lines)


def test_sigkill_at_many_points_then_resume_gives_the_uninterrupted_result(tmp_path):
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    done = _child(f"run = train.get_or_train({CHILD_CFG}, registry=prkd.open_registry(), "
                  "progress=False)\nprint(run.id)", reference_dir)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip().splitlines()[-1]
    # Kill points, in order (4 steps per epoch, 3 epochs; each process counts its own calls):
    #  1. epoch 1, step 3                      2. writing the first checkpoint (end of epoch 1)
    #  3. writing history.csv of epoch 1       4. epoch 2, step 3 (resumed from the epoch-1 checkpoint)
    #  5. validation of epoch 2                6. writing the epoch-3 checkpoint
    #  7. writing the final model.pt           8. writing metrics.json
    # (A resumed process first rewrites history.csv from its checkpoint: one more write to count.)
    points = [("mid-step", 3), ("mid-write", 1), ("mid-write", 2), ("mid-step", 3), ("mid-evaluation", 1),
              ("mid-write", 4), ("mid-write", 4), ("mid-write", 3)]
    progress = []
    for hook, n in points:
        result = _child(textwrap.dedent(_KILL_HOOKS[hook]).format(n=n)
                        + f"train.get_or_train({CHILD_CFG}, registry=prkd.open_registry(), progress=False)\n",
                        killed_dir)
        assert result.returncode == -signal.SIGKILL, (hook, n, result.stdout, result.stderr[-2000:])
        _assert_run_files_are_whole(killed_dir / "runs" / run_id)
        assert not (killed_dir / "runs" / run_id / "metrics.json").exists()
        progress.append(sorted(p.name for p in (killed_dir / "runs" / run_id).iterdir()
                               if not p.name.startswith(".")))
    # the kills landed where intended: checkpoint from kill 3 on, history from kill 4 on, model.pt before
    # kill 8
    assert "checkpoint.pt" not in progress[1] and "checkpoint.pt" in progress[2]
    assert "history.csv" not in progress[2]
    assert "history.csv" in progress[3] and "model.pt" not in progress[6] and "model.pt" in progress[7]
    final = _child(f"run = train.get_or_train({CHILD_CFG}, registry=prkd.open_registry(), "
                   "progress=False)\nprint(run.id)", killed_dir)
    assert final.returncode == 0, final.stderr
    ref, res = Run(reference_dir / "runs" / run_id), Run(killed_dir / "runs" / run_id)
    assert res.is_complete and not res.checkpoint_file.exists()
    # every killed holder left its lock; each next process broke it
    kinds = [e["event"] for e in res.events()]
    assert kinds.count("recovered") == len(points) and kinds[-1] == "completed" and "resumed" in kinds, kinds
    assert not [p.name for p in res.path.iterdir() if p.name.startswith(".")], "temporary files left behind"
    ref_state = load_checkpoint(ref.model_file)["state_dict"]
    for name, value in load_checkpoint(res.model_file)["state_dict"].items():
        assert torch.equal(value, ref_state[name]), name
    for key in ("test_psnr", "test_ssim", "val_psnr", "val_ssim"):
        assert res.metrics()[key] == ref.metrics()[key]
    assert res.history_file.read_text().count("\n") == ref.history_file.read_text().count("\n")


def test_ctrl_c_on_the_command_line_saves_a_checkpoint_and_says_how_to_resume(tmp_path):
    env = {**os.environ, "PRKD_OUTPUT_DIR": str(tmp_path)}
    args = [sys.executable, "-m", "prkd", "train", "--mode", "e2e", "--preset", "smoke",
            "--set", "n_train=64",
            "n_val=32", "n_test=32", "batch_size=16", "epochs=200"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while not list(tmp_path.glob("runs/*/checkpoint.pt")) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted at epoch" in err and "again to resume" in err
    checkpoint = next(tmp_path.glob("runs/*/checkpoint.pt"))
    state = load_checkpoint(checkpoint)
    assert state["epoch"] >= 1


def test_the_command_line_takes_sigint_back_when_a_background_shell_ignored_it():
    """A script's `... &` starts a process with SIGINT ignored; a plan's parent must still pass Ctrl-C on."""
    from prkd.__main__ import take_interrupts
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        take_interrupts()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        handler = lambda *a: None  # noqa: E731
        signal.signal(signal.SIGINT, handler)
        take_interrupts()  # a handler someone installed is left alone
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_nan_loss_stops_training_names_step_and_term_and_marks_the_run_failed(monkeypatch, registry):
    cfg = prkd.make("smoke", mode="e2e", **TINY)
    calls = [0]
    original = loop_module.task_loss

    def poisoned(x_hat, img):
        calls[0] += 1
        value = original(x_hat, img)
        return value * float("nan") if calls[0] == 6 else value  # epoch 2, step 2

    monkeypatch.setattr(loop_module, "task_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 2 \(non-finite term: L_task\)"):
        get_or_train(cfg, registry=registry, progress=False, log=lambda m: None)
    run = registry.run_for(cfg)
    assert run.is_failed and not run.is_complete
    failure = json.loads(run.failure_file.read_text())  # written by get_or_train, not by the step
    assert (failure["epoch"], failure["step"], failure["terms"]) == (2, 2, ["L_task"])
    assert [e["event"] for e in run.events()].count("failed") == 1
    state = load_checkpoint(run.checkpoint_file)  # the last good checkpoint: end of epoch 1
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    monkeypatch.setattr(loop_module, "task_loss", original)
    with pytest.raises(RunFailedError, match="failed earlier"):
        get_or_train(cfg, registry=registry, progress=False, log=lambda m: None)
    assert registry.runs(complete=True) == []


def test_malicious_checkpoint_cannot_execute_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "checkpoint.pt"
    with open(path, "wb") as fh:
        torch.save({"model": Exploit()}, fh, pickle_module=pickle)
    with pytest.raises(CorruptCheckpointError, match="nothing was loaded"):
        load_checkpoint(path)
    assert not marker.exists()


# ---------------------------------------------------------------- bad input: one clear error, nothing lost
