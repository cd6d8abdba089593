"""Shared fixtures. Tests that need real Fashion-MNIST images get them through the project's resolver
(``prkd.data.locate_fashion_mnist`` / ``load_splits``): PRKD_DATA_DIR, ./data, Debian's package
``dataset-fashion-mnist``, torchvision's download. PRKD_DATA_DIR defaults to ../shared/data/fashion-mnist only
where that folder exists beside the repository (the lab's offline copy); elsewhere it is left unset, so the
resolver searches as it would for any user. Those tests carry the marker ``real_data`` (``-m real_data``).
Tests of file layouts and corruption build tiny IDX files of their own (``tiny_fashion_mnist``).
Every test writes only into temporary folders."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


def _share_the_cores_among_workers() -> None:
    """Under pytest-xdist (``scripts/test.sh`` runs ``-n 2``), each worker gets its share of the cores for
    torch and for the notebook kernels and subprocesses it starts: without it every worker would use them all
    and the workers would fight over them (many times slower on 2 cores)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[name] = threads


_share_the_cores_among_workers()  # before torch starts its thread pool
import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data" / "fashion-mnist"

if SHARED_DATA.is_dir() and not os.environ.get("PRKD_DATA_DIR"):
    os.environ["PRKD_DATA_DIR"] = str(SHARED_DATA)


#: The longest test files, started first so that the workers of ``scripts/test.sh`` (pytest-xdist, one file
#: per worker at a time) do not wait at the end for one of them.
LONGEST_FIRST = ("test_notebooks.py", "test_notebooks_experiments.py", "test_browser.py")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config, items):
    """Every test that requests ``test_images`` reads the real Fashion-MNIST: mark it ``real_data``. The files
    of ``LONGEST_FIRST`` go first (the order within a file is kept)."""
    for item in items:
        if "test_images" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real_data)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def tiny_fashion_mnist(folder: Path, *, n_train: int = 12, n_test: int = 6, gzipped: bool = True,
                       seed: int = 0) -> dict[str, str]:
    """Write a tiny but valid copy of Fashion-MNIST's four IDX files into ``folder``; return their MD5s.

    ``n_train`` / ``n_test`` random 28x28 uint8 images (IDX3) with labels 0-9 (IDX1). Gzipped (default)
    as upstream publishes them: the gzip header carries the FNAME field (the unpacked name). The returned
    map (IDX name -> MD5 of the unpacked bytes) is what ``prkd.data.FASHION_MNIST_MD5`` must be
    monkeypatched to, since prkd checks the content against it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    md5 = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=gen)
        labels = torch.arange(n, dtype=torch.uint8) % 10
        content = {
            f"{split}-images-idx3-ubyte": (0x0803).to_bytes(4, "big") + b"".join(
                d.to_bytes(4, "big") for d in (n, 28, 28)) + images.numpy().tobytes(),
            f"{split}-labels-idx1-ubyte": (0x0801).to_bytes(4, "big") + n.to_bytes(4, "big")
            + labels.numpy().tobytes(),
        }
        for name, raw in content.items():
            md5[name] = hashlib.md5(raw).hexdigest()
            if not gzipped:
                (folder / name).write_bytes(raw)
                continue
            buf = io.BytesIO()
            with gzip.GzipFile(filename=name, mode="wb", fileobj=buf, mtime=1_500_000_000) as gz:
                gz.write(raw)
            (folder / f"{name}.gz").write_bytes(buf.getvalue())
    return md5


@pytest.fixture(autouse=True)
def _isolated_outputs(tmp_path_factory, monkeypatch):
    """Every test writes its outputs to a temporary folder, never into the repository (also a ``python -m
    prkd`` child, which reads PRKD_OUTPUT_DIR)."""
    monkeypatch.setenv("PRKD_OUTPUT_DIR", str(tmp_path_factory.mktemp("outputs")))


@pytest.fixture
def registry(_isolated_outputs):
    """The test's own output root, opened as the library's callers do (``prkd.open_registry``)."""
    import prkd
    return prkd.open_registry(os.environ["PRKD_OUTPUT_DIR"])


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


@dataclass(frozen=True)
class CliResult:
    """What one in-process ``prkd`` command did: its exit code, what it printed, and whether it ended by
    raising SystemExit (argparse's refusals: an invalid choice, a missing option, ``parser.error``) instead
    of returning."""

    returncode: int
    stdout: str
    stderr: str
    exited: bool


@pytest.fixture
def prkd_cli(capsys, monkeypatch):
    """Run the command line in this process: ``prkd_cli("train", "--mode", ..., root=folder)``.

    Calls ``prkd.__main__.main(argv)`` as ``python -m prkd`` does, with ``PRKD_OUTPUT_DIR`` set to ``root``
    when given (as a child process would get it), and returns a ``CliResult`` with what it wrote to
    stdout/stderr (``capsys``). A SystemExit (argparse) is caught and reported with ``exited=True``; other
    exceptions propagate, so a traceback fails the test."""
    from prkd.__main__ import main

    def call(*argv: str, root: str | os.PathLike | None = None) -> CliResult:
        if root is not None:
            monkeypatch.setenv("PRKD_OUTPUT_DIR", str(root))
        capsys.readouterr()  # drop anything printed before the command
        try:
            code, exited = main([str(a) for a in argv]), False
        except SystemExit as stop:
            code, exited = stop.code, True
        out, err = capsys.readouterr()
        return CliResult(code, out, err, exited)

    return call


def assert_ran_at_smoke(folder: Path, stems: list[str]) -> None:
    """Each executed notebook whose name starts with one of ``stems`` is in ``folder``, ran at the smoke
    preset, and has no error output."""
    for stem in stems:
        [path] = folder.glob(f"{stem}_*.ipynb")
        nb = json.loads(path.read_text())
        assert nb["metadata"]["papermill"]["parameters"]["preset"] == "smoke"
        assert not any(o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", []))


def nbval_result(folder: Path) -> subprocess.CompletedProcess:
    """nbval (lax: the cells marked ``# NBVAL_CHECK_OUTPUT``) re-runs every executed notebook in
    ``folder``."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
         "--sanitize-with", str(REPO / "tests" / "nbval_sanitize.cfg"),
         *sorted(map(str, folder.glob("*.ipynb")))],
        capture_output=True, text=True, cwd=folder)


class InterruptAfter:
    """Stands in for the SIGINT flag (``prkd.learning.loop.InterruptFlag``): 'raises' after ``n`` training
    steps, as a Ctrl-C would. Patch it in with
    ``monkeypatch.setattr(loop, "InterruptFlag", InterruptAfter(n))``."""

    def __init__(self, n):
        self.n = n

    def __call__(self):
        outer = self

        class Flag:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            @property
            def raised(self):
                outer.n -= 1
                return outer.n == 0

        return Flag()
