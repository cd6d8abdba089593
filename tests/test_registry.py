"""The run registry shared by many processes (prkd.registry): one trainer per run, provenance, damage named.

The race and kill tests start real ``python -m prkd train`` processes on one registry and read what happened
from each run's ``events.jsonl``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict

import pytest

import prkd
from prkd.__main__ import main
from prkd.registry import (DamagedRunError, LockTimeout, OutputNotWritableError, Registry,
                           RunLock, default_root,
                           events, open_registry)
from prkd.registry.locks import Holder, _process_start
from prkd.learning import get_or_train

STUDENT_ARGS = ["train", "--mode", "student", "--teacher-L", "3", "--preset", "smoke"]


def _prkd(root, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "prkd", "--output-dir", str(root), *args],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _kinds(run) -> list[str]:
    return [e["event"] for e in run.events()]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _write_lock(folder, holder: Holder, age_s: float = 0.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / "train.lock"
    lock.write_text(json.dumps(asdict(holder)))
    if age_s:
        os.utime(lock, (time.time() - age_s, time.time() - age_s))


def _holder(pid: int, host: str | None = None, start: str | None = None) -> Holder:
    return Holder(host=host or socket.gethostname(), pid=pid, process_start=start,
                  time="2026-01-01T00:00:00+0000",
                  token=f"token-{pid}")


def test_two_processes_racing_for_a_student_train_each_run_once_and_share_it(tmp_path):
    registry = Registry.open(tmp_path)
    procs = [_prkd(tmp_path, *STUDENT_ARGS) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    runs = registry.runs()
    assert sorted(r.config().train.mode for r in runs) == ["student", "teacher"]
    pids = {p.pid for p in procs}
    for run in runs:
        kinds = _kinds(run)
        assert kinds.count("started") == 1 and kinds.count("completed") == 1, (run.id, kinds)
        trainer = next(e["pid"] for e in run.events() if e["event"] == "started")
        waiters = {e["pid"] for e in run.events() if e["event"] == "waited"}
        assert trainer in pids and waiters <= pids - {trainer}, (run.id, run.events())
        assert not (run.path / "train.lock").exists()
    # the waiting process was told, and both report the same student
    assert any("waiting for it to finish" in out for out in outputs)
    final = [[line for line in out.splitlines() if line.startswith("run student-")
              and ": test PSNR" in line][-1]
             for out in outputs]
    assert final[0] == final[1]


def test_a_holder_killed_with_sigkill_is_taken_over_and_its_run_resumed(tmp_path):
    registry = Registry.open(tmp_path)
    # 12 epochs: the holder is still training when the test sees its first checkpoint (an epoch lasts many
    # polls), and the second process has little left to resume
    args = ["train", "--mode", "e2e", "--preset", "smoke", "--set", "epochs=12"]
    cfg = prkd.make("smoke", mode="e2e", epochs=12)
    run = registry.run_for(cfg)
    holder = _prkd(tmp_path, *args)
    deadline = time.monotonic() + 120
    while not run.checkpoint_file.is_file():
        assert holder.poll() is None
        assert time.monotonic() < deadline, "the first process ended before a checkpoint"
        time.sleep(0.05)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (run.path / "train.lock").is_file(), "a killed holder leaves its lock behind"
    assert RunLock(run.path).current() is None, "a lock of a dead pid reads as free"
    second = _prkd(tmp_path, *args)
    out = second.communicate(timeout=300)[0]
    assert second.returncode == 0, out
    kinds = _kinds(run)
    assert kinds[0] == "started" and kinds.count("started") == 1, kinds
    assert kinds[1:3] == ["recovered", "resumed"] and kinds[-1] == "completed", kinds
    recovered = run.events()[1]
    assert recovered["pid"] == second.pid and f":{holder.pid} since" in recovered["holder"]
    assert run.events()[2]["epoch"] >= 2 and "resuming run" in out
    assert run.is_complete and not (run.path / "train.lock").exists()


def test_a_stale_lock_of_a_dead_pid_is_recovered(tmp_path):
    dead = _dead_pid()
    _write_lock(tmp_path / "run", _holder(dead))
    lock = RunLock(tmp_path / "run")
    assert lock.current() is None
    with lock.acquire(log=lambda m: None):
        assert lock.recovered is not None and lock.recovered.pid == dead
        assert json.loads((tmp_path / "run" / "train.lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / "run" / "train.lock").exists()


def test_a_live_holder_makes_others_wait_with_a_message(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(tmp_path / "run", _holder(sleeper.pid, start=_process_start(sleeper.pid)))
        said = []
        with pytest.raises(LockTimeout, match=f":{sleeper.pid} since"):
            RunLock(tmp_path / "run").acquire(log=said.append, poll_s=0.05, timeout_s=0.3)
        assert len(said) == 1 and f"being trained by {socket.gethostname()}:{sleeper.pid}" in said[0]
    finally:
        sleeper.kill()
        sleeper.wait()
    assert RunLock(tmp_path / "run").try_acquire()  # free once the holder is gone


def test_a_reused_pid_does_not_keep_a_lock(tmp_path):
    # this pid, but another process's start time
    _write_lock(tmp_path / "run", _holder(os.getpid(), start="1"))
    assert _process_start(os.getpid()) not in (None, "1")
    assert RunLock(tmp_path / "run").current() is None


@pytest.mark.parametrize("age_s, held", [(30.0, True), (3600.0, False)])
def test_a_lock_of_another_host_is_stale_only_once_its_heartbeat_stops(tmp_path, age_s, held):
    _write_lock(tmp_path / "run", _holder(1, host="some-other-node"), age_s=age_s)
    assert (RunLock(tmp_path / "run").current() is not None) is held
    assert RunLock(tmp_path / "run").try_acquire() is not held


def test_the_holder_refreshes_its_lock_and_leaves_a_lock_it_no_longer_owns(tmp_path):
    lock = RunLock(tmp_path / "run", heartbeat_s=0.05)
    assert lock.try_acquire()
    os.utime(lock.path, (1, 1))
    time.sleep(0.3)
    assert time.time() - lock.path.stat().st_mtime < 5, "the heartbeat did not refresh the lock"
    # someone else's now
    _write_lock(tmp_path / "run", _holder(os.getpid(), start=_process_start(os.getpid())))
    lock.release()
    assert lock.path.exists(), "release removed a lock that another holder had taken"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A registry with two finished smoke runs (E2E and random)."""
    registry = Registry.open(tmp_path_factory.mktemp("registry"))
    quiet = {"progress": False, "log": lambda m: None}
    return registry, [get_or_train(prkd.make("smoke", mode=mode), registry=registry, **quiet)
                      for mode in ("e2e", "random")]


