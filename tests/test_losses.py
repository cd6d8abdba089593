"""Each loss of Eqs. (3)-(7) against a value computed by hand on a tiny tensor."""

import math

import pytest
import torch

from prkd.learning.objectives import cdp_loss, feature_loss, kd_weights, objective, task_loss
from prkd.physics.optics import mask_level_penalty


def test_task_loss_eq3_by_hand():
    x_hat = torch.tensor([[[[1.0, 2.0]]], [[[3.0, 4.0]]]])  # Q = 2 scenes of 1 x 2 pixels
    x = torch.tensor([[[[0.0, 0.0]]], [[[3.0, 2.0]]]])
    # scene 1: (1 + 4) / 2 = 2.5; scene 2: (0 + 4) / 2 = 2; mean over scenes 2.25
    assert task_loss(x_hat, x).item() == pytest.approx(2.25)


def test_cdp_loss_eq5_averages_each_systems_snapshots_first():
    y_t = torch.tensor([[[[1.0, 3.0]], [[3.0, 5.0]]]])  # Q = 1, L_t = 2: mean [2, 4]
    y_s = torch.tensor([[[[0.0, 4.0]]]])                # Q = 1, L_s = 1
    assert cdp_loss(y_t, y_s).item() == pytest.approx((2.0**2 + 0.0) / 2)
    y_s2 = torch.tensor([[[[0.0, 4.0]], [[4.0, 4.0]]]])  # L_s = 2: mean [2, 4] equals the teacher's
    assert cdp_loss(y_t, y_s2).item() == 0.0


def test_feature_loss_eq6_by_hand():
    f_t = torch.tensor([[[[1.0]], [[2.0]]], [[[0.0]], [[0.0]]]])  # Q = 2, C = 2, 1 x 1
    f_s = torch.tensor([[[[0.0]], [[0.0]]], [[[1.0]], [[1.0]]]])
    # scene 1: (1 + 4) / 2 = 2.5; scene 2: (1 + 1) / 2 = 1; mean 1.75
    assert feature_loss(f_t, f_s).item() == pytest.approx(1.75)


def test_mask_regularizer_eq4_by_hand():
    phi = torch.tensor([[[0.0, math.pi / 4]]])  # K = 4 levels at 0, pi/2, pi, 3pi/2
    assert mask_level_penalty(phi, 4).item() == pytest.approx((0.0 + 1.0) / 2)


def test_kd_objective_eq7_weights_and_sigma():
    task, pen, cdp, feat = torch.tensor(2.0), torch.tensor(0.1), torch.tensor(3.0), torch.tensor(5.0)
    total, terms = objective(task=task, penalty=pen, alpha=0.5, beta=0.25, cdp=cdp, feat=feat)
    assert total.item() == pytest.approx(0.5 * 2 + 0.1 + 0.25 * 3 + 0.25 * 5)
    expected = {"task": 2.0, "penalty": 0.1, "cdp": 3.0, "feat": 5.0}
    assert {k: v.item() for k, v in terms.items()} == pytest.approx(expected)
    assert kd_weights(0.2, 0.3) == pytest.approx((0.2, 0.3, 0.5))


def test_e2e_objective_eq4_is_alpha_one_beta_zero():
    total, terms = objective(task=torch.tensor(2.0), penalty=torch.tensor(0.5))
    assert total.item() == pytest.approx(2.5) and set(terms) == {"task", "penalty"}


@pytest.mark.parametrize("alpha, beta", [(-0.1, 0.5), (0.5, -0.1), (0.7, 0.4)])
def test_invalid_kd_weights_are_refused(alpha, beta):
    with pytest.raises(ValueError, match="alpha >= 0, beta >= 0, alpha \\+ beta <= 1"):
        kd_weights(alpha, beta)


def test_a_weighted_term_cannot_be_missing():
    with pytest.raises(ValueError, match="needs L_feat"):
        objective(task=torch.tensor(1.0), penalty=torch.tensor(0.0), alpha=0.4, beta=0.5,
                  cdp=torch.tensor(1.0))
