"""The checks behind ``prkd.config.make``: one field's type and range (``check_value``, with the range in
words, ``describe_range``) and the constraints between fields (``check_relations``). Every refusal is a
:class:`ConfigError` naming the field and what is allowed."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prkd.config import Config

__all__ = ["ConfigError", "UNROLL_FIELDS", "check_relations", "check_value", "describe_range"]

#: The net fields that only arch "unrolled" uses: a U-Net run keeps their defaults, leaves them out of its
#: identity (``prkd.registry.run``), and ignores stored values when loaded (``prkd.config.from_dict``).
UNROLL_FIELDS = ("unroll_stages", "unroll_width")


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or outside its allowed range."""


def describe_range(f: dataclasses.Field) -> str:
    m = f.metadata
    if m["choices"] is not None:
        return "one of " + ", ".join(repr(c) for c in m["choices"])
    if f.type == "str":
        return "a string"
    left = "(" if m["lo_open"] else "["
    lo = "-inf" if m["lo"] is None else f"{m['lo']:g}"
    hi = "inf" if m["hi"] is None else f"{m['hi']:g}"
    kind = {"int": "an integer", "float": "a number"}[f.type]
    return f"{kind} in {left}{lo}, {hi}]"


def check_value(name: str, f: dataclasses.Field, value: Any) -> Any:
    """Return ``value`` coerced to the field's type (int -> float only), or raise ConfigError."""
    expected = {"int": int, "float": float, "str": str}[f.type]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, expected):
        raise ConfigError(f"config field '{name}' must be {describe_range(f)}; "
                          f"got {value!r} of type {type(value).__name__}")
    m = f.metadata
    if m["choices"] is not None:
        if value not in m["choices"]:
            raise ConfigError(f"config field '{name}' must be {describe_range(f)}; got {value!r}")
        return value
    if expected is float and not math.isfinite(value):
        raise ConfigError(f"config field '{name}' must be {describe_range(f)}; got {value!r}")
    too_low = m["lo"] is not None and (value <= m["lo"] if m["lo_open"] else value < m["lo"])
    too_high = m["hi"] is not None and value > m["hi"]
    if too_low or too_high:
        raise ConfigError(f"config field '{name}' must be {describe_range(f)}; got {value!r}")
    return value


def check_relations(cfg: Config) -> None:
    """Constraints that involve more than one field."""
    if cfg.init.filter_size % 2 == 0:
        raise ConfigError(f"config field 'filter_size' must be an odd integer in [1, 31] "
                          f"(the filter is centred); got {cfg.init.filter_size}")
    step = 2 ** (cfg.net.unet_depth - 1)
    if cfg.data.image_size % step:
        raise ConfigError(f"config field 'image_size' must be a multiple of 2**(unet_depth-1) = {step} "
                          f"for a U-Net of depth {cfg.net.unet_depth}; got {cfg.data.image_size}")
    t = cfg.train
    if t.mode != "student" and (t.alpha != 1.0 or t.beta != 0.0):
        raise ConfigError("config fields 'alpha' and 'beta' weight the KD objective (Eq. 7) and apply only "
                          f"to mode 'student'; mode {t.mode!r} uses the E2E objective (Eq. 4), alpha = 1, "
                          f"beta = 0; got alpha={t.alpha:g}, beta={t.beta:g}")
    if t.mode != "student" and t.cdp_loss != "paper":
        raise ConfigError("config field 'cdp_loss' selects the form of L_cdp in the KD objective (Eq. 7) "
                          f"and applies only to mode 'student' (other modes log both forms as diagnostics); "
                          f"got cdp_loss={t.cdp_loss!r} for mode {t.mode!r}")
    n = cfg.net
    defaults = {f.name: f.default for f in dataclasses.fields(n)}
    if n.arch != "unrolled" and any(getattr(n, name) != defaults[name] for name in UNROLL_FIELDS):
        raise ConfigError("config fields 'unroll_stages' and 'unroll_width' apply only to arch 'unrolled'; "
                          f"got unroll_stages={n.unroll_stages}, unroll_width={n.unroll_width} with arch "
                          f"{n.arch!r}")
    if cfg.init.backward == "truncated" and cfg.init.backward_iterations > cfg.init.T:
        raise ConfigError(f"config field 'backward_iterations' must be in [1, T] = [1, {cfg.init.T}] with "
                          f"backward 'truncated'; got {cfg.init.backward_iterations}")
    batch = min(t.batch_size, cfg.data.n_train)
    if t.steps_per_epoch * batch > cfg.data.n_train:
        raise ConfigError(f"config field 'steps_per_epoch' must be in [0, n_train // batch_size] = "
                          f"[0, {cfg.data.n_train // batch}] (an epoch draws its batches without "
                          f"replacement); got {t.steps_per_epoch}")
    if cfg.train.alpha + cfg.train.beta > 1.0 + 1e-12:
        raise ConfigError(f"config fields 'alpha' + 'beta' must be <= 1 (sigma = 1 - alpha - beta >= 0, "
                          f"Eq. 7); got alpha={cfg.train.alpha:g}, beta={cfg.train.beta:g}")
