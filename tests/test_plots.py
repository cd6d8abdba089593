"""The mask figure of notebooks 03 and 04: phases before above after, each 'after' titled with its drift."""

import math

import matplotlib
import pytest
import torch

from prkd.physics.optics import CDPSensing
from prkd.views.learned_optics import show_masks, wrapped_drift

matplotlib.use("Agg")


def test_wrapped_drift_matches_the_masks_own_drift():
    masks = CDPSensing(n_masks=2, size=8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        masks.phi.add_(torch.linspace(-4, 4, 128).reshape(2, 8, 8))  # some steps wrap past pi
    assert wrapped_drift(masks.phi0, masks.phi) == pytest.approx(masks.drift_rad(), abs=1e-6)
    assert wrapped_drift(masks.phi0, masks.phi0 + 2 * math.pi) == pytest.approx(0, abs=1e-6)


def test_show_masks_draws_before_above_after_with_the_drift_in_the_titles():
    import matplotlib.pyplot as plt

    phi0 = torch.rand(2, 8, 8) * 2 * math.pi
    phi = phi0 + torch.tensor([0.0, 0.25]).reshape(2, 1, 1)
    fig = show_masks(phi0, phi - 2 * math.pi, ["random", "e2e"])
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 4
    titles = [ax.get_title() for ax in images]
    assert titles[0].startswith("random\nbefore") and titles[1].startswith("e2e\nbefore")
    assert "drift 0.000 rad" in titles[2] and "drift 0.250 rad" in titles[3]
    for ax in images:   # wrapped to [0, 2 pi) on a cyclic map
        data = ax.images[0].get_array()
        assert data.min() >= 0 and data.max() < 2 * math.pi
        assert ax.images[0].get_cmap().name == "twilight"
    plt.close(fig)
    with pytest.raises(ValueError):
        show_masks(phi0, phi[:1], None)
