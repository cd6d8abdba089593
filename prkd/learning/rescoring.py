"""A finished run scored again on its test split: raw, and refined by a classical solver started from its
output (``prkd.learning.refine``: on its own CDPs, noise included, no oracle). The scores are kept in the
run's folder (``refined.json``, one entry per refinement and iteration count), so reports read them without
recomputing.

The raw scores reproduce ``metrics.json``'s: the same test images, batches and noise draws as the run's final
test (``prkd.learning.loop``).
"""

from __future__ import annotations

import json

import torch

from prkd.data import load_splits
from prkd.learning.evaluation import final_test
from prkd.learning.refine import check_refine
from prkd.registry import Run
from prkd.registry.records import RunRecord
from prkd.utils import atomic
from prkd.utils.device import default_device

__all__ = ["DEFAULT_REFINE", "REFINED_FILE", "refined_columns", "refined_test_scores"]

REFINED_FILE = "refined.json"


def _stored(run: Run) -> dict:
    path = run.path / REFINED_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def refined_test_scores(run: Run, *, refine: str = "raar", iterations: int = 200,
                        device: torch.device | None = None,
                        data=None) -> dict:
    """``psnr``, ``ssim`` (and with a refinement ``refined_psnr``, ``refined_ssim``), their per-image lists
    and
    ``n_test`` of the complete ``run`` on its test split; computed once and then read from ``refined.json``.

    Raises ConfigError (the field and its range) for a bad ``refine`` or ``iterations``, before any work.
    """
    check_refine(refine, iterations)
    key = f"{refine}-{iterations}"
    if isinstance(run, RunRecord):  # a record keeps the scores it was written with, and nothing else
        if key not in run.refined:
            raise KeyError(f"the record of run {run.id} has no {key} scores (it has {sorted(run.refined)})")
        return run.refined[key]
    stored = _stored(run)
    if key in stored:
        return stored[key]
    cfg = run.config()
    device = device or default_device()
    data = data or load_splits(cfg.data)
    scores = final_test(run.load_system(device), data.test, device=device, refine=refine,
                        iterations=iterations)
    scores = {k: (round(v, 4) if isinstance(v, float) else [round(x, 4) for x in v]) for k,
              v in scores.items()}
    scores["n_test"] = len(data.test)
    atomic.write_json(run.path / REFINED_FILE, {**_stored(run), key: scores})
    return scores


#: The refinement every runs.csv gives beside the raw scores: RAAR, 200 iterations, no oracle.
DEFAULT_REFINE = ("raar", 200)


def refined_columns(run: Run) -> dict[str, float]:
    """``refined_psnr`` and ``refined_ssim`` of a complete run under ``DEFAULT_REFINE`` (computed once, then
    read)."""
    scores = refined_test_scores(run, refine=DEFAULT_REFINE[0], iterations=DEFAULT_REFINE[1])
    return {"refined_psnr": scores["refined_psnr"], "refined_ssim": scores["refined_ssim"]}
