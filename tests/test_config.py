import dataclasses
import math

import pytest

import prkd
from prkd.config import PRESETS, ConfigError, from_dict, make


def test_paper_preset_holds_the_papers_values():
    cfg = make("paper")
    assert cfg.data.image_size == 96 and cfg.data.n_train == 30_000 and cfg.data.n_val == 30_000
    assert cfg.data.n_test == 10_000
    assert cfg.train.epochs == 120 and cfg.train.lr == 5e-4 and cfg.train.batch_size == 64
    assert cfg.init.T == 25


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_is_valid_and_round_trips(preset):
    cfg = make(preset)
    assert cfg.preset == preset
    assert from_dict(cfg.to_dict()) == cfg


def test_configs_are_frozen():
    cfg = make("smoke")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr = 1.0


def test_overrides_reach_their_section():
    cfg = make("quick", n_masks=9, T=50, mode="student", alpha=0.5, beta=0.25)
    assert cfg.optics.n_masks == 9 and cfg.init.T == 50
    assert math.isclose(cfg.sigma, 0.25)


def test_int_is_accepted_for_a_float_field():
    assert make("smoke", lr=1).train.lr == 1.0


@pytest.mark.parametrize("overrides, field, allowed", [
    (dict(n_masks=0), "n_masks", "[1, 64]"),
    (dict(T=0), "T", "[1, 10000]"),
    (dict(lr=0.0), "lr", "(0, 1]"),
    (dict(lr=-1e-3), "lr", "(0, 1]"),
    (dict(batch_size=0), "batch_size", "[1, 65536]"),
    (dict(epochs=0), "epochs", "[1, 100000]"),
    (dict(alpha=-0.1), "alpha", "[0, 1]"),
    (dict(beta=-0.1), "beta", "[0, 1]"),
    (dict(noise="speckle"), "noise", "'none', 'gaussian', 'poisson'"),
    (dict(phase_range=0.0), "phase_range", "(0, 6.28319]"),
    (dict(lr=float("nan")), "lr", "(0, 1]"),
])
def test_out_of_range_values_name_the_field_and_the_range(overrides, field, allowed):
    with pytest.raises(ConfigError) as err:
        make("smoke", **overrides)
    assert f"'{field}'" in str(err.value) and allowed in str(err.value)


@pytest.mark.parametrize("overrides, field", [
    (dict(T="25"), "T"), (dict(n_masks=2.5), "n_masks"), (dict(n_masks=True), "n_masks"),
    (dict(noise=1), "noise"),
])
def test_wrong_types_are_refused(overrides, field):
    with pytest.raises(ConfigError, match=f"'{field}' must be"):
        make("smoke", **overrides)


def test_unknown_key_is_refused_with_the_known_ones():
    with pytest.raises(ConfigError, match="unknown config field.*'n_mask'.*known fields:.*n_masks"):
        make("smoke", n_mask=3)


def test_unknown_preset_is_refused():
    with pytest.raises(ConfigError, match="'preset' must be one of 'paper', 'quick', 'study', 'ladder', "
                                          "'smoke'"):
        make("huge")


@pytest.mark.parametrize("size", [0, 4, 6])
def test_even_or_non_positive_filter_size_is_refused(size):
    with pytest.raises(ConfigError, match="'filter_size'"):
        make("smoke", filter_size=size)


def test_image_size_must_suit_the_unet_depth():
    with pytest.raises(ConfigError, match=r"'image_size' must be a multiple of 2\*\*\(unet_depth-1\) = 8"):
        make("quick", image_size=36)


def test_alpha_plus_beta_above_one_is_refused():
    with pytest.raises(ConfigError, match="'alpha' \\+ 'beta' must be <= 1"):
        make("smoke", mode="student", alpha=0.7, beta=0.4)


def test_config_error_is_a_value_error_and_exported():
    assert issubclass(prkd.ConfigError, ValueError)
