"""Small plotting helpers shared by the notebooks. Each returns the matplotlib ``Figure`` it drew.

matplotlib is imported inside each function, never at module level, so ``import prkd`` stays light
and headless runs never touch a plotting backend they do not use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

__all__ = ["plot_curves", "plot_history", "show_complex", "show_images", "show_reconstructions",
           "show_sensing", "to_numpy"]


def to_numpy(a) -> np.ndarray:
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

    images = [to_numpy(im) for im in images]
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


def show_complex(fields, titles: Sequence[str] | None = None, *, size: float = 2.2,
                 suptitle: str | None = None):
    """Complex fields as two rows: magnitude |z| (gray, [0, max]) above phase arg z (twilight, [-pi, pi]).

    Args:
        fields: a (K, H, W) complex tensor or a sequence of K (H, W) complex tensors.
        titles: K titles, or None.
    Returns:
        matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fields = [to_numpy(f) for f in fields]
    k = len(fields)
    fig, axes = plt.subplots(2, k, figsize=(size * k + 0.6, 2 * size), squeeze=False)
    for i, f in enumerate(fields):
        m = axes[0, i].imshow(np.abs(f), cmap="gray", vmin=0)
        p = axes[1, i].imshow(np.angle(f), cmap="twilight", vmin=-math.pi, vmax=math.pi)
        axes[0, i].set_title((titles[i] + "\n" if titles is not None else "") + "magnitude", fontsize=9)
        axes[1, i].set_title("phase", fontsize=9)
        fig.colorbar(m, ax=axes[0, i], fraction=0.046, pad=0.04)
        for ax in axes[:, i]:   # ticks off but frame kept: a flat |z| = 1 would vanish into the page
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(p, ax=axes[1, :].tolist(), fraction=0.02, pad=0.02, label="rad")
    if suptitle:
        fig.suptitle(suptitle, y=1.02)
    return fig


