"""Shared fixtures. Tests read Fashion-MNIST from ../shared/data/fashion-mnist unless PRKD_DATA_DIR is set,
and write only into temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data" / "fashion-mnist"

os.environ.setdefault("PRKD_DATA_DIR", str(SHARED_DATA))


@pytest.fixture(autouse=True)
def _isolated_outputs(tmp_path_factory, monkeypatch):
    """Every test writes its outputs to a temporary folder, never into the repository."""
    monkeypatch.setenv("PRKD_OUTPUT_DIR", str(tmp_path_factory.mktemp("outputs")))


@pytest.fixture(params=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def device(request) -> torch.device:
    """The CPU always; CUDA too where a GPU is present."""
    return torch.device(request.param)


@pytest.fixture(scope="session")
def test_images() -> torch.Tensor:
    """16 Fashion-MNIST test images, uint8 (16, 28, 28)."""
    import prkd
    from prkd.data import load_splits
    return load_splits(prkd.make("quick", n_test=16).data, download=False).test
