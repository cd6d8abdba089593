"""Notebook 08's figures: classical solvers' PSNR against L beside the learned systems, per noise model; the
learned masks' test PSNR when quantised to K fabrication levels."""

from __future__ import annotations

__all__ = ["fig_classical", "fig_quantisation"]

_STYLE = {"zero phase": ("tab:gray", ":"), "ER": ("tab:blue", "-"), "RAAR": ("tab:green", "-"),
          "WF": ("tab:orange", "-")}
_LEARNED = {"learned teacher (U-Net)": ("tab:red", "o"), "learned E2E (U-Net)": ("black", "s"),
            "learned student (U-Net)": ("tab:purple", "D"), "learned random (U-Net)": ("tab:brown", "v")}


def fig_classical(rows: list[dict]):
    """One panel per noise model: PSNR (dB) against L for each classical solver on random masks (solid) and on
    the learned teachers' masks (dashed), and the learned systems as markers."""
    import matplotlib.pyplot as plt
    noises = list(dict.fromkeys(r["noise"] for r in rows))
    fig, axes = plt.subplots(1, len(noises), figsize=(4.6 * len(noises), 3.8), squeeze=False, sharey=True)
    for ax, noise in zip(axes[0], noises):
        mine = [r for r in rows if r["noise"] == noise]
        for method, (colour, line) in _STYLE.items():
            for masks, style in (("random", line), ("learned (teacher's)", "--")):
                pts = sorted((r["L"], r["PSNR (dB)"]) for r in mine if r["method"] == method
                             and r["masks"] == masks)
                if pts and not (method == "zero phase" and masks != "random"):
                    ax.plot(*zip(*pts), style, color=colour, marker=".", label=f"{method}, {masks} masks")
        for method, (colour, marker) in _LEARNED.items():
            pts = sorted((r["L"], r["PSNR (dB)"]) for r in mine if r["method"] == method)
            if pts:
                ax.plot(*zip(*pts), marker, color=colour, linestyle="none", label=method)
        ax.set(title=f"noise: {noise}", xlabel="snapshots L", xscale="log")
        ax.set_xticks(sorted({r["L"] for r in rows}), labels=[str(L) for L in sorted({r["L"] for r in rows})])
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test PSNR (dB, capped at 100)")
    axes[0][-1].legend(fontsize=6, loc="center right")
    fig.tight_layout()
    return fig


def fig_quantisation(rows: list[dict]):
    """Test PSNR against the number of fabrication levels K for each run (unquantised at the right)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for label in dict.fromkeys(r["run"] for r in rows):
        mine = [r for r in rows if r["run"] == label]
        levels = [r for r in mine if r["levels"] != "unquantised"]
        ax.plot([r["levels"] for r in levels], [r["PSNR (dB)"] for r in levels], "o-", label=label)
        ax.axhline(next(r["PSNR (dB)"] for r in mine if r["levels"] == "unquantised"),
                   linestyle=":", linewidth=0.8)
    ax.set(xscale="log", xlabel="fabrication levels K (dotted: unquantised)", ylabel="test PSNR (dB)")
    ax.set_xticks([2, 4, 8, 16], labels=["2", "4", "8", "16"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
