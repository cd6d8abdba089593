"""Plans as graphs of runs (prkd.execution.graph) on the Dask executor (prkd.execution.dask_runner): a
LocalCluster of 2 single-threaded workers trains each run once, with the in-process plan's results; a worker
killed mid-run loses nothing; a run that fails for its own reasons is reported, not retried, and only its
dependents are skipped; the in-process default needs no Dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch

import prkd
from prkd.execution.dask_runner import DaskExecutor, connect, local_cluster
from prkd.execution.executors import executor_for
from prkd.execution.graph import run_plan
from prkd.registry import Registry
from prkd.utils.allocator import TUNABLES, allocator_env, worker_environ
from plan_helpers import (SMALL, assert_only_its_dependents_skipped, assert_same_as_in_process,
                          damage_a_teacher, two_teacher_plan)

distributed = pytest.importorskip("distributed")  # prkd[scale]; scripts/setup.sh installs it

@pytest.fixture(scope="module")
def client():
    cluster = local_cluster(2)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def run_on_client(graph, registry, client, **kwargs):
    with DaskExecutor(client=client) as executor:
        return run_plan(graph, registry, executor=executor, **kwargs)


def test_the_graph_puts_teachers_first_and_adds_the_ones_a_student_implies():
    graph = two_teacher_plan()
    modes = [t.cfg.train.mode for t in graph.tasks.values()]
    assert modes == ["teacher", "teacher", "student", "student"]
    teachers = [rid for rid, t in graph.tasks.items() if t.cfg.train.mode == "teacher"]
    assert {t.teacher for t in graph.tasks.values() if t.teacher} == set(teachers)
    # implied by its student
    assert graph.names[teachers[0]] == [] and graph.label(teachers[0]) == teachers[0]


def test_a_two_worker_cluster_trains_each_run_once_with_the_in_process_results(client, tmp_path):
    graph = two_teacher_plan()
    on_dask = run_on_client(graph, Registry.open(tmp_path / "dask"), client, progress=False,
                            log=lambda m: None)
    assert on_dask.ok and set(on_dask.complete) == set(graph.tasks), on_dask.summary()
    pids = set()
    for run in on_dask.complete.values():
        kinds = [e["event"] for e in run.events()]
        assert kinds.count("started") == 1 and kinds[-1] == "completed", (run.id, kinds)
        pids.add(run.events()[0]["pid"])
    assert os.getpid() not in pids, "the runs were trained in the workers, not here"
    assert_same_as_in_process(on_dask, graph, tmp_path / "here")


def _kill_the_trainer_once_it_has_a_checkpoint(run_path, killed: list) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lock = run_path / "train.lock"
        if (run_path / "checkpoint.pt").is_file() and lock.is_file():
            pid = json.loads(lock.read_text())["pid"]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.05)


def test_a_worker_killed_mid_run_loses_nothing(client, tmp_path):
    graph = two_teacher_plan(epochs=12)
    registry = Registry.open(tmp_path)
    teacher = next(t for t in graph.tasks.values() if t.cfg.train.mode == "teacher"
                   and t.cfg.optics.n_masks == 3)
    killed = []
    killer = threading.Thread(target=_kill_the_trainer_once_it_has_a_checkpoint,
                              args=(registry.runs_dir / teacher.run_id, killed))
    killer.start()
    outcome = run_on_client(graph, registry, client, progress=False, log=lambda m: None)
    killer.join()
    assert killed, "the test never found the teacher mid-run"
    assert outcome.ok and set(outcome.complete) == set(graph.tasks), outcome.summary()
    events = outcome.complete[teacher.run_id].events()
    kinds = [e["event"] for e in events]
    assert kinds.count("started") == 1 and "recovered" in kinds and "resumed" in kinds, kinds
    assert kinds[-1] == "completed" and events[0]["pid"] == killed[0] != events[-1]["pid"]
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker


def test_a_run_that_fails_on_its_own_is_reported_and_only_its_dependents_skipped(client, tmp_path):
    graph = two_teacher_plan()
    registry = Registry.open(tmp_path)
    teacher = damage_a_teacher(graph, registry)
    outcome = run_on_client(graph, registry, client, progress=False, log=lambda m: None)
    assert_only_its_dependents_skipped(outcome, graph, teacher)


def test_workers_get_the_allocator_and_thread_settings_before_they_start(client):
    env = worker_environ(3)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3" and "MALLOC_TRIM_THRESHOLD_" not in env
    assert env.get("GLIBC_TUNABLES") == (TUNABLES if allocator_env({}) else None)

    def seen():
        return (os.environ.get("GLIBC_TUNABLES"), os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads(),
                os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    for tunables, omp, threads, trim in client.run(seen).values():
        assert tunables == (TUNABLES if allocator_env({}) else None) and omp == "1" and threads == 1
        assert trim is None


def test_bad_cluster_arguments_are_refused():
    with pytest.raises(prkd.ConfigError, match="'workers' must be an integer in \\[1, 256\\]"):
        local_cluster(0)
    with pytest.raises(prkd.ConfigError, match="exactly one of 'workers'"):
        DaskExecutor(workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(prkd.ConfigError, match="at most one of 'processes', 'workers' and 'scheduler'"):
        executor_for(workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(prkd.ConfigError, match="'scheduler': no scheduler answered at 'tcp://127.0.0.1:1' "
                                               "within 1 s"):
        connect("tcp://127.0.0.1:1", timeout=1)


@pytest.mark.parametrize("option, value, message", [
    ("--scheduler", "not-an-address", "'scheduler' must be a scheduler address such as tcp://HOST:8786; got "
                                      "'not-an-address'"),
    ("--workers", "0", "'workers' must be an integer in [1, 256]; got 0")])
def test_a_bad_executor_option_is_one_line_naming_it(option, value, message, prkd_cli, tmp_path):
    result = prkd_cli("plan", "--preset", "smoke", option, value, root=tmp_path)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_the_in_process_default_needs_no_dask(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        sys.modules["distributed"] = None   # as if prkd[scale] were not installed
        sys.modules["dask"] = None
        import prkd
        from prkd.execution.executors import executor_for
        from prkd.execution.graph import PlanGraph, run_plan
        graph = PlanGraph.from_configs({{"e2e": prkd.make("smoke", mode="e2e", **{SMALL!r})}})
        outcome = run_plan(graph, prkd.open_registry({str(tmp_path)!r}), progress=False, log=lambda m: None)
        assert outcome.ok, outcome.summary()
        try:
            executor_for(workers=2).__enter__()
        except prkd.ConfigError as err:
            print(err)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "prkd[scale]" in result.stdout


def test_the_command_line_trains_a_plan_on_a_local_cluster(tmp_path, monkeypatch, capsys):
    from prkd import reproduce
    from prkd.__main__ import main
    # smoke's own plan has ~50 runs
    monkeypatch.setattr(reproduce, "preset_plan", lambda preset: two_teacher_plan())
    assert main(["--output-dir", str(tmp_path), "plan", "--preset", "smoke", "--workers", "2"]) == 0
    assert "4 of 4 runs complete" in capsys.readouterr().out
    runs = Registry.open(tmp_path).runs()
    assert len(runs) == 4 and all([e["event"] for e in r.events()].count("started") == 1 for r in runs)
    assert main(["--output-dir", str(tmp_path), "plan", "--preset", "smoke", "--workers", "0"]) == 2
    assert "'workers' must be an integer in [1, 256]" in capsys.readouterr().err
