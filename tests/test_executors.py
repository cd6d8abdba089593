"""The executors of a plan (prkd.execution.executors): one interface, in this process and in a local
process pool. A task runs after its inputs and gets their results; a failed input fails its dependents
without running them; of the ready tasks, the highest priority first; pool workers start with their thread
and allocator settings; an interrupt reaches the workers; a plan trains each run once in the pool, with the
in-process results, under the same failure rule as every executor. (The Dask executor: tests/test_dask.py.)"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import torch

import prkd
from prkd.execution.executors import DependencyFailed, InProcess, ProcessPool, executor_for
from prkd.execution.graph import PlanGraph, run_plan
from prkd.registry import Registry
from prkd.utils.allocator import TUNABLES, allocator_env
from plan_helpers import (assert_only_its_dependents_skipped, assert_same_as_in_process, damage_a_teacher,
                          two_teacher_plan)

def _join(*parts):
    return "+".join(str(p) for p in parts)


def _fail(*_):
    raise ValueError("this task fails")


def _settings():
    return (os.getpid(), os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads(),
            os.environ.get("GLIBC_TUNABLES"))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would


def _wait_for_interrupt(marker: str) -> str:
    """Sleeps until SIGINT arrives (KeyboardInterrupt), then leaves ``marker`` as a run would leave a
    checkpoint."""
    try:
        time.sleep(60)
        return "not interrupted"
    except KeyboardInterrupt:
        with open(marker, "w") as f:
            f.write("checkpoint")
        raise


@pytest.fixture(scope="module")
def pool():
    with ProcessPool(2, torch_threads=1) as executor:
        yield executor


def _drain(executor, futures, started=None) -> list:
    return list(executor.as_completed(futures, started=started))


@pytest.mark.parametrize("kind", ["in-process", "pool"])
def test_a_task_gets_its_inputs_results_and_a_failed_input_fails_its_dependents(kind, pool):
    executor = InProcess() if kind == "in-process" else pool
    a = executor.submit(_join, "a", key="a")
    b = executor.submit(_join, a, "b", key="b")
    bad = executor.submit(_fail, key="bad")
    orphan = executor.submit(_join, bad, key="orphan")
    grand = executor.submit(_join, orphan, key="grand")
    done = _drain(executor, [a, b, bad, orphan, grand])
    assert set(done) == {a, b, bad, orphan, grand}
    assert b.result() == "a+b" and isinstance(bad.exception(), ValueError)
    assert isinstance(orphan.exception(), DependencyFailed)
    assert "its input bad failed" in str(orphan.exception())
    assert "its input orphan failed" in str(grand.exception())


def test_in_process_runs_inputs_first_then_by_priority():
    executor, started = InProcess(), []
    low = executor.submit(_join, "low", key="low", priority=1)
    high = executor.submit(_join, "high", key="high", priority=5)
    after_low = executor.submit(_join, low, key="after-low", priority=9)
    _drain(executor, [low, high, after_low], started=started.append)
    assert started == ["high", "low", "after-low"]


def test_in_process_lets_an_interrupt_stop_the_plan():
    executor = InProcess()

    def interrupted():
        raise KeyboardInterrupt
    futures = [executor.submit(interrupted, key="x"), executor.submit(_join, "y", key="y")]
    with pytest.raises(KeyboardInterrupt):
        _drain(executor, futures)


def test_a_pool_of_one_starts_the_highest_priority_ready_task_first():
    with ProcessPool(1, torch_threads=1) as executor:
        started = []
        futures = [executor.submit(_join, name, key=name, priority=p) for name,
                   p in (("c", 1), ("a", 3), ("b", 2))]
        _drain(executor, futures, started=started.append)
    assert started == ["a", "b", "c"]


def test_pool_workers_start_with_their_thread_and_allocator_settings(pool):
    futures = [pool.submit(_settings, key=f"s{i}") for i in range(4)]
    _drain(pool, futures)
    for pid, omp, threads, tunables in (f.result() for f in futures):
        assert pid in pool.pids and pid != os.getpid()
        assert omp == "1" and threads == 1 and tunables == (TUNABLES if allocator_env({}) else None)


def test_an_interrupt_of_the_caller_reaches_the_workers(tmp_path):
    marker = tmp_path / "checkpoint"
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, whatever ran before
    try:
        with pytest.raises(KeyboardInterrupt):
            with ProcessPool(1, torch_threads=1) as executor:
                future = executor.submit(_wait_for_interrupt, str(marker), key="long")
                main = threading.main_thread().ident  # SIGINT to this process's main thread, as Ctrl-C would
                threading.Timer(3.0, signal.pthread_kill, (main, signal.SIGINT)).start()
                _drain(executor, [future])
    finally:
        signal.signal(signal.SIGINT, handler)
    assert marker.read_text() == "checkpoint"


def test_a_worker_that_dies_fails_its_task_and_the_later_ones_without_a_traceback():
    from concurrent.futures.process import BrokenProcessPool
    with ProcessPool(1, torch_threads=1) as executor:
        dead = executor.submit(_die, key="dies", priority=2)
        later = executor.submit(_join, "later", key="later", priority=1)
        assert set(_drain(executor, [dead, later])) == {dead, later}
    assert isinstance(dead.exception(), BrokenProcessPool)
    assert isinstance(later.exception(), BrokenProcessPool)


@pytest.mark.parametrize("processes", [0, -1, 65, 1.5, "2", True])
def test_a_bad_number_of_processes_is_refused_naming_the_option(processes):
    with pytest.raises(prkd.ConfigError, match=r"'processes' must be an integer in \[1, 64\]"):
        ProcessPool(processes)


def test_at_most_one_executor_option():
    with pytest.raises(prkd.ConfigError, match="at most one of 'processes', 'workers' and 'scheduler'"):
        executor_for(processes=2, workers=2)
    with executor_for() as executor:
        assert isinstance(executor, InProcess)


def test_a_pool_trains_each_run_once_with_the_in_process_results(pool, tmp_path):
    graph = two_teacher_plan()
    in_pool = run_plan(graph, Registry.open(tmp_path / "pool"), executor=pool, progress=False,
                       log=lambda m: None)
    assert in_pool.ok and set(in_pool.complete) == set(graph.tasks), in_pool.summary()
    for run in in_pool.complete.values():
        kinds = [e["event"] for e in run.events()]
        assert kinds.count("started") == 1 and kinds[-1] == "completed", (run.id, kinds)
        assert run.events()[0]["pid"] in pool.pids
    assert_same_as_in_process(in_pool, graph, tmp_path / "here")


@pytest.mark.parametrize("kind", ["in-process", "pool"])
def test_a_run_that_fails_is_reported_and_only_its_dependents_skipped(kind, pool, tmp_path):
    graph = two_teacher_plan()
    registry = Registry.open(tmp_path)
    teacher = damage_a_teacher(graph, registry)
    executor = InProcess() if kind == "in-process" else pool
    outcome = run_plan(graph, registry, executor=executor, progress=False, log=lambda m: None)
    assert_only_its_dependents_skipped(outcome, graph, teacher)


def test_a_device_or_data_for_workers_is_refused_not_ignored(pool, registry):
    graph = PlanGraph.from_configs({"e2e": prkd.make("smoke", mode="e2e")})
    with pytest.raises(prkd.ConfigError, match="'device' and 'data' apply only to training in this process"):
        run_plan(graph, registry, executor=pool, device="cpu", data=object())
