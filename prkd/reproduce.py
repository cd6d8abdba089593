"""Headless reproduction: run the notebooks in order with papermill, resumably.

Each notebook ``notebooks/NN_name.ipynb`` is executed with the parameters ``preset`` (and ``seed``) and
written to ``<registry root>/notebooks/<preset>/NN_name.ipynb``. A notebook that finished is recorded in
``done.json`` beside the executed copies together with a hash of its source and parameters, so re-running
skips it unless the notebook or the parameters changed (or ``force``). The first failing notebook stops
the run with its name and the error; papermill still writes the executed copy, failing cell included.
"""

from __future__ import annotations

import hashlib
import os
import json
from pathlib import Path

from tqdm.auto import tqdm

from prkd.utils import atomic
from prkd.config import PRESETS, ConfigError
from prkd.utils.paths import NOTEBOOK_DIR
from prkd.registry import Registry
from prkd.registry.progress import PlanProgress

__all__ = ["NotebookFailed", "notebooks", "run_notebooks"]


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names it, the error and where its executed copy is."""


#: Notebook 07 runs the study (``prkd.experiments.study``) and notebook 09 the budget ladder
#: (``prkd.experiments.ladder``), each with a preset of its own: ``study`` runs 07 alone, ``ladder`` 09 alone,
#: ``quick`` and ``paper`` run the others (01-06 and 08), ``smoke`` runs all (CI).
STUDY_NOTEBOOK = "07"
LADDER_NOTEBOOK = "09"
UNROLLED_NOTEBOOK = "10"  # the unrolled experiment, on the ladder's preset after notebook 09
OWN_PRESET = {STUDY_NOTEBOOK: "study", LADDER_NOTEBOOK: "ladder", UNROLLED_NOTEBOOK: "ladder"}


def notebooks(preset: str | None = None) -> list[Path]:
    """The workbook's notebooks, in order (``notebooks/[0-9][0-9]_*.ipynb``); those a preset runs if given."""
    found = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if preset is None or preset == "smoke":
        return found
    return [nb for nb in found if OWN_PRESET.get(nb.stem[:2]) == preset
            or (nb.stem[:2] not in OWN_PRESET and preset not in OWN_PRESET.values())]


def _local_kernel_manager():
    """The kernel manager papermill starts its kernels with: on POSIX over IPC (Unix sockets), so that the
    kernel talks to this process without TCP and prints no "running over TCP without encryption" warning;
    elsewhere jupyter's default (TCP). Each kernel's sockets get a path of their own in the temporary folder:
    jupyter's default prefix is shared ("kernel-ipc-1", "-2", ... in the working folder), so two kernels
    started at once (two test workers, two reproductions) could take the same sockets."""
    import tempfile
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum, default

    if os.name != "posix":
        return AsyncKernelManager

    class LocalKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        @default("ip")
        def _unique_socket_prefix(self) -> str:
            return os.path.join(tempfile.gettempdir(), f"prkd-kernel-{uuid.uuid4().hex}")
    return LocalKernelManager


def _fingerprint(nb: Path, parameters: dict) -> str:
    h = hashlib.sha256(nb.read_bytes())
    h.update(json.dumps(parameters, sort_keys=True).encode())
    return h.hexdigest()


def run_notebooks(preset: str = "quick", *, registry: Registry, seed: int = 0, only: list[str] | None = None,
                  force: bool = False, kernel: str = "python3", train: bool = True) -> Path:
    """Execute the notebooks headlessly; return the folder of executed copies.

    Args:
        preset: ``smoke``, ``quick``, ``paper``, ``study`` or ``ladder`` (passed to every notebook; see
        ``notebooks``). registry: the output root; its path is passed to every notebook as ``output_dir``.
        seed: passed to every notebook that declares it (05 and 06 use the seeds of their plan).
        only: names (``"01_sensing_model"`` or a prefix such as ``"01"``) to run; default all.
        force: re-run notebooks already recorded as done.
        train: passed to every notebook that declares it (07, 09, 10): False reports what the registry and
        the committed records hold and trains nothing (the check that committed results regenerate).
    Raises:
        ConfigError: unknown preset or notebook name.
        NotebookFailed: a notebook raised.
    """
    if preset not in PRESETS:
        raise ConfigError(f"config field 'preset' must be one of {', '.join(map(repr, PRESETS))}; got "
                          f"{preset!r}")
    selected = notebooks(preset)
    if only:
        selected = [nb for nb in selected if any(nb.stem == o or nb.stem.startswith(o) for o in only)]
        if not selected:
            known = ", ".join(nb.stem for nb in notebooks(preset))
            raise ConfigError(f"no notebook matches {only}; known notebooks: {known}")
    out = registry.folder("notebooks", preset)
    done_file = out / "done.json"
    done = json.loads(done_file.read_text()) if done_file.exists() else {}
    # the bar of the runs the notebooks train, read from the registry (their own bars stay in the notebooks)
    watched = list(preset_plan(preset).tasks) if train else []
    offered = {"preset": preset, "seed": seed, "output_dir": str(registry.root), "train": train}
    bar = tqdm(selected, desc=f"notebooks ({preset})", unit="notebook")
    with PlanProgress(registry, watched, desc=f"runs ({preset})"):
        _run_each(selected, bar, out, done, offered, force, kernel)
    return out


