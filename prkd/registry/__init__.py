"""The run registry: run folders (``run``), one trainer per run across processes (``locks``), who trained a
run and when (``events``), and the output root that holds them (``store``)."""

from .locks import Holder, LockTimeout, RunLock
from .run import (CorruptCheckpointError, DamagedRunError, Run, RunNotFoundError, load_checkpoint,
                  run_id, run_id_for,
                  teacher_config)
from .store import OutputNotWritableError, Registry, RunEntry, default_root, open_registry

__all__ = ["CorruptCheckpointError", "DamagedRunError", "Holder", "LockTimeout",
           "OutputNotWritableError", "Registry",
           "Run", "RunEntry", "RunLock", "RunNotFoundError", "default_root", "load_checkpoint",
           "open_registry",
           "run_id", "run_id_for", "teacher_config"]
