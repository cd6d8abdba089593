"""``PlanProgress``: what the terminal shows of runs that train elsewhere (a notebook under papermill, worker
processes), read from the registry's run folders: runs complete of the plan's total, and the run in training
now with its epoch."""

import pytest

import prkd
from conftest import InterruptAfter
from prkd.data import load_splits
from prkd.learning import get_or_train
from prkd.learning import loop as loop_module
from prkd.learning import train as train_module
from prkd.registry.progress import PlanProgress

TINY = dict(n_train=64, n_val=32, n_test=32, batch_size=16, epochs=2)


def test_runs_complete_and_the_run_in_training_with_its_epoch(registry, monkeypatch):
    data = load_splits(prkd.make("smoke", **TINY).data, download=False)
    done_cfg, stopped_cfg, waiting_cfg = (prkd.make("smoke", seed=s, **TINY) for s in (0, 1, 2))
    ids = [registry.run_for(cfg).id for cfg in (done_cfg, stopped_cfg, waiting_cfg)]
    progress = PlanProgress(registry, ids, disable=True)
    assert progress.poll() == (0, None)
    get_or_train(done_cfg, registry=registry, data=data, progress=False, log=lambda m: None)
    assert progress.poll() == (1, None)
    with monkeypatch.context() as patch:
        patch.setattr(loop_module, "InterruptFlag", InterruptAfter(5))  # early in epoch 2
        with pytest.raises(train_module.TrainingInterrupted):
            get_or_train(stopped_cfg, registry=registry, data=data, progress=False, log=lambda m: None)
    assert progress.poll() == (1, f"{ids[1]}, epoch 2/2")
    with PlanProgress(registry, ids, disable=True, every=0.01) as shown:  # the thread starts and stops
        pass
    assert shown.bar.n == 1
