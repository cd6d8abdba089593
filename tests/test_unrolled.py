"""The unrolled reconstructor (net.arch = "unrolled"): its data-consistency step, gradients that reach the
masks through every stage, every mode training with it, its config checks, and run ids of the U-Net left
unchanged."""

import signal
import textwrap

import pytest
import torch

import prkd
from prkd.config import ConfigError, from_dict
from prkd.data import load_splits, to_images
from prkd.learning import get_or_train
from prkd.nets.unrolled import UnrolledReconstructor
from prkd.physics.optics import CDPSensing
from prkd.physics.system import PRSystem
from prkd.registry import load_checkpoint, run_id

TINY = dict(n_train=64, n_val=32, n_test=32, batch_size=16, epochs=1, arch="unrolled", unroll_stages=2,
            unroll_width=4)


def test_the_data_consistency_step_keeps_the_truth_and_moves_a_wrong_start_toward_its_cdps():
    torch.manual_seed(0)
    sensing = CDPSensing(n_masks=4, size=16, generator=torch.Generator().manual_seed(1))
    truth = torch.polar(torch.ones(2, 16, 16), torch.rand(2, 16, 16) * 3)
    y = sensing(truth)
    net = UnrolledReconstructor(stages=1, depth=2, width=2, phase_range=3.0)
    v = sensing.A(truth)
    projected = sensing.A_adjoint(v * (y.sqrt() / v.abs())) / sensing.n_masks
    assert torch.allclose(projected, truth, atol=1e-5)  # the truth is a fixed point of the projection
    wrong = truth * torch.polar(torch.ones(2, 16, 16), 0.5 * torch.randn(2, 16, 16))
    w = sensing.A(wrong)
    step = sensing.A_adjoint(w * (y.sqrt() / w.abs())) / sensing.n_masks
    misfit = lambda x: (sensing.A(x).abs() - y.sqrt()).norm()  # noqa: E731
    assert misfit(step) < misfit(wrong)
    assert net.relaxations().tolist() == pytest.approx([1.0])  # the plain projection at the start


class _PhaseOfInput(torch.nn.Module):
    """A stage's denoiser that returns the phase of the field it is given: with it, a stage is classical."""

    def __init__(self, phase_range: float):
        super().__init__()
        self.phase_range = phase_range

    def forward(self, field: torch.Tensor):
        return (torch.complex(field[:, 0], field[:, 1]).angle() / self.phase_range)[:, None], torch.zeros(1)


def test_a_stage_with_a_phase_denoiser_at_its_initial_step_is_one_iteration_of_error_reduction():
    from prkd.classical import gerchberg_saxton
    sensing = CDPSensing(n_masks=2, size=16, generator=torch.Generator().manual_seed(1))
    phases = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    truth, start = (torch.polar(torch.ones(3, 16, 16), p) for p in phases)
    y = sensing(truth)
    net = UnrolledReconstructor(stages=1, depth=2, width=2, phase_range=3.0)
    net.denoisers = torch.nn.ModuleList([_PhaseOfInput(3.0)])
    with torch.no_grad():
        x_hat, _ = net(start, y, sensing)
    er = gerchberg_saxton(y, sensing, size=16, init=start, iterations=1, tol=0).z
    assert torch.allclose(torch.polar(torch.ones_like(x_hat[:, 0]), 3.0 * x_hat[:, 0]), er, atol=1e-5)
    assert not torch.allclose(er, start, atol=1e-2)  # the step moved: the check is not of a fixed point


def test_one_images_result_does_not_depend_on_the_rest_of_its_batch(test_images):
    cfg = prkd.make("smoke", **TINY, n_masks=2, noise="poisson", photons=100.0)
    system = PRSystem(cfg).eval()
    img = to_images(test_images[:4], cfg.data.image_size)
    with torch.no_grad():
        y = system.measure(img, generator=torch.Generator().manual_seed(0))
        whole, _ = system.reconstruct(system.initialize(y), y)
        alone, _ = system.reconstruct(system.initialize(y[2:3]), y[2:3])
    assert torch.allclose(whole[2:3], alone, atol=1e-5)


def test_an_unrolled_run_killed_mid_step_resumes_to_the_same_weights(tmp_path):
    from test_faults import _KILL_HOOKS, _child
    cfg = ("prkd.make('smoke', mode='e2e', n_train=64, n_val=32, n_test=32, batch_size=16, epochs=2, "
           "arch='unrolled', unroll_stages=2, unroll_width=4, noise='poisson', photons=100.0)")
    train = f"run = train.get_or_train({cfg}, registry=prkd.open_registry(), progress=False)\nprint(run.id)"
    done = _child(train, tmp_path / "reference")
    assert done.returncode == 0, done.stderr
    rid = done.stdout.strip().splitlines()[-1]
    killed = _child(textwrap.dedent(_KILL_HOOKS["mid-step"]).format(n=6) + train, tmp_path / "killed")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (tmp_path / "killed" / "runs" / rid / "checkpoint.pt").is_file()  # epoch 1 was checkpointed
    again = _child(train, tmp_path / "killed")
    assert again.returncode == 0, again.stderr
    ref = load_checkpoint(tmp_path / "reference" / "runs" / rid / "model.pt")["state_dict"]
    res = load_checkpoint(tmp_path / "killed" / "runs" / rid / "model.pt")["state_dict"]
    assert ref.keys() == res.keys() and all(torch.equal(res[k], ref[k]) for k in ref)


