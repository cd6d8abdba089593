"""Reliability: SIGKILL at many points and resume to the same result, atomic files, NaN stops,
safe loading, and at least 15 kinds of bad input that each give one clear error and destroy nothing.

The kill and Ctrl-C tests start real processes (a signal must hit a whole interpreter); the bad-input tests call
the command line in this process (``prkd_cli``: ``prkd.__main__.main`` with its output captured)."""

import hashlib
import json
import math
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
from prkd.learning import step as step_module
from prkd.registry import CorruptCheckpointError, Run, load_checkpoint
from prkd.learning import RunFailedError, TrainingDiverged, get_or_train

from conftest import tiny_fashion_mnist

TINY = dict(n_train=64, n_val=32, n_test=32, batch_size=16, epochs=2)
CHILD_CFG = "prkd.make('smoke', mode='e2e', n_train=64, n_val=32, n_test=32, batch_size=16, epochs=3)"


def _child(script: str, out_dir, timeout=120) -> subprocess.CompletedProcess:
    """Run a training script in a fresh interpreter (so SIGKILL really kills a whole process)."""
    env = {**os.environ, "PRKD_OUTPUT_DIR": str(out_dir)}
    code = "import os, signal, prkd\nfrom prkd.learning import fit, step, train\nfrom prkd.utils import atomic\n" + script
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout)


