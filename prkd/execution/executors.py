"""Where a plan's runs train: one interface, three executors.

An executor has ``submit(fn, *args, key=..., priority=...)``, which returns a future, and
``as_completed(futures)``, which yields them as they finish. An argument that is a future of the same
executor is replaced by its result before ``fn`` runs (a student's task gets its teacher's run id), and
``fn`` never runs when that future failed: its own future fails with :class:`DependencyFailed`.
``prkd.execution.graph.run_plan`` submits a plan through any of them and applies one failure rule to what
comes back.

* :class:`InProcess` (the default): runs each task in this process, in the order submitted, while
  ``as_completed`` is iterated.
* :class:`ProcessPool`: a local pool of spawned worker processes, each with its share of the cores for torch
  (the study's default: two one-thread processes train about 2.9x faster than one two-thread process on a
  2-core CPU, measured in ``prkd.experiments.study``). A task starts once its inputs are done and a worker is
  free; of the tasks ready, the one of highest ``priority`` first.
* ``prkd.execution.dask_runner.DaskExecutor``: a ``distributed.Client`` (prkd[scale]), which resolves
  futures and priorities itself.

``executor_for(processes=, workers=, scheduler=)`` builds the one the command line's options name.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import itertools
import multiprocessing
import os
import signal
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

import torch

from prkd.config import ConfigError
from prkd.execution.dask_runner import DaskExecutor
from prkd.utils.allocator import worker_environ

__all__ = ["DependencyFailed", "Executor", "InProcess", "ProcessPool", "executor_for"]


class DependencyFailed(RuntimeError):
    """A task did not run because a future it takes as input failed."""


class Executor(Protocol):
    in_process: bool

    def submit(self, fn: Callable, *args, key: str, priority: int = 0): ...

    def as_completed(self, futures: list, started: Callable[[str], None] | None = None) -> Iterator: ...


class _KeyedFuture(cf.Future):
    """A future that knows the key of its task (``DependencyFailed`` names it)."""

    def __init__(self, key: str):
        super().__init__()
        self.key = key


@dataclass
class _Task:
    """A submitted task that has not started: its call, its future, and the order it came in."""

    fn: Callable
    args: tuple
    key: str
    priority: int
    order: int
    future: _KeyedFuture = field(init=False)

    def __post_init__(self):
        self.future = _KeyedFuture(self.key)

    def inputs(self) -> list[cf.Future]:
        return [a for a in self.args if isinstance(a, cf.Future)]

    def failed_input(self) -> str | None:
        """The key of a failed input, if any (``DependencyFailed`` names it)."""
        for arg in self.inputs():
            if arg.done() and arg.exception() is not None:
                return getattr(arg, "key", "an input")
        return None

    def ready(self) -> bool:
        return all(arg.done() for arg in self.inputs())

    def resolved_args(self) -> tuple:
        return tuple(a.result() if isinstance(a, cf.Future) else a for a in self.args)


class _Queue:
    """Submitted tasks not started yet, handed out by priority (then submission order) once their inputs are
    done; a task whose input failed is failed at once with DependencyFailed."""

    def __init__(self):
        self.waiting: list[_Task] = []
        self._count = itertools.count()

    def add(self, fn: Callable, args: tuple, key: str, priority: int) -> cf.Future:
        task = _Task(fn, args, key, priority, next(self._count))
        self.waiting.append(task)
        return task.future

    def next_ready(self) -> _Task | None:
        """The ready task to start next (None when none is ready); fails the tasks whose inputs failed
        first."""
        self.fail_orphans()
        ready = [t for t in self.waiting if t.ready()]
        if not ready:
            return None
        task = min(ready, key=lambda t: (-t.priority, t.order))
        self.waiting.remove(task)
        return task

    def fail_orphans(self) -> None:
        changed = True
        while changed:  # a failure may fail a chain of tasks
            changed = False
            for task in list(self.waiting):
                failed = task.failed_input()
                if failed is not None:
                    self.waiting.remove(task)
                    task.future.set_exception(DependencyFailed(f"its input {failed} failed"))
                    changed = True


class InProcess:
    """Runs each task in this process while ``as_completed`` is iterated: inputs first, then by priority."""

    in_process = True

    def __init__(self):
        self._queue = _Queue()

    def submit(self, fn: Callable, *args, key: str, priority: int = 0) -> cf.Future:
        return self._queue.add(fn, args, key, priority)

    def as_completed(self, futures: list,
                     started: Callable[[str], None] | None = None) -> Iterator[cf.Future]:
        pending = set(futures)
        while pending:
            self._queue.fail_orphans()
            done = [f for f in pending if f.done()]
            if not done:
                task = self._queue.next_ready()
                if task is None:
                    raise RuntimeError("in-process executor: tasks wait for futures no task will produce")
                if started:
                    started(task.key)
                try:
                    task.future.set_result(task.fn(*task.resolved_args()))
                except Exception as err:  # an interrupt (KeyboardInterrupt) is not caught: it stops the plan
                    task.future.set_exception(err)
                continue
            for future in sorted(done, key=futures.index):
                pending.discard(future)
                yield future


def _start_worker(torch_threads: int) -> None:
    torch.set_num_threads(torch_threads)


def _started() -> int:
    return os.getpid()


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class ProcessPool:
    """``with ProcessPool(processes)``: that many spawned worker processes on this machine, each with
    ``torch_threads`` threads for torch (default: the cores shared out), started with ``worker_environ``.

    An interrupt of the caller (Ctrl-C, a kernel interrupt) while it waits sends SIGINT to every worker: each
    saves a checkpoint of its run and stops, and the same plan resumes from there. A worker that dies (killed,
    out of memory) breaks the pool: its task and every later one fail with ``BrokenProcessPool``, which
    ``run_plan`` reports like any failure; running the plan again resumes it (the registry breaks the dead
    worker's stale lock and resumes its run from the last checkpoint).
    """

    in_process = False

    def __init__(self, processes: int, *, torch_threads: int | None = None):
        if not (isinstance(processes, int) and not isinstance(processes, bool) and 1 <= processes <= 64):
            raise ConfigError(f"'processes' must be an integer in [1, 64]; got {processes!r}")
        self.processes = processes
        self.torch_threads = torch_threads or max(1, (os.cpu_count() or 1) // processes)
        self._queue = _Queue()
        self._pool: cf.ProcessPoolExecutor | None = None
        self.pids: list[int] = []

    def __enter__(self) -> "ProcessPool":
        context = multiprocessing.get_context("spawn")  # never fork a process whose torch threads are running
        with _environ(worker_environ(self.torch_threads)):  # read by each worker as it starts, below
            self._pool = cf.ProcessPoolExecutor(self.processes, mp_context=context, initializer=_start_worker,
                                                initargs=(self.torch_threads,))
            warm = [self._pool.submit(_started) for _ in range(self.processes)]  # each submit starts a worker
            cf.wait(warm)
        self.pids = sorted(self._pool._processes)  # the workers' pids (the pool keeps them by pid)
        return self

    def __exit__(self, kind, *exc) -> None:
        if kind is not None and issubclass(kind, BaseException) and not issubclass(kind, Exception):
            self._interrupt_workers()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _interrupt_workers(self) -> None:
        for process in list(getattr(self._pool, "_processes", {}).values()):
            if process.is_alive():
                os.kill(process.pid, signal.SIGINT)

    def submit(self, fn: Callable, *args, key: str, priority: int = 0) -> cf.Future:
        if self._pool is None:
            raise RuntimeError("use the process pool as a context manager: with ProcessPool(n) as executor: "
                               "...")
        return self._queue.add(fn, args, key, priority)

    def as_completed(self, futures: list,
                     started: Callable[[str], None] | None = None) -> Iterator[cf.Future]:
        pending, running = set(futures), {}
        while pending:
            self._queue.fail_orphans()
            while len(running) < self.processes and (task := self._queue.next_ready()) is not None:
                if started:
                    started(task.key)
                try:
                    running[self._pool.submit(task.fn, *task.resolved_args())] = task
                except cf.process.BrokenProcessPool as err:  # a worker died (killed, out of memory)
                    task.future.set_exception(err)
            for future in sorted((f for f in pending if f.done()), key=futures.index):
                pending.discard(future)
                yield future
            if running:
                done, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
                for inner in done:
                    _copy_outcome(inner, running.pop(inner).future)
            elif pending and not any(f.done() for f in pending):
                raise RuntimeError("process pool: tasks wait for futures no task will produce")


def _copy_outcome(inner: cf.Future, outer: cf.Future) -> None:
    err = inner.exception()
    if err is None:
        outer.set_result(inner.result())
    else:
        outer.set_exception(err)


def executor_for(*, processes: int | None = None, workers: int | None = None, scheduler: str | None = None):
    """A context manager for the executor that the options name: a ``ProcessPool`` of ``processes``, a Dask
    ``LocalCluster`` of ``workers``, an existing Dask ``scheduler``; with none, ``InProcess()``. At most
    one."""
    given = [name for name, v in (("processes", processes), ("workers", workers), ("scheduler", scheduler))
             if v is not None]
    if len(given) > 1:
        raise ConfigError("give at most one of 'processes', 'workers' and 'scheduler'; got "
                          f"{' and '.join(given)}")
    if processes is not None:
        return ProcessPool(processes)
    if workers is not None or scheduler is not None:
        return DaskExecutor(workers=workers, scheduler=scheduler)
    return contextlib.nullcontext(InProcess())
