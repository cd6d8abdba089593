"""The Dask executor of a plan (``prkd.execution.executors``): a laptop's cores (``local_cluster``), or an
existing cluster (``connect``: a scheduler address, e.g. of ``dask-jobqueue``'s ``SLURMCluster``). This needs
the optional extra ``prkd[scale]``; nothing else in prkd imports Dask.

How the work is laid out:
- Each run is one task, keyed ``prkd-<run id>``. ``prkd.execution.graph.run_plan`` submits them in
  critical-path order (``prkd.execution.schedule``) with ``priority=`` their rank in it (Dask runs higher
  priorities first), so the longest teacher-and-students chains start first.
- A student's task takes its teacher's future as an argument, so Dask starts it only once the teacher is
  complete, and the student loads that teacher by id.
- Every worker opens the same registry root. The registry, not the worker, holds the truth: its per-run lock
  makes sure each run is trained once, and ``events.jsonl`` records by whom.

Workers are configured, not guessed:
- ``worker_environ`` sets glibc's allocator tunables (``prkd.utils.allocator``) and ``OMP_NUM_THREADS`` in
  each worker's environment before it starts (Dask's ``distributed.nanny.pre-spawn-environ``). It drops
  Dask's default ``MALLOC_TRIM_THRESHOLD_=65536``, which would undo the tunables' trim threshold.
- On CUDA, each task asks for ``resources={"GPU": 1}``, so one GPU trains one model at a time.

Faults:
- A worker that dies mid-run (SIGKILL, OOM) loses nothing. The scheduler reschedules its task on another
  worker (up to ``distributed.scheduler.allowed-failures`` times), and that worker breaks the dead
  holder's stale lock and resumes from the run's last checkpoint.
- A run that fails for its own reasons raises in its task. It is not retried (``retries=0``); ``run_plan``
  reports it, and the tasks that depend on it as skipped, as for every executor.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator

import torch

from prkd.config import ConfigError
from prkd.utils.allocator import worker_environ

__all__ = ["DaskExecutor", "require_distributed", "local_cluster", "connect"]


def require_distributed():
    """The ``distributed`` module, or a ConfigError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise ConfigError("running a plan on Dask (--workers, --scheduler) needs the optional extra "
                          "prkd[scale]: pip install -e '.[scale]' (or pip install distributed)") from None
    return distributed


def local_cluster(n_workers: int, *, torch_threads: int | None = None, gpus: int | None = None):
    """A ``LocalCluster`` of ``n_workers`` single-task worker processes on this machine, each with its share
    of the cores for torch (``torch_threads``, default ``cpu_count // n_workers``) and, on CUDA, one GPU
    resource."""
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
    docs/scale-out.md says which). Raises ConfigError naming the option for an address that is not one, and
    for a scheduler that does not answer within ``timeout`` seconds."""
    distributed = require_distributed()
    try:
        return distributed.Client(address, timeout=timeout)
    except ValueError as err:
        raise ConfigError(f"'scheduler' must be a scheduler address such as tcp://HOST:8786; got {address!r} "
                          f"({err})") from None
    except (OSError, TimeoutError):
        raise ConfigError(f"'scheduler': no scheduler answered at {address!r} within {timeout:g} s "
                          "(is it running, and reachable from here?)") from None


class DaskExecutor:
    """``with DaskExecutor(workers=N)`` / ``DaskExecutor(scheduler=ADDRESS)`` / ``DaskExecutor(client=c)``:
    the executor of a new ``LocalCluster``, of an existing scheduler, or of a client the caller owns. The
    client and cluster it opened are closed on exit. On workers with a GPU resource each task asks for one
    GPU."""

    in_process = False

    def __init__(self, *, workers: int | None = None, scheduler: str | None = None, client=None):
        if sum(v is not None for v in (workers, scheduler, client)) != 1:
            raise ConfigError("give exactly one of 'workers' (a local cluster), 'scheduler' (an existing "
                              "one) and a client")
        self.workers, self.scheduler, self.client = workers, scheduler, client
        self._owned: list = []
        self._resources = None

    def __enter__(self) -> "DaskExecutor":
        if self.scheduler is not None:
            self.client = connect(self.scheduler)
            self._owned = [self.client]
        elif self.workers is not None:
            distributed = require_distributed()
            cluster = local_cluster(self.workers)
            self.client = distributed.Client(cluster)
            self._owned = [self.client, cluster]
        self._resources = {"GPU": 1} if _uses_gpus(self.client) else None
        return self

    def __exit__(self, *exc) -> None:
        for thing in self._owned:
            thing.close()

    def submit(self, fn: Callable, *args, key: str, priority: int = 0):
        return self.client.submit(fn, *args, key=f"prkd-{key}", pure=False, retries=0,
                                  resources=self._resources,
                                  priority=priority)

    def as_completed(self, futures: list, started: Callable[[str], None] | None = None) -> Iterator:
        return require_distributed().as_completed(futures)


def _uses_gpus(client) -> bool:
    workers = client.scheduler_info().get("workers", {}).values()
    return any("GPU" in (w.get("resources") or {}) for w in workers)