def _copy_registry(two_runs, tmp_path) -> tuple[Registry, list]:
    import shutil
    registry, runs = two_runs
    shutil.copytree(registry.root, tmp_path / "copy")
    copy = Registry.open(tmp_path / "copy")
    return copy, [copy.find(r.id) for r in runs]


@pytest.mark.parametrize("damage, file", [
    (lambda run: run.metrics_file.write_text(run.metrics_file.read_text()[:40]), "metrics.json"),
    (lambda run: run.config_file.write_text("{}"), "config.json"),
    (lambda run: run.config_file.write_text('{"config": {"preset": "smoke", "train": {"seed": 5}}}'),
     "config.json"),
])
def test_a_damaged_run_is_named_in_the_listing_and_refused_on_load(two_runs, tmp_path, capsys, damage, file):
    registry, (bad, good) = _copy_registry(two_runs, tmp_path)
    damage(bad)
    assert main(["--output-dir", str(registry.root), "runs"]) == 0
    out = capsys.readouterr().out
    assert f"{bad.id}  damaged: {file}" in out and "delete the folder" in out
    assert f"{good.id}  complete" in out and "started" in out
    assert [r.id for r in registry.runs()] == [good.id]
    with pytest.raises(DamagedRunError, match=f"{file}.*delete the folder"):
        bad.load_system() if file == "config.json" else bad.metrics()
    cfg = prkd.make("smoke", mode="e2e")
    with pytest.raises(DamagedRunError, match=file):
        get_or_train(cfg, registry=registry, progress=False, log=lambda m: None)
    assert main(["--output-dir", str(registry.root), "train", "--mode", "e2e", "--preset", "smoke"]) == 2
    assert f"{file}" in capsys.readouterr().err and bad.path.is_dir()  # named, and nothing deleted


def test_a_config_copied_from_another_run_is_refused(two_runs, tmp_path):
    registry, (e2e, random_run) = _copy_registry(two_runs, tmp_path)
    e2e.config_file.write_text(random_run.config_file.read_text())
    assert "config.json describes run random-" in e2e.problem()
    with pytest.raises(DamagedRunError, match="not " + e2e.id):
        e2e.config()


def test_events_are_one_json_object_a_line_and_a_torn_line_is_skipped(tmp_path):
    events.record(tmp_path, "started", device="cpu")
    with open(tmp_path / "events.jsonl", "a") as fh:
        fh.write('{"event": "resum')  # a crash mid-write
    events.record(tmp_path, "completed", test_psnr=12.5)
    read = events.read(tmp_path)
    assert [e["event"] for e in read] == ["started", "completed"]
    assert all({"event", "host", "pid", "time", "run_id"} <= set(e) for e in read)
    line = events.summary(read)
    assert line.startswith(f"started {read[0]['time'][:10]}") and "completed" in line
    with pytest.raises(ValueError, match="must be one of"):
        events.record(tmp_path, "finished")


def test_the_output_root_is_chosen_in_one_place(tmp_path, monkeypatch):
    from prkd.registry import store
    assert default_root({"PRKD_OUTPUT_DIR": str(tmp_path)}) == (tmp_path, "PRKD_OUTPUT_DIR")
    root, why = default_root({})
    assert root == store.REPO_ROOT / "outputs" and why == "the repository checkout"
    monkeypatch.setattr(store, "REPO_ROOT", tmp_path / "site-packages")  # an installed package: no checkout
    root, why = default_root({"XDG_DATA_HOME": str(tmp_path / "data")})
    assert root == tmp_path / "data" / "prkd" and "PRKD_OUTPUT_DIR" in why
    monkeypatch.delenv("PRKD_OUTPUT_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    said = []
    assert open_registry(log=said.append).root == tmp_path / "data" / "prkd"
    assert len(said) == 1 and "installed as a package" in said[0]


def test_an_unwritable_root_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputNotWritableError, match="file.*cannot be written.*PRKD_OUTPUT_DIR"):
        Registry.open(blocker / "outputs")