def test_the_unrolled_system_runs_every_stage_and_its_gradient_reaches_the_masks(test_images):
    cfg = prkd.make("smoke", **TINY, n_masks=2)
    system = PRSystem(cfg)
    img = to_images(test_images[:4], cfg.data.image_size)
    out = system(img)
    assert out.x_hat.shape == img.shape and out.features.shape[1:] == system.unet.feature_shape(16)
    out.x_hat.mean().backward()
    assert system.sensing.phi.grad is not None and system.sensing.phi.grad.abs().sum() > 0
    assert system.unet.relax_logit.grad is not None
    assert all(p.grad is not None for p in system.unet.denoisers[0].parameters())
    with pytest.raises(ValueError, match="needs the CDPs y"):
        system.reconstruct(out.z)


def test_the_stages_use_the_measurements(test_images):
    """The same z with other CDPs gives another output: unlike the paper's U-Net, the stages read y."""
    cfg = prkd.make("smoke", **TINY)
    system = PRSystem(cfg).eval()
    img = to_images(test_images[:2], cfg.data.image_size)
    with torch.no_grad():
        y = system.measure(img)
        z = system.initialize(y)
        a, _ = system.reconstruct(z, y)
        b, _ = system.reconstruct(z, y.flip(0))
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("mode", ["e2e", "random", "student"])
def test_every_mode_trains_with_the_unrolled_reconstructor(mode, registry):
    extra = dict(alpha=0.5, beta=0.25, teacher_masks=2) if mode == "student" else {}
    cfg = prkd.make("smoke", mode=mode, **TINY, **extra)
    data = load_splits(cfg.data, download=False)
    run = get_or_train(cfg, registry=registry, data=data, progress=False, log=lambda m: None)
    m = run.metrics()
    assert run.is_complete and m["test_psnr"] > 0
    if mode == "student":
        assert registry.find(run.teacher_id()).config().net.arch == "unrolled"  # the teacher shares the arch


def test_the_unroll_fields_are_checked_and_leave_unet_run_ids_alone():
    with pytest.raises(ConfigError, match="'arch' must be one of 'unet', 'unrolled'"):
        prkd.make("smoke", arch="resnet")
    with pytest.raises(ConfigError, match="'unroll_stages' must be an integer in \\[1, 16\\]"):
        prkd.make("smoke", arch="unrolled", unroll_stages=0)
    with pytest.raises(ConfigError, match="apply only to arch 'unrolled'"):
        prkd.make("smoke", unroll_stages=4)
    assert run_id(prkd.make("quick", mode="e2e")) == "e2e-L1-quick-s0-c29f65c76e"
    assert run_id(prkd.make("quick", mode="e2e", arch="unrolled")) != "e2e-L1-quick-s0-c29f65c76e"


def test_the_measured_defaults_hold_and_a_unet_run_stored_with_other_unroll_values_still_loads():
    net = prkd.make("quick", arch="unrolled").net
    assert (net.unroll_stages, net.unroll_width) == (1, 16)  # docs/unrolled.md, "Choosing K and the width"
    stored = prkd.make("quick", mode="e2e").to_dict()
    stored["net"] |= {"unroll_stages": 3, "unroll_width": 8}  # what U-Net runs stored before the choice
    loaded = from_dict(stored)
    assert loaded == prkd.make("quick", mode="e2e") and run_id(loaded) == "e2e-L1-quick-s0-c29f65c76e"
    k3 = prkd.make("quick", mode="e2e", arch="unrolled", unroll_stages=3, unroll_width=8)
    assert from_dict(k3.to_dict()) == k3 and run_id(k3) != run_id(prkd.make("quick", mode="e2e",
                                                                                          arch="unrolled"))