def plot_curves(x, curves: Mapping[str, Sequence[float]], *, xlabel: str, ylabel: str,
                title: str | None = None,
                logx: bool = False, marker: str = "o", size: tuple[float, float] = (5.0, 3.2)):
    """One line per entry of ``curves`` (label -> K values) against the K abscissae ``x``.

    Returns:
        matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    for label, values in curves.items():
        ax.plot(to_numpy(x), to_numpy(values), marker=marker, label=label)
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_history(histories: Mapping[str, Sequence[Mapping[str, float]]], columns: Sequence[str], *,
                 titles: Mapping[str, str] | None = None, logy: Sequence[str] = (),
                 size: tuple[float, float] = (3.6, 2.8)):
    """Training curves from ``Run.history()`` rows: one panel per column, one line per run.

    Args:
        histories: label -> per-epoch rows (dicts with ``"epoch"`` and the columns); a run whose rows
            lack a column (e.g. ``cdp`` for a teacher) is left out of that panel.
        columns: history columns to draw, e.g. ``("loss", "val_psnr")``.
        titles: column -> panel title (default: the column name).
        logy: columns drawn on a log scale.
    Returns:
        matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(columns), figsize=(size[0] * len(columns), size[1]), squeeze=False)
    for ax, col in zip(axes[0], columns):
        for label, rows in histories.items():
            rows = [r for r in rows if col in r]
            if rows:
                ax.plot([r["epoch"] for r in rows], [r[col] for r in rows], marker="o", label=label)
        if col in logy:
            ax.set_yscale("log")
        ax.set(xlabel="epoch", title=(titles or {}).get(col, col))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if len(histories) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _draw_estimate(ax, label: str, est: torch.Tensor, scores: tuple | None) -> None:
    """One image: a complex estimate as its phase (twilight), a real one on [0, 1] titled with PSNR / SSIM."""
    ax.axis("off")
    if est.is_complex():
        ax.imshow(est.angle().numpy(), cmap="twilight", vmin=-math.pi, vmax=math.pi)
        title = f"{label}\n(phase)"
    else:
        ax.imshow(est.clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
        title = label if scores is None else f"{label}\n{scores[0]:.2f} dB / {scores[1]:.3f}"
    ax.set_title(title, fontsize=8)


def _draw_error(ax, error: torch.Tensor | None, first_column: bool, err_max: float) -> None:
    """Under an image: its |error| map on the figure's shared scale (or, under the truth, that scale's
    legend)."""
    ax.axis("off")
    if error is not None:
        ax.imshow(error.numpy(), cmap="magma", vmin=0, vmax=err_max)
        ax.set_title(f"|error|, max {error.max().item():.2f}", fontsize=7)
    elif first_column:
        ax.text(0.5, 0.5, f"|x_hat - x|\nscale 0 to {err_max:.2f}", ha="center", va="center", fontsize=8,
                transform=ax.transAxes)


def show_reconstructions(truth, estimates: Mapping[str, object], *, size: float = 1.9,
                         suptitle: str | None = None,
                         error_maps: bool = False):
    """One row per image: the truth, then one column per entry of ``estimates``.

    Args:
        truth: (B, [1,] N, N) phase images in [0, 1] (phase / phase_range).
        estimates: label -> (B, [1,] N, N). A real estimate is drawn on the truth's gray scale [0, 1] and
            titled with its PSNR (dB) and SSIM against the truth (``prkd.metrics``); a complex one (an initial
            estimate z) is drawn as its phase (twilight, [-pi, pi]) without metrics -- its global phase
            and scale are not those of the image.
        error_maps: add under each image's row the absolute error |x_hat - x| of every real estimate, on one
            colour scale shared by the whole figure.
    Returns:
        matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from prkd.metrics import psnr, ssim

    truth = torch.as_tensor(truth).detach().cpu()
    truth = truth.reshape(-1, *truth.shape[-2:])
    cols = [("truth x", truth, None)]
    for label, est in estimates.items():
        est = torch.as_tensor(est).detach().cpu()
        est = est.reshape(-1, *est.shape[-2:])
        scores = None if est.is_complex() else (psnr(est, truth), ssim(est, truth))
        cols.append((label, est, scores))
    errors = {j: (est.clamp(0, 1) - truth).abs() for j, (_, est, _) in enumerate(cols) if j
              and not est.is_complex()}
    err_max = max([e.max().item() for e in errors.values()], default=1.0) if error_maps else 1.0
    per_image = 2 if error_maps else 1
    fig, axes = plt.subplots(per_image * len(truth), len(cols),
                             figsize=(size * len(cols), (size + 0.25) * per_image
                                      * len(truth)), squeeze=False)
    for j, (label, est, scores) in enumerate(cols):
        for i in range(len(truth)):
            _draw_estimate(axes[per_image * i, j], label, est[i], None if scores is None else
                           (scores[0][i], scores[1][i]))
            if error_maps:
                _draw_error(axes[per_image * i + 1, j], errors[j][i] if j in errors else None,
                            j == 0, err_max)
    if suptitle:
        fig.suptitle(suptitle)
        # keep half an inch on top for the suptitle: tight_layout alone lets the first row's titles run into
        # it
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
    else:
        fig.tight_layout()
    return fig


def show_sensing(truth, y, z, correlation, *, n_cdps: int = 3, size: float = 1.9,
                 suptitle: str | None = None):
    """One row per image: the phase image, its first ``n_cdps`` CDPs and the phase of its initial estimate.

    Args:
        truth: (B, [1,] N, N) phase images in [0, 1].
        y: (B, L, M, M) CDPs (Eq. 1), drawn as log(1 + y), centred (fftshift), on a shared scale per row.
        z: (B, N, N) complex initial estimates (Eq. 2), drawn as their phase (twilight, [-pi, pi]).
        correlation: (B,) |<z, x>| / (||z|| ||x||) of each estimate with its scene, shown in its title.
        n_cdps: CDPs drawn per image (at most L).
    Returns:
        matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    truth = torch.as_tensor(truth).detach().cpu()
    truth = truth.reshape(-1, *truth.shape[-2:])
    y, z = torch.as_tensor(y).detach().cpu(), torch.as_tensor(z).detach().cpu()
    logs = torch.log1p(torch.fft.fftshift(y[:, :n_cdps].clamp_min(0), dim=(-2, -1)))
    k = logs.shape[1]
    fig, axes = plt.subplots(len(truth), k + 2, figsize=(size * (k + 2), (size + 0.25)
                                                         * len(truth)), squeeze=False)
    for i in range(len(truth)):
        axes[i, 0].imshow(truth[i].numpy(), cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_title("truth x (phase image)" if i == 0 else "", fontsize=8)
        for ell in range(k):
            axes[i, 1 + ell].imshow(logs[i, ell].numpy(), cmap="magma", vmin=0, vmax=logs[i].max().item())
            axes[i, 1 + ell].set_title(f"log(1 + y_{ell + 1})" if i == 0 else "", fontsize=8)
        axes[i, -1].imshow(z[i].angle().numpy(), cmap="twilight", vmin=-math.pi, vmax=math.pi)
        axes[i, -1].set_title(f"phase of z\ncorrelation {float(correlation[i]):.3f}", fontsize=8)
        for ax in axes[i]:
            ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig
