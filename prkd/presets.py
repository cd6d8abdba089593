"""The named presets of ``prkd.config.make``: overrides of the paper's defaults (see ``prkd.config``)."""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS"]

#: Overrides applied to the paper's defaults by each preset.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    # A 2-core CPU (times per model: prkd.config's docstring): 32x32 scenes, 4-level U-Net of width 16.
    # 4 epochs x 32 steps = 128 Adam steps: at the paper's mask_lr a phase could travel at most 0.064 rad, so
    # the masks would stay random. mask_lr = 0.1 allows 12.8 rad (the paper: 56k steps x 5e-4 = 28 rad);
    # measured: mean wrapped drift 0.71 rad (0.16 rad at 0.01). psi keeps lr: its travel bound, 0.064, is
    # already of the order of its entries (a 5 x 5 Gaussian of sum 1: at most 0.16).
    "quick": dict(image_size=32, n_train=2048, n_val=512, n_test=512, epochs=4,
                  unet_depth=4, unet_width=16, mask_lr=0.1),
    # The study of notebook 07 (does distillation help?): quick's shapes, trained four times longer. A phase
    # can travel at most 16 epochs x 32 steps x 0.05 = 26 rad (the paper: 28 rad).
    "study": dict(image_size=32, n_train=2048, n_val=512, n_test=512, epochs=16,
                  unet_depth=4, unet_width=16, mask_lr=0.05),
    # The budget ladder (prkd.experiments.ladder): the study's shapes and rates on the whole 30k training
    # split, a budget set in steps (epochs x 32 steps), learning rates decayed to 0 by a cosine so every run
    # ends flat.
    "ladder": dict(image_size=32, n_train=30_000, n_val=512, n_test=512, epochs=16, steps_per_epoch=32,
                   unet_depth=4, unet_width=16, mask_lr=0.05, lr_schedule="cosine"),
    # CI: seconds per notebook.
    "smoke": dict(image_size=16, n_train=128, n_val=64, n_test=64, epochs=1, batch_size=32,
                  T=10, unet_depth=3, unet_width=8),
}
