"""Where a plan of runs trains: in this process (``graph.run_plan``) or on a Dask client
(``dask_runner.run_on_client``), through one call. The same failure rule holds for both: a failed run is named
and its dependents (a failed teacher's students) are skipped; ``PlanOutcome.raise_if_failed`` raises for all.
"""

from __future__ import annotations

from typing import Callable

import torch

from prkd.config import ConfigError
from prkd.data import Splits
from prkd.experiments.dask_runner import run_on_client
from prkd.experiments.graph import PlanGraph, PlanOutcome, run_plan
from prkd.experiments.schedule import RunCost
from prkd.registry import Registry

__all__ = ["train_plan"]


def train_plan(graph: PlanGraph, registry: Registry, *, client=None, device: torch.device | None = None,
               data: Splits | None = None, progress: bool = True, log: Callable[[str], None] = print,
               cost: RunCost | None = None) -> PlanOutcome:
    """Train every run of ``graph``: in this process, or on ``client`` (a ``distributed.Client``, prkd[scale]).

    Raises ConfigError when ``device`` or ``data`` is given with a client: Dask workers choose their own device
    (``PRKD_DEVICE``) and load the data themselves, so neither could be honoured.
    """
    if client is None:
        return run_plan(graph, registry, device=device, progress=progress, log=log, data=data, cost=cost)
    given = [name for name, value in (("device", device), ("data", data)) if value is not None]
    if given:
        raise ConfigError(f"{' and '.join(repr(g) for g in given)} apply only to training in this process; on a Dask "
                          f"client each worker chooses its own device (PRKD_DEVICE) and loads the data itself")
    return run_on_client(graph, registry, client, progress=progress, log=log, cost=cost)