def _run_each(selected: list[Path], bar, out: Path, done: dict, offered: dict, force: bool,
              kernel: str) -> None:
    """Execute the ``selected`` notebooks in turn, skipping those ``done`` records with the same
    fingerprint."""
    import papermill as pm

    done_file = out / "done.json"
    for nb in bar:
        bar.set_postfix_str(nb.stem)
        declared = pm.inspect_notebook(str(nb))  # the names in its cell tagged 'parameters'
        parameters = {k: v for k, v in offered.items() if k in declared}
        fingerprint = _fingerprint(nb, parameters)
        target = out / nb.name
        if not force and done.get(nb.stem) == fingerprint and target.exists():
            bar.write(f"{nb.stem}: already done, skipped ({target})")
            continue
        try:
            cells = {"desc": f"  {nb.stem} cells", "leave": False}
            pm.execute_notebook(str(nb), str(target), parameters=parameters, kernel_name=kernel,
                                cwd=str(nb.parent), progress_bar=cells,
                                kernel_manager_class=_local_kernel_manager())
        except pm.PapermillExecutionError as err:
            raise NotebookFailed(f"notebook {nb.stem} failed in cell {err.exec_count}: {err.ename}: "
                                 f"{err.evalue}\nexecuted copy with the failing cell: {target}") from None
        done[nb.stem] = fingerprint
        atomic.write_json(done_file, done)


def preset_plan(preset: str):
    """Every run the notebooks of ``preset`` train, as one plan graph: the reproduction's plan (notebooks
    03-06) and, where notebook 07 runs, the study's (``prkd.execution.graph.PlanGraph``)."""
    from prkd.execution.graph import PlanGraph
    from prkd.experiments.plans import PLANS, experiment_configs, plan_run_id
    from prkd.experiments.study import STUDY_PLANS, study_configs
    from prkd.experiments.ladder import LADDER_PLANS, ladder_runs
    from prkd.experiments.unrolled import UNROLLED_PLANS, unrolled_runs
    configs = {}
    stems = {nb.stem[:2] for nb in notebooks(preset)}
    if preset in PLANS and stems - {STUDY_NOTEBOOK}:
        configs.update(experiment_configs(preset))
    if preset in STUDY_PLANS and STUDY_NOTEBOOK in stems:
        configs.update({f"study: {name}": cfg for name, cfg in study_configs(preset).items()})
    if preset in LADDER_PLANS and LADDER_NOTEBOOK in stems:
        configs.update({f"ladder: {item.name}": item.cfg for item in ladder_runs(preset)})
    # the best-beta students need notebook 09 first
    if preset in UNROLLED_PLANS and UNROLLED_NOTEBOOK in stems:
        configs.update({f"unrolled: {item.name}": item.cfg for item in unrolled_runs(preset)})
    kept = _committed_records(preset)
    return PlanGraph.from_configs({name: cfg for name, cfg in configs.items()
                                   if plan_run_id(cfg) not in kept})


def _committed_records(preset: str) -> dict:
    """The runs that the study, the ladder and the unrolled experiment keep as committed records at ``preset``
    (their notebooks report them without training them)."""
    from prkd.experiments.ladder import LADDER
    from prkd.experiments.study import STUDY
    from prkd.experiments.unrolled import UNROLLED
    from prkd.registry.records import read_records
    return {run_id: record for spec in (STUDY, LADDER, UNROLLED)
            for run_id, record in read_records(spec.committed_records(preset)).items()}


def train_preset_plan(preset: str, *, registry: Registry, executor=None, log=print):
    """Train ``preset_plan(preset)`` on ``executor`` (default: in this process) before the notebooks run, so
    that they find every run in the registry; RunFailedError names the runs that failed."""
    import contextlib
    from prkd.execution.graph import run_plan
    from prkd.experiments.engine import recorded_launch
    from prkd.experiments.study import STUDY, STUDY_PLANS
    studied = preset in STUDY_PLANS and STUDY_NOTEBOOK in {nb.stem[:2] for nb in notebooks(preset)}
    # the study's launches are timed wherever its runs train (its wall time, notebook 07's wall_time.json)
    launch = recorded_launch(STUDY, preset, registry, executor) if studied else contextlib.nullcontext({})
    with launch as session:
        outcome = run_plan(preset_plan(preset), registry, executor=executor, log=log)
        session.update(complete=len(outcome.complete), failed=len(outcome.failed),
                       skipped=len(outcome.skipped))
    return outcome.raise_if_failed(f"the {preset!r} plan")
