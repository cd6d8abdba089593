"""Fashion-MNIST scenes: find the real data, split it as the paper does, and make phase objects.

Where the data are looked for, in this order (the first that holds all four files wins):

1. an explicit folder (argument ``data_dir``) or the environment variable ``PRKD_DATA_DIR``;
2. ``./data`` (relative to the working directory);
3. Debian's package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist/``);
4. torchvision's download into the cache folder.

A folder may hold the four IDX files gzipped (as published, or as Debian ships them, whose gzip
headers differ) or unpacked, flat or in torchvision's ``FashionMNIST/raw/`` layout. The *content*
is checked (MD5 of the unpacked IDX bytes), never the .gz bytes. Gzipped files are unpacked once
into the cache (``PRKD_CACHE_DIR``, default ``~/.cache/prkd``), and every load goes through
``torchvision.datasets.FashionMNIST``.

Split (Section 4.1): the 60k training images are split 30k train / 30k validation by a fixed
permutation (``DataConfig.split_seed``); the 10k test images are the test set. A preset may use
the first ``n_train`` / ``n_val`` / ``n_test`` images of each part.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from prkd.utils import atomic
from prkd.config import DataConfig

__all__ = ["DataNotFoundError", "CorruptDataError", "FASHION_MNIST_MD5", "DEBIAN_DIR", "locate_fashion_mnist",
           "Splits", "load_splits", "to_images"]

#: MD5 of the *unpacked* IDX files (identical for the upstream and Debian copies).
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
_HOW_TO_GET = """Fashion-MNIST was not found. Get it in one of three ways:
  1. point PRKD_DATA_DIR (or the data_dir argument) at a folder holding the four IDX files
     (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
     t10k-labels-idx1-ubyte.gz), gzipped or not, or put them in ./data;
  2. install Debian's package: apt-get install dataset-fashion-mnist  (/usr/share/datasets/fashion-mnist/);
  3. let torchvision download it (needs internet access)."""


class DataNotFoundError(FileNotFoundError):
    """No usable copy of Fashion-MNIST was found; the message lists the ways to get it."""


class CorruptDataError(ValueError):
    """A Fashion-MNIST file was found but its content is truncated or not the original."""


def _cache_dir() -> Path:
    return Path(os.environ.get("PRKD_CACHE_DIR", Path.home() / ".cache" / "prkd"))


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _find_files(folder: Path) -> dict[str, Path] | None:
    """Map each IDX name to the file holding it (gzipped or not) in ``folder``; None if any is missing."""
    found = {}
    for sub in (folder, folder / "FashionMNIST" / "raw"):
        for name in FASHION_MNIST_MD5:
            for candidate in (sub / name, sub / f"{name}.gz"):
                if name not in found and candidate.is_file():
                    found[name] = candidate
    return found if len(found) == len(FASHION_MNIST_MD5) else None


def _stage(files: dict[str, Path]) -> Path:
    """Unpack and verify ``files`` into ``<cache>/FashionMNIST/raw``; return the torchvision root.

    Each file is written atomically (``prkd.utils.atomic``), so a reader never sees half a file.
    """
    root = _cache_dir()
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        dst = raw / name
        if dst.is_file() and _md5(dst) == FASHION_MNIST_MD5[name]:
            continue
        opener = gzip.open if src.suffix == ".gz" else open
        try:
            with opener(src, "rb") as fh:
                content = fh.read()
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            raise CorruptDataError(f"Fashion-MNIST file {src} cannot be read ({err}); it is truncated "
                                   f"or not a gzip/IDX file. Replace it with an original copy.") from err
        if hashlib.md5(content).hexdigest() != FASHION_MNIST_MD5[name]:
            raise CorruptDataError(f"Fashion-MNIST file {src} does not hold the original {name} "
                                   f"(MD5 of its content differs); it is truncated or corrupt. "
                                   f"Replace it with an original copy.")
        atomic.write_bytes(dst, content)
    return root


def locate_fashion_mnist(data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """Find Fashion-MNIST (see the module docstring for the order) and return a torchvision root.

    Raises:
        CorruptDataError: a folder holds the four files but one is truncated or altered.
        DataNotFoundError: no candidate holds the files and the download failed (or was not allowed).
    """
    tried = []
    explicit = data_dir if data_dir is not None else os.environ.get("PRKD_DATA_DIR")
    candidates = [Path(explicit)] if explicit else []
    candidates += [Path("data"), DEBIAN_DIR]
    for folder in candidates:
        files = _find_files(folder)
        if files is None:
            tried.append(f"{folder} (the four IDX files are not there)")
            continue
        return _stage(files)
    if download:
        from torchvision.datasets import FashionMNIST
        root = _cache_dir() / "download"
        try:
            FashionMNIST(root=str(root), train=True, download=True)
            FashionMNIST(root=str(root), train=False, download=True)
            return root
        except Exception as err:  # any network or mirror failure
            tried.append(f"torchvision download into {root} ({type(err).__name__}: {err})")
    else:
        tried.append("torchvision download (not allowed here)")
    raise DataNotFoundError(_HOW_TO_GET + "\nTried:\n  - " + "\n  - ".join(tried))


@dataclass(frozen=True)
class Splits:
    """Fashion-MNIST images as uint8 tensors of shape (n, 28, 28), with their labels (n,)."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor
    val_labels: torch.Tensor
    test_labels: torch.Tensor


def load_splits(cfg: DataConfig, data_dir: str | os.PathLike | None = None, *,
                download: bool = True) -> Splits:
    """Load the 30k/30k/10k split of Section 4.1, cut to ``cfg.n_train``/``n_val``/``n_test`` images."""
    from torchvision.datasets import FashionMNIST
    root = str(locate_fashion_mnist(data_dir, download=download))
    train_set = FashionMNIST(root=root, train=True, download=False)
    test_set = FashionMNIST(root=root, train=False, download=False)
    perm = torch.randperm(len(train_set.data), generator=torch.Generator().manual_seed(cfg.split_seed))
    half = len(perm) // 2
    train_idx, val_idx = perm[:half][: cfg.n_train], perm[half:][: cfg.n_val]
    return Splits(train=train_set.data[train_idx], val=train_set.data[val_idx],
                  test=test_set.data[: cfg.n_test],
                  train_labels=train_set.targets[train_idx], val_labels=train_set.targets[val_idx],
                  test_labels=test_set.targets[: cfg.n_test])


def to_images(raw: torch.Tensor, image_size: int) -> torch.Tensor:
    """uint8 images (B, 28, 28) -> float images (B, 1, N, N) in [0, 1], resized bilinearly (antialiased).

    Runs on whatever device ``raw`` is on, so batches can be resized on the GPU.
    """
    img = raw.unsqueeze(1).float() / 255.0
    if img.shape[-1] != image_size or img.shape[-2] != image_size:
        img = F.interpolate(img, size=(image_size, image_size), mode="bilinear", align_corners=False,
                            antialias=True)
    return img.clamp_(0.0, 1.0)