def test_the_unrolled_plan_pairs_its_seeds_under_one_noise_and_budget():
    from prkd.experiments.unrolled import best_beta_of, unrolled_runs
    runs = unrolled_runs("ladder", best_beta=0.01)
    assert {(r.cfg.optics.noise, r.cfg.optics.photons, r.steps) for r in runs} == {("poisson", 100.0, 1024)}
    groups = {g: {r.seed for r in runs if r.group == g} for g in {r.group for r in runs}}
    five = {0, 1, 2, 3, 4}
    for group in ("unrolled e2e", "unrolled random", "unrolled KD", "unet e2e"):
        assert groups[group] == five, group
    assert groups["unrolled KD normalized beta=0.01"] == {0, 1, 2}
    assert {r.cfg.net.arch for r in runs if r.group.startswith("unrolled")} == {"unrolled"}
    assert {r.cfg.net.arch for r in runs if r.group == "unet e2e"} == {"unet"}
    assert [r.group for r in runs[:2]] == ["unrolled teacher L_t=3", "unrolled teacher L_t=9"]
    assert "unrolled KD normalized beta=0.01" not in {r.group for r in unrolled_runs("ladder")}
    assert best_beta_of([]) is None
    assert best_beta_of([{"beta": 0.01, "ΔPSNR vs E2E, raw (dB)": -0.2},
                         {"beta": 0.1, "ΔPSNR vs E2E, raw (dB)": 0.1}]) == 0.1


def test_a_recorded_run_is_not_trained_again_and_is_reported_from_its_record(tmp_path, monkeypatch, registry):
    """The experiment spans sittings: a run kept as a record (no weights) is skipped by training and read by
    the report."""
    import json
    import types

    from prkd.experiments import engine
    from prkd.experiments.unrolled import UNROLLED, unrolled_runs
    e2e = next(r for r in unrolled_runs("smoke") if (r.group, r.seed) == ("unrolled e2e", 0))
    rid = run_id(e2e.cfg, None)
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / f"{rid}.json").write_text(json.dumps(
        {"run_id": rid, "config": e2e.cfg.to_dict(), "teacher_run": None, "history": [], "refined": {},
         "fair": {}, "metrics": {"test_psnr": 21.5, "test_ssim": 0.6}}))
    trained = []
    outcome = types.SimpleNamespace(complete={}, failed={}, skipped={})
    outcome.raise_if_failed = lambda what: types.SimpleNamespace(runs_by_name=lambda: {})
    monkeypatch.setattr(engine, "train_in_order", lambda runs, **kw: trained.extend(runs) or outcome)
    engine.train(UNROLLED, "smoke", registry=registry, records=tmp_path / "records")
    assert trained and e2e.cfg not in [r.cfg for r in trained]
    assert len(trained) == len(unrolled_runs("smoke")) - 1
    runs = engine.collect(UNROLLED, "smoke", registry=registry, records=tmp_path / "records").runs
    key = (e2e.steps, "unrolled e2e", 0)
    assert list(runs) == [key] and runs[key].metrics()["test_psnr"] == 21.5


class _Finished:
    """What the flatness and training tables read of a run: its history and its metrics."""

    def __init__(self, val: list[float], seconds: float):
        self.val, self.seconds = val, seconds

    def history(self):
        return [{"val_psnr": v} for v in self.val]

    def metrics(self):
        return {"train_seconds": self.seconds, "device": "cpu"}


def test_flatness_names_a_group_that_still_rises_and_training_sums_each_groups_seconds():
    from prkd.experiments import engine
    from prkd.experiments.spec import PlannedRun
    from prkd.experiments.unrolled import UNROLLED
    from prkd.experiments.verdicts import flatness_rows
    from prkd.views.experiment_report import training_rows
    flat = [20.0] * 12 + [21.0] * 8          # last 10 % (2 epochs) flat, last quarter (5 epochs) flat
    rising = [20.0 + 0.1 * i for i in range(20)]  # 0.2 dB over the last 10 %, 0.5 over the last quarter
    finished = {(64, "e2e", 0): _Finished(flat, 100.0), (64, "e2e", 1): _Finished(flat, 120.0),
                (64, "KD", 0): _Finished(rising, 50.0)}
    for key, run in finished.items():
        run.id = f"{key[1]}-{key[2]}"
    items = [PlannedRun(*key, None) for key in finished]
    results = engine.Results(UNROLLED, "smoke", items, finished)
    rows = {r["group"]: r for r in flatness_rows(results)}
    assert rows["e2e"]["reading"] == "flat under its schedule" and rows["e2e"]["runs"] == 2
    assert rows["e2e"]["mean gain, last quarter (dB)"] == 0.0
    assert rows["KD"]["reading"] == "still rising at its end"
    assert rows["KD"]["largest gain, last 10 % (dB)"] == pytest.approx(0.2)
    assert rows["KD"]["mean gain, last quarter (dB)"] == pytest.approx(0.5)
    assert rows["e2e"]["end moved by a doubled budget (dB)"] == ""  # one budget: never "converged"
    seconds = {r["group"]: (r["runs"], r["training seconds"]) for r in training_rows(results)}
    assert seconds == {"KD": (1, 50.0), "e2e": (2, 220.0), "all": (3, 270.0)}
