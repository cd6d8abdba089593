"""Run a plan graph on Dask distributed: a laptop's cores (``local_cluster``), or an existing cluster
(``connect``: a scheduler address, e.g. of ``dask-jobqueue``'s ``SLURMCluster``). This needs the optional
extra ``prkd[scale]``; nothing else in prkd imports Dask.

How the work is laid out:
- Each run is one task, keyed by its run id. Tasks are submitted in critical-path order
  (``prkd.experiments.schedule``) with ``priority=`` their rank in it (Dask runs higher priorities first),
  so the longest teacher-and-students chains start first.
- A student's task takes its teacher's future as an argument, so Dask starts it only once the teacher is
  complete, and the student loads that teacher by id.
- Every worker opens the same registry root. The registry, not the worker, holds the truth: its per-run lock
  makes sure each run is trained once, and ``events.jsonl`` records by whom.

Workers are configured, not guessed:
- ``worker_environ`` sets glibc's allocator tunables (``prkd.utils.allocator``) and ``OMP_NUM_THREADS`` in
  each worker's environment before it starts (Dask's ``distributed.nanny.pre-spawn-environ``). It drops
  Dask's default ``MALLOC_TRIM_THRESHOLD_=65536``, which would undo the tunables' trim threshold.
- Each task sets ``torch.set_num_threads`` to its worker's share of the cores.
- On CUDA, each task asks for ``resources={"GPU": 1}``, so one GPU trains one model at a time.

Faults:
- A worker that dies mid-run (SIGKILL, OOM) loses nothing. The scheduler reschedules its task on another
  worker (up to ``distributed.scheduler.allowed-failures`` times), and that worker breaks the dead
  holder's stale lock and resumes from the run's last checkpoint.
- A run that fails for its own reasons (``graph.RUN_FAILURES``) raises in its task. It is not retried
  (``retries=0``), it is reported, and the tasks that depend on it are reported as skipped.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import torch
from tqdm.auto import tqdm

from prkd.config import ConfigError
from prkd.experiments.graph import PlanGraph, PlanOutcome, plan_cost, skip_reason
from prkd.experiments.schedule import RunCost, critical_path_order
from prkd.registry import Registry
from prkd.utils.allocator import TUNABLES, allocator_env

__all__ = ["ClientFor", "require_distributed", "worker_environ", "local_cluster", "connect", "train_task",
           "run_on_client"]


def require_distributed():
    """The ``distributed`` module, or a ConfigError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise ConfigError("running a plan on Dask (--workers, --scheduler, client=) needs the optional extra "
                          "prkd[scale]: pip install -e '.[scale]' (or pip install distributed)") from None
    return distributed


def worker_environ(torch_threads: int) -> dict[str, str]:
    """The environment a worker process starts with: thread counts, and glibc's tunables where they apply."""
    threads = str(torch_threads)
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
    if allocator_env({}):  # glibc, and not turned off with PRKD_ALLOCATOR=default
        env["GLIBC_TUNABLES"] = os.environ.get("GLIBC_TUNABLES", TUNABLES)
    return env


def local_cluster(n_workers: int, *, torch_threads: int | None = None, gpus: int | None = None):
    """A ``LocalCluster`` of ``n_workers`` single-task worker processes on this machine, each with its share of
    the cores for torch (``torch_threads``, default ``cpu_count // n_workers``) and, on CUDA, one GPU resource."""
    distributed = require_distributed()
    import dask
    if not (isinstance(n_workers, int) and 1 <= n_workers <= 256):
        raise ConfigError(f"'workers' must be an integer in [1, 256]; got {n_workers!r}")
    threads = torch_threads or max(1, (os.cpu_count() or 1) // n_workers)
    gpus = torch.cuda.device_count() if gpus is None else gpus
    with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ(threads)}):
        return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                        resources={"GPU": 1} if gpus else None, dashboard_address=":0")


#: Seconds ``connect`` waits for an existing scheduler to answer.
CONNECT_TIMEOUT_S = 10


