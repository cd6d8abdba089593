"""The sensing explorer: L, random or learned masks, noise and T -> the CDPs y (Eq. 1), the spectral initial
estimate z (Eq. 2, Algorithm 1) and its correlation with the scene, recomputed on every change.

A plain object: its widgets are attributes, its callbacks are methods that tests call directly (``compute``,
``config``), and displaying it shows its ``widget``. It builds its own validated config with
:func:`prkd.make`; the notebook's config is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets
import torch

from prkd.config import PRESETS, Config, from_dict, make
from prkd.data import load_splits, to_images
from prkd.physics.scene import phase_object
from prkd.metrics import correlation
from prkd.physics.system import PRSystem
from prkd.registry import Registry
from prkd.utils.device import default_device
from prkd.views.panel_parts import WIDE, figure_png

__all__ = ["SensingExplorer", "SensingView"]

_LEARNED_MODES = ("teacher", "e2e", "student")  # modes whose masks and filter were trained


@dataclass(frozen=True)
class SensingView:
    """What :meth:`SensingExplorer.compute` returns, for B images of N x N pixels (M = pad_factor * N)."""

    cfg: Config                 # the config the view was computed with
    img: torch.Tensor           # (B, 1, N, N) phase images in [0, 1]
    y: torch.Tensor             # (B, L, M, M) CDPs of Eq. (1), noise included
    z: torch.Tensor             # (B, N, N) complex initial estimate (Eq. 2, Algorithm 1)
    # (B,) |<z, x>| / (||z|| ||x||) with the scene x; 1 = exact up to a global phase
    correlation: torch.Tensor


class SensingExplorer:
    """L, mask kind, noise and T -> the CDPs, the initial estimate z and its correlation with the truth.

    Args:
        preset: the starting preset (image size, default T); the panel can switch to another.
        registry: where the learned masks are listed from (``prkd.open_registry``).
        seed: seeds the random masks, the power iteration's start and the noise draws.
        n_images: test images shown.
        images: uint8 test images (n, 28, 28) to use instead of loading Fashion-MNIST.
        device: default ``prkd.default_device()``.
    """

    def __init__(self, preset: str = "quick", *, registry: Registry, seed: int = 0, n_masks: int = 1,
                 n_images: int = 3, images: torch.Tensor | None = None, device: torch.device | None = None):
        base = make(preset, seed=seed, n_masks=n_masks)
        self.registry = registry
        self.seed, self.n_images, self.device = seed, n_images, device or default_device()
        self._raw = None if images is None else images[:n_images]
        self._learned: dict[str, dict] = {}  # run id -> state dict, loaded once
        self._syncing = False
        o = base.optics
        self.preset = widgets.ToggleButtons(options=tuple(PRESETS)[::-1], value=preset, description="preset")
        self.n_masks = widgets.IntSlider(value=n_masks, min=1, max=16, description="L (snapshots)",
                                         continuous_update=False, style=WIDE)
        self.mask = widgets.Dropdown(description="masks", style=WIDE, layout=widgets.Layout(width="auto"))
        self.noise = widgets.ToggleButtons(options=("none", "gaussian", "poisson"), value=o.noise,
                                           description="noise")
        self.snr_db = widgets.FloatSlider(value=o.snr_db, min=-10.0, max=60.0, step=1.0,
                                          description="SNR (dB)",
                                          continuous_update=False, style=WIDE)
        self.photons = widgets.FloatLogSlider(value=o.photons, base=10, min=0, max=5, step=0.1,
                                              description="photons / pixel",
                                              continuous_update=False, style=WIDE)
        self.T = widgets.IntSlider(value=base.init.T, min=1, max=100, description="T (power iterations)",
                                   continuous_update=False, style=WIDE)
        self.summary = widgets.HTML()
        self.figure = widgets.Image(format="png")
        self.summary.add_class("prkd-correlation")
        self.widget = widgets.VBox([
            widgets.HTML("<b>Sensing explorer</b>: CDPs (Eq. 1) and the spectral initial estimate (Eq. 2)"),
            self.preset, widgets.HBox([self.n_masks, self.mask]), self.noise,
            widgets.HBox([self.snr_db, self.photons]), self.T, self.summary, self.figure])
        self.widget.add_class("prkd-sensing-explorer")
        self._list_masks()
        self.preset.observe(self._on_preset, names="value")
        self.mask.observe(self._on_mask, names="value")
        for w in (self.n_masks, self.noise, self.snr_db, self.photons, self.T):
            w.observe(self.update, names="value")
        self._on_mask()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _list_masks(self) -> None:
        runs = [r for r in self.registry.runs(preset=self.preset.value, complete=True)
                if r.config().train.mode in _LEARNED_MODES]
        options = [(f"random (seed {self.seed})", None)]
        options += [(f"learned: {r.config().train.mode}, L = {r.config().optics.n_masks} ({r.id})",
                     r.id) for r in runs]
        self._syncing = True
        self.mask.options = options
        self.mask.value = None
        self._syncing = False

    def _on_preset(self, change=None) -> None:
        self._list_masks()
        self._on_mask()

    def _on_mask(self, change=None) -> None:
        """A learned mask fixes L to its run's; random masks free the L slider again."""
        if self._syncing:
            return
        learned = self.mask.value is not None
        self.n_masks.disabled = learned
        if learned:
            self._syncing = True
            self.n_masks.value = self.registry.find(self.mask.value).config().optics.n_masks
            self._syncing = False
        self.update()

    def config(self) -> Config:
        """The validated config of the current widget values (a learned run's config, for learned masks)."""
        sensing = {"noise": self.noise.value, "snr_db": float(self.snr_db.value),
                   "photons": float(self.photons.value), "T": int(self.T.value)}
        if self.mask.value is None:
            return make(self.preset.value, seed=self.seed, n_masks=int(self.n_masks.value), **sensing)
        d = self.registry.find(self.mask.value).config().to_dict()
        for name, value in sensing.items():
            d["init" if name == "T" else "optics"][name] = value
        return from_dict(d)

    def system(self, cfg: Config) -> PRSystem:
        """PRSystem of ``cfg``; with learned masks, its phi, psi (and start z0) are the registry run's."""
        system = PRSystem(cfg).to(self.device).eval()
        run_id = self.mask.value
        if run_id is not None:
            if run_id not in self._learned:
                self._learned[run_id] = self.registry.find(run_id).load_system(self.device).state_dict()
            system.load_state_dict(self._learned[run_id])
        return system

    def images(self) -> torch.Tensor:
        """The uint8 test images (n_images, 28, 28), loaded once."""
        if self._raw is None:
            self._raw = load_splits(make("smoke", n_test=self.n_images).data).test
        return self._raw

    @torch.no_grad()
    def compute(self) -> SensingView:
        """CDPs, initial estimate and correlation for the current widget values (noise seeded by ``seed``)."""
        cfg = self.config()
        system = self.system(cfg)
        img = to_images(self.images().to(self.device), cfg.data.image_size)
        y = system.measure(img, generator=torch.Generator().manual_seed(self.seed))
        z = system.initialize(y)
        x = phase_object(img, phase_range=cfg.data.phase_range)
        return SensingView(cfg=cfg, img=img, y=y, z=z, correlation=correlation(z, x))

    def update(self, change=None) -> SensingView | None:
        """Recompute and redraw (the widgets' callback). Returns the view, or None while syncing widgets."""
        if self._syncing:
            return None
        from prkd.views.plots import show_sensing
        self.snr_db.layout.display = None if self.noise.value == "gaussian" else "none"
        self.photons.layout.display = None if self.noise.value == "poisson" else "none"
        view = self.compute()
        o, c = view.cfg.optics, view.correlation
        noise = {"none": "no noise", "gaussian": f"Gaussian noise, SNR {o.snr_db:g} dB",
                 "poisson": f"Poisson noise, {o.photons:.3g} photons per pixel"}[o.noise]
        masks = "random masks" if self.mask.value is None else f"the masks and filter of {self.mask.value}"
        self.summary.value = (
            f"L = {o.n_masks} ({masks}), {noise}, T = {view.cfg.init.T}: correlation of z with the scene x "
            f"<b>{c.mean().item():.3f}</b> (mean of {len(c)}; per image "
            + ", ".join(f"{v:.3f}" for v in c.tolist())
            + f"); m / n = {o.n_masks} measurements per unknown")
        self.figure.value = figure_png(show_sensing(view.img, view.y, view.z, c, n_cdps=min(3, o.n_masks)))
        return view
