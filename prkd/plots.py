"""Small plotting helpers shared by the notebooks. Each returns the matplotlib ``Figure`` it drew.

matplotlib is imported inside each function, never at module level, so ``import prkd`` stays light
and headless runs never touch a plotting backend they do not use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

__all__ = ["show_images", "show_complex", "plot_curves"]


def _numpy(a) -> np.ndarray:
    """A tensor (any device, any grad state) or array-like -> numpy array."""
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def show_images(images, titles: Sequence[str] | None = None, *, cmap: str = "gray", ncols: int | None = None,
                vmin: float | None = None, vmax: float | None = None, colorbar: bool = False,
                size: float = 2.2, suptitle: str | None = None):
    """A grid of real images.

    Args:
        images: a (K, H, W) tensor or a sequence of K (H, W) tensors / arrays (a leading channel
            axis of size 1, (1, H, W), is dropped).
        titles: K titles, or None.
        cmap, vmin, vmax: as for ``imshow`` (shared by all panels).
        ncols: panels per row (default: all K in one row).
        colorbar: add a colour bar to each panel.
        size: panel side, inches.
    Returns:
        matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    images = [_numpy(im) for im in images]
    images = [im[0] if im.ndim == 3 else im for im in images]
    k = len(images)
    ncols = min(ncols or k, k)
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= k:
            continue
        handle = ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
        if colorbar:
            fig.colorbar(handle, ax=ax, fraction=0.046, pad=0.04)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_complex(fields, titles: Sequence[str] | None = None, *, size: float = 2.2, suptitle: str | None = None):
    """Complex fields as two rows: magnitude |z| (gray, own scale) above phase arg z (twilight, [-pi, pi]).

    Args:
        fields: a (K, H, W) complex tensor or a sequence of K (H, W) complex tensors.
        titles: K titles, or None.
    Returns:
        matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fields = [_numpy(f) for f in fields]
    k = len(fields)
    fig, axes = plt.subplots(2, k, figsize=(size * k + 0.6, 2 * size), squeeze=False)
    for i, f in enumerate(fields):
        m = axes[0, i].imshow(np.abs(f), cmap="gray", vmin=0)
        p = axes[1, i].imshow(np.angle(f), cmap="twilight", vmin=-math.pi, vmax=math.pi)
        axes[0, i].set_title((titles[i] + "\n" if titles is not None else "") + "magnitude", fontsize=9)
        axes[1, i].set_title("phase", fontsize=9)
        fig.colorbar(m, ax=axes[0, i], fraction=0.046, pad=0.04)
        for ax in axes[:, i]:
            ax.axis("off")
    fig.colorbar(p, ax=axes[1, :].tolist(), fraction=0.02, pad=0.02, label="rad")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_curves(x, curves: Mapping[str, Sequence[float]], *, xlabel: str, ylabel: str, title: str | None = None,
                logx: bool = False, marker: str = "o", size: tuple[float, float] = (5.0, 3.2)):
    """One line per entry of ``curves`` (label -> K values) against the K abscissae ``x``.

    Returns:
        matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    for label, values in curves.items():
        ax.plot(_numpy(x), _numpy(values), marker=marker, label=label)
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