def connect(address: str, *, timeout: float = CONNECT_TIMEOUT_S):
    """A client of the existing scheduler at ``address`` (its workers were started with their own settings:
    docs/scale-out.md says which). Raises ConfigError naming the option for an address that is not one, and for a
    scheduler that does not answer within ``timeout`` seconds."""
    distributed = require_distributed()
    try:
        return distributed.Client(address, timeout=timeout)
    except ValueError as err:
        raise ConfigError(f"'scheduler' must be a scheduler address such as tcp://HOST:8786; got {address!r} "
                          f"({err})") from None
    except (OSError, TimeoutError):
        raise ConfigError(f"'scheduler': no scheduler answered at {address!r} within {timeout:g} s "
                          "(is it running, and reachable from here?)") from None


def train_task(cfg, registry_root: str, teacher: str | None, torch_threads: int | None = None) -> str:
    """The work of one task on a worker: train (or load, or resume) one run; return its run id.

    ``teacher`` is the teacher task's result (its run id) for a student: Dask passes it once the teacher is done.
    """
    from prkd.learning import get_or_train
    from prkd.registry import open_registry
    if torch_threads:
        torch.set_num_threads(torch_threads)
    run = get_or_train(cfg, registry=open_registry(registry_root), teacher_run=teacher, progress=False,
                       log=lambda message: None)
    return run.id


def _uses_gpus(client) -> bool:
    workers = client.scheduler_info().get("workers", {}).values()
    return any("GPU" in (w.get("resources") or {}) for w in workers)


def run_on_client(graph: PlanGraph, registry: Registry, client, *, progress: bool = True,
                  log: Callable[[str], None] = print, torch_threads: int | None = None,
                  cost: RunCost | None = None) -> PlanOutcome:
    """Submit every task of ``graph`` to ``client`` in critical-path order under ``cost`` (default
    ``graph.plan_cost``; students after their teachers), each with ``priority=`` its rank, and wait for all."""
    distributed = require_distributed()
    start = time.monotonic()
    resources = {"GPU": 1} if _uses_gpus(client) else None
    order = critical_path_order(graph, cost or plan_cost(graph, registry))
    futures = {}
    for rank, rid in enumerate(order):
        task = graph.tasks[rid]
        teacher = futures[task.teacher] if task.teacher else None
        futures[rid] = client.submit(train_task, task.cfg, str(registry.root), teacher, torch_threads,
                                     key=f"prkd-{rid}", pure=False, retries=0, resources=resources,
                                     priority=len(order) - rank)
    bar = tqdm(distributed.as_completed(list(futures.values())), total=len(futures), desc="plan on Dask",
               unit="run", disable=not progress)  # a text bar in a terminal, a widget in a notebook
    for _ in bar:
        pass
    outcome = PlanOutcome(graph)
    for rid, future in futures.items():
        _collect(outcome, graph, registry, rid, future)
    outcome.seconds = time.monotonic() - start
    log(outcome.summary())
    return outcome


def _collect(outcome: PlanOutcome, graph: PlanGraph, registry: Registry, rid: str, future) -> None:
    """File one finished future under complete, failed (its own error) or skipped (its teacher's)."""
    teacher = graph.tasks[rid].teacher
    if future.status == "finished":
        outcome.complete[rid] = registry.find(future.result())
    elif teacher and (teacher in outcome.failed or teacher in outcome.skipped):
        outcome.skipped[rid] = skip_reason(teacher)
    else:
        err = future.exception()
        outcome.failed[rid] = f"{type(err).__name__}: {err}"


class ClientFor:
    """``with ClientFor(workers=N)`` / ``ClientFor(scheduler=ADDRESS)``: a Dask client of a new ``LocalCluster`` or
    of an existing scheduler, closed (with its cluster) on exit; with neither, ``None`` (run in this process)."""

    def __init__(self, *, workers: int | None = None, scheduler: str | None = None):
        if workers is not None and scheduler is not None:
            raise ConfigError("give either 'workers' (a local cluster) or 'scheduler' (an existing one), not both")
        self.workers, self.scheduler = workers, scheduler
        self.cluster = self.client = None

    def __enter__(self):
        if self.workers is None and self.scheduler is None:
            return None
        if self.scheduler is not None:
            self.client = connect(self.scheduler)
        else:
            distributed = require_distributed()
            self.cluster = local_cluster(self.workers)
            self.client = distributed.Client(self.cluster)
        return self.client

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