_KILL_HOOKS = {
    # inside a training step (the 3rd loss evaluation of the run)
    "mid-step": """
        calls = [0]
        original = step.objective
        def objective(**kw):
            calls[0] += 1
            if calls[0] == {n}:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(**kw)
        step.objective = objective
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
        original = fit.evaluate
        def evaluate(*a, **kw):
            calls[0] += 1
            if calls[0] == {n}:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*a, **kw)
        fit.evaluate = evaluate
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
            assert lines[0].startswith("epoch,") and all(len(row.split(",")) == len(lines[0].split(",")) for row in lines)


def test_sigkill_at_many_points_then_resume_gives_the_uninterrupted_result(tmp_path):
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    done = _child(f"run = train.get_or_train({CHILD_CFG}, registry=prkd.open_registry(), progress=False)\nprint(run.id)", reference_dir)
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
        result = _child(textwrap.dedent(_KILL_HOOKS[hook]).format(n=n) + f"train.get_or_train({CHILD_CFG}, registry=prkd.open_registry(), progress=False)\n",
                        killed_dir)
        assert result.returncode == -signal.SIGKILL, (hook, n, result.stdout, result.stderr[-2000:])
        _assert_run_files_are_whole(killed_dir / "runs" / run_id)
        assert not (killed_dir / "runs" / run_id / "metrics.json").exists()
        progress.append(sorted(p.name for p in (killed_dir / "runs" / run_id).iterdir() if not p.name.startswith(".")))
    # the kills landed where intended: checkpoint from kill 3 on, history from kill 4 on, model.pt before kill 8
    assert "checkpoint.pt" not in progress[1] and "checkpoint.pt" in progress[2] and "history.csv" not in progress[2]
    assert "history.csv" in progress[3] and "model.pt" not in progress[6] and "model.pt" in progress[7]
    final = _child(f"run = train.get_or_train({CHILD_CFG}, registry=prkd.open_registry(), progress=False)\nprint(run.id)", killed_dir)
    assert final.returncode == 0, final.stderr
    ref, res = Run(reference_dir / "runs" / run_id), Run(killed_dir / "runs" / run_id)
    assert res.is_complete and not res.checkpoint_file.exists()
    kinds = [e["event"] for e in res.events()]  # every killed holder left its lock; each next process broke it
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
    args = [sys.executable, "-m", "prkd", "train", "--mode", "e2e", "--preset", "smoke", "--set", "n_train=64",
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


def test_a_nan_loss_stops_training_names_step_and_term_and_marks_the_run_failed(monkeypatch, registry):
    cfg = prkd.make("smoke", mode="e2e", **TINY)
    calls = [0]
    original = step_module.task_loss

    def poisoned(x_hat, img):
        calls[0] += 1
        value = original(x_hat, img)
        return value * float("nan") if calls[0] == 6 else value  # epoch 2, step 2

    monkeypatch.setattr(step_module, "task_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 2 \(non-finite term: L_task\)"):
        get_or_train(cfg, registry=registry, progress=False, log=lambda m: None)
    run = registry.run_for(cfg)
    assert run.is_failed and not run.is_complete
    state = load_checkpoint(run.checkpoint_file)  # the last good checkpoint: end of epoch 1
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    monkeypatch.setattr(step_module, "task_loss", original)
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

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A complete e2e run and a complete teacher, and a fingerprint of every file under the output folder."""
    root = tmp_path_factory.mktemp("finished")
    registry = prkd.open_registry(root)
    e2e = get_or_train(prkd.make("smoke", mode="e2e", **TINY), registry=registry, progress=False, log=lambda m: None)
    teacher = get_or_train(prkd.make("smoke", mode="teacher", n_masks=2, **TINY), registry=registry, progress=False,
                           log=lambda m: None)
    return root, e2e.id, teacher.id


def _fingerprint(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


SMOKE = ["--preset", "smoke", "--set", "n_train=64", "n_val=32", "n_test=32", "batch_size=16", "epochs=2"]

BAD_INPUTS = {
    "unknown config key": (["--mode", "e2e", *SMOKE, "learning_rate=1"], "unknown config field(s) 'learning_rate'"),
    "wrong type": (["--mode", "e2e", *SMOKE, "T=many"], "'T' must be an integer in [1, 10000]; got 'many'"),
    "alpha < 0": (["--mode", "student", "--alpha", "-0.1", *SMOKE], "'alpha' must be a number in [0, 1]"),
    "beta < 0": (["--mode", "student", "--beta", "-0.1", *SMOKE], "'beta' must be a number in [0, 1]"),
    "alpha + beta > 1": (["--mode", "student", "--alpha", "0.6", "--beta", "0.6", *SMOKE], "'alpha' + 'beta' must be <= 1"),
    "L < 1": (["--mode", "teacher", "--L", "0", *SMOKE], "'n_masks' must be an integer in [1, 64]"),
    "T < 1": (["--mode", "e2e", *SMOKE, "T=0"], "'T' must be an integer in [1, 10000]"),
    "even filter size": (["--mode", "e2e", *SMOKE, "filter_size=4"], "'filter_size' must be an odd integer"),
    "non-positive filter size": (["--mode", "e2e", *SMOKE, "filter_size=-3"], "'filter_size' must be an integer in [1, 31]"),
    "image size vs U-Net depth": (["--mode", "e2e", *SMOKE, "image_size=18"], "'image_size' must be a multiple of 2**(unet_depth-1) = 4"),
    "learning rate <= 0": (["--mode", "e2e", *SMOKE, "lr=0"], "'lr' must be a number in (0, 1]"),
    "batch size <= 0": (["--mode", "e2e", *SMOKE, "batch_size=0"], "'batch_size' must be an integer in [1, 65536]"),
    "epochs <= 0": (["--mode", "e2e", *SMOKE, "epochs=-1"], "'epochs' must be an integer in [1, 100000]"),
    "unknown preset": (["--mode", "e2e", "--preset", "huge"], "invalid choice: 'huge'"),
    "unknown mode": (["--mode", "wizard", *SMOKE], "invalid choice: 'wizard'"),
}
REFUSED_BY_ARGPARSE = {"unknown preset", "unknown mode"}  # SystemExit(2) from the parser; the others return 2


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_clear_error_and_destroys_nothing(case, finished, prkd_cli):
    root, _, _ = finished
    before = _fingerprint(root)
    args, message = BAD_INPUTS[case]
    result = prkd_cli("train", *args, root=root)
    assert result.returncode == 2 and result.exited == (case in REFUSED_BY_ARGPARSE), result
    assert message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert _fingerprint(root) == before


def test_missing_fashion_mnist_lists_the_ways_to_get_it(finished, tmp_path, monkeypatch, prkd_cli):
    import torchvision.datasets

    import prkd.data as data
    root, _, _ = finished
    before = _fingerprint(root)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")

    def offline(self):
        raise RuntimeError("no network")

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", offline)
    monkeypatch.delenv("PRKD_DATA_DIR", raising=False)
    monkeypatch.setenv("PRKD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # no ./data here
    result = prkd_cli("train", "--mode", "e2e", *SMOKE, "n_train=63", root=root)
    assert result.returncode == 2 and not result.exited, result.stderr[-2000:]
    for way in ("PRKD_DATA_DIR", "apt-get install dataset-fashion-mnist", "torchvision download"):
        assert way in result.stderr
    assert "Traceback" not in result.stderr
    new = set(_fingerprint(root)) - set(before)
    assert all(p.endswith("config.json") for p in new)  # at most the new run's config, nothing overwritten
    assert {k: v for k, v in _fingerprint(root).items() if k in before} == before


def test_corrupt_idx_file_is_named(finished, tmp_path, monkeypatch, prkd_cli):
    import prkd.data as data
    root, _, _ = finished
    bad = tmp_path / "bad-data"
    md5 = tiny_fashion_mnist(bad)  # tiny synthetic IDX files; prkd accepts them by their MD5s
    blob = bytearray((bad / "train-images-idx3-ubyte.gz").read_bytes())
    (bad / "train-images-idx3-ubyte.gz").write_bytes(bytes(blob[: len(blob) // 2]))
    for name, digest in md5.items():
        monkeypatch.setitem(data.FASHION_MNIST_MD5, name, digest)
    monkeypatch.setenv("PRKD_DATA_DIR", str(bad))
    monkeypatch.setenv("PRKD_CACHE_DIR", str(tmp_path / "cache"))
    result = prkd_cli("train", "--mode", "e2e", *SMOKE, "n_train=62", root=root)
    assert result.returncode == 2 and not result.exited
    assert "train-images-idx3-ubyte.gz" in result.stderr and "truncated" in result.stderr
    assert "Traceback" not in result.stderr


def test_student_pointed_at_a_missing_or_mismatched_teacher(finished, prkd_cli):
    root, e2e_id, teacher_id = finished
    before = _fingerprint(root)
    missing = prkd_cli("train", "--mode", "student", "--teacher-run", "teacher-L9-nope", *SMOKE, root=root)
    assert missing.returncode == 2 and "run 'teacher-L9-nope' does not exist" in missing.stderr
    mismatch = prkd_cli("train", "--mode", "student", "--teacher-run", teacher_id, *SMOKE[:2], "--set",
                        "image_size=24", "n_train=64", "n_val=32", "n_test=32", "batch_size=16", "epochs=2",
                        root=root)
    assert mismatch.returncode == 2 and "image_size=16 but the student has image_size=24" in mismatch.stderr
    assert not missing.exited and not mismatch.exited and "Traceback" not in missing.stderr + mismatch.stderr
    assert _fingerprint(root) == before


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_checkpoint_gives_a_clear_message_and_is_not_deleted(damage, tmp_path, monkeypatch, registry):
    cfg = prkd.make("smoke", mode="e2e", **TINY)
    run = registry.run_for(cfg)
    run.path.mkdir(parents=True)
    good = tmp_path / "good.pt"
    torch.save({"model": {}, "epoch": 1}, good)
    blob = good.read_bytes()[:50] if damage == "truncated" else b"not a checkpoint at all"
    run.checkpoint_file.write_bytes(blob)
    with pytest.raises(CorruptCheckpointError, match="checkpoint.pt is truncated, corrupt or not a prkd file"):
        get_or_train(cfg, registry=registry, progress=False, log=lambda m: None)
    assert run.checkpoint_file.read_bytes() == blob


def test_output_folder_that_cannot_be_written(tmp_path, prkd_cli):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = prkd_cli("train", "--mode", "e2e", *SMOKE, root=blocker / "outputs")
    assert result.returncode == 2 and not result.exited and "cannot be written" in result.stderr and "PRKD_OUTPUT_DIR" in result.stderr
    assert blocker.read_text() == "x"


def test_division_by_zero_is_guarded_in_the_normalisations():
    system = prkd.PRSystem(prkd.make("smoke"))
    z = system.initialize(torch.zeros(2, 1, 16, 16))  # an all-zero measurement
    assert torch.isfinite(torch.view_as_real(z)).all()
    from prkd.physics.spectral_init import SpectralInit
    init = SpectralInit(size=16, T=3)
    init.z0.zero_()  # a zero initial vector
    y = system.sensing(system.scene(torch.rand(2, 1, 16, 16)))
    assert torch.isfinite(torch.view_as_real(init(y, system.sensing))).all()
    from prkd.physics.optics import add_noise
    assert torch.isfinite(add_noise(torch.zeros(1, 1, 4, 4), kind="poisson", photons=10.0)).all()
    assert math.isfinite(float(prkd.metrics.correlation(torch.zeros(1, 4, 4, dtype=torch.complex64),
                                                        torch.ones(1, 4, 4, dtype=torch.complex64))))
