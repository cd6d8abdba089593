"""The recovery network's arithmetic (``prkd.utils.arithmetic``): how each precision resolves on a CPU with
and without bfloat16 units (simulated), that bfloat16 reaches the U-Net and nothing else, that a run records
the arithmetic it trained in, and that it is never resumed in another."""

import json

import pytest
import torch

import prkd
from conftest import InterruptAfter
from prkd.config import ConfigError
from prkd.data import load_splits
from prkd.learning import get_or_train
from prkd.learning import loop as loop_module
from prkd.learning import train as train_module
from prkd.utils import arithmetic
from prkd.utils.arithmetic import ArithmeticMismatch, resolve_arithmetic

TINY = dict(n_train=64, n_val=32, n_test=32, batch_size=16, epochs=2)


@pytest.fixture(scope="module")
def tiny_data():
    return load_splits(prkd.make("smoke", **TINY).data, download=False)


@pytest.fixture
def with_units(monkeypatch):
    """A CPU with AMX-BF16 (simulated)."""
    monkeypatch.setattr(arithmetic, "bfloat16_units", lambda: ["amx_bf16"])
    monkeypatch.delenv(arithmetic.EMULATION_VARIABLE, raising=False)


@pytest.fixture
def without_units(monkeypatch):
    """A float32-only CPU (simulated)."""
    monkeypatch.setattr(arithmetic, "bfloat16_units", lambda: [])
    monkeypatch.delenv(arithmetic.EMULATION_VARIABLE, raising=False)


def _quiet():
    return dict(progress=False, log=lambda msg: None)


def test_float32_cpu_falls_back_to_float32_and_refuses_an_explicit_bfloat16(without_units, monkeypatch):
    assert resolve_arithmetic("auto", "cpu") == "float32"
    assert resolve_arithmetic("float32", "cpu") == "float32"
    with pytest.raises(ConfigError, match="'precision'.*no native bfloat16 units"):
        resolve_arithmetic("bfloat16", "cpu")
    monkeypatch.setenv(arithmetic.EMULATION_VARIABLE, "1")  # accuracy checks only
    assert resolve_arithmetic("bfloat16", "cpu") == "bfloat16"


def test_bfloat16_cpu_and_cuda(with_units):
    assert resolve_arithmetic("bfloat16", "cpu") == "bfloat16"
    assert resolve_arithmetic("auto", "cpu") == "float32"  # auto stays float32 on CPUs (docs/performance.md)
    assert resolve_arithmetic("auto", "cuda") == "bfloat16"
    assert resolve_arithmetic("float32", "cuda") == "float32"
    assert resolve_arithmetic("bfloat16", "cuda") == "bfloat16"


def test_the_detection_reads_torchs_capabilities(monkeypatch):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_f": True, "avx512_bf16": True,
                                                                "amx_bf16": False})
    assert arithmetic.bfloat16_units() == ["avx512_bf16"] and arithmetic.cpu_has_bfloat16()
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_f": True, "avx512_bf16": False})
    assert arithmetic.bfloat16_units() == [] and not arithmetic.cpu_has_bfloat16()


def test_bfloat16_reaches_the_unet_and_not_the_optics(with_units):
    cfg = prkd.make("smoke", precision="bfloat16")
    system = prkd.PRSystem(cfg)
    seen = {}

    def hook(module, inputs, out):
        seen.setdefault("unet", out[0].dtype)  # returns None: the output is left as it is
    system.unet.register_forward_hook(hook)
    img = torch.rand(2, 1, cfg.data.image_size, cfg.data.image_size)
    out = system(img)
    assert seen["unet"] == torch.bfloat16
    assert out.y.dtype == torch.float32 and out.z.dtype == torch.complex64
    assert out.x_hat.dtype == torch.float32 and out.features.dtype == torch.float32
    system32 = prkd.PRSystem(prkd.make("smoke", precision="float32"))
    seen.clear()
    system32.unet.register_forward_hook(hook)
    system32(img)
    assert seen["unet"] == torch.float32


def test_the_arithmetic_is_in_the_run_id_and_recorded(tiny_data, registry, with_units):
    ids = {p: registry.run_for(prkd.make("smoke", precision=p, **TINY)).id for p in ("auto", "bfloat16")}
    assert ids["auto"] != ids["bfloat16"]
    run = get_or_train(prkd.make("smoke", precision="bfloat16", **TINY), registry=registry, data=tiny_data,
                       **_quiet())
    assert run.metrics()["arithmetic"] == "bfloat16"
    started = [json.loads(line) for line in (run.path / "events.jsonl").read_text().splitlines()
               if '"started"' in line]
    assert started[0]["arithmetic"] == "bfloat16"


def _interrupted(cfg, registry, data, monkeypatch):
    """The run of ``cfg`` stopped after its second step, its checkpoint written."""
    with monkeypatch.context() as patch:
        patch.setattr(loop_module, "InterruptFlag", InterruptAfter(2))
        with pytest.raises(train_module.TrainingInterrupted):
            get_or_train(cfg, registry=registry, data=data, **_quiet())
    run = registry.run_for(cfg)
    assert run.checkpoint_file.is_file()
    return run


def test_a_run_is_never_resumed_in_another_arithmetic(tiny_data, registry, monkeypatch, without_units):
    cfg = prkd.make("smoke", **TINY)  # precision auto: float32 here, bfloat16 on CUDA
    run = _interrupted(cfg, registry, tiny_data, monkeypatch)
    state = torch.load(run.checkpoint_file, weights_only=False)
    assert state["arithmetic"] == "float32"
    state["arithmetic"] = "bfloat16"  # as if it had trained on CUDA
    torch.save(state, run.checkpoint_file)
    before = run.checkpoint_file.read_bytes()
    with pytest.raises(ArithmeticMismatch, match="trained in bfloat16.*resolves to float32"):
        get_or_train(cfg, registry=registry, data=tiny_data, **_quiet())
    assert run.checkpoint_file.read_bytes() == before and not run.is_complete


def test_a_bfloat16_run_is_refused_on_a_cpu_without_units_and_kept(tiny_data, registry, monkeypatch):
    monkeypatch.delenv(arithmetic.EMULATION_VARIABLE, raising=False)
    monkeypatch.setattr(arithmetic, "bfloat16_units", lambda: ["avx512_bf16"])
    cfg = prkd.make("smoke", precision="bfloat16", **TINY)
    run = _interrupted(cfg, registry, tiny_data, monkeypatch)
    before = run.checkpoint_file.read_bytes()
    monkeypatch.setattr(arithmetic, "bfloat16_units", lambda: [])  # moved to a float32-only CPU
    with pytest.raises(ConfigError, match="'precision'"):
        get_or_train(cfg, registry=registry, data=tiny_data, **_quiet())
    assert run.checkpoint_file.read_bytes() == before
