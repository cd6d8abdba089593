"""The interactive panels of prkd.views (sensing and distillation explorers), driven through their callbacks
(no browser): the configs they build, the refusal of alpha + beta > 1, training and loading from the button,
and the sensing explorer's numbers."""

import json
import re

import pytest
import torch
from conftest import REPO

import prkd
from prkd.views import distillation_explorer
from prkd.config import ConfigError
from prkd.physics.scene import phase_object
from prkd.metrics import correlation
from prkd.learning import get_or_train, teacher_config
from prkd.views.widgets import (
    DistillationExplorer,
    SensingExplorer,
    TeacherChoice,
    teacher_choices,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A registry with the smoke E2E baseline and a smoke teacher that does not fit a smoke student (U-Net
    width 4)."""
    registry = prkd.open_registry(tmp_path_factory.mktemp("registry"))
    get_or_train(prkd.make("smoke", mode="e2e"), registry=registry, progress=False, log=lambda _: None)
    get_or_train(prkd.make("smoke", mode="teacher", n_masks=2, unet_width=4, n_train=32, n_val=16, n_test=16),
                 registry=registry, progress=False, log=lambda _: None)
    return registry


def _text(html: str) -> str:
    """The text of an HTML snippet, tags removed and whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _forbid_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started")
    monkeypatch.setattr(distillation_explorer, "get_or_train", refuse)


# ---------------------------------------------------------------------------------------- distillation
# explorer

def test_slider_values_give_the_students_config_and_sigma(registry):
    panel = DistillationExplorer("smoke", registry=registry, seed=3, L_t=6, alpha=0.5, beta=0.25)
    assert panel.teacher.value == TeacherChoice(6, 3, None)
    panel.alpha.value = 0.6
    cfg = panel.config()
    assert cfg == prkd.make("smoke", mode="student", alpha=0.6, beta=0.25, teacher_masks=6,
                            teacher_seed=3, seed=3)
    assert cfg.sigma == pytest.approx(0.15)
    assert "σ = 1 − α − β = 0.15" in panel.sigma.value
    assert not panel.train_button.disabled and panel.train_button.description == "Train student"
    teacher = registry.run_for(prkd.learning.teacher_config(cfg)).id
    assert registry.run_for(cfg, teacher).id in panel.message.value
    assert "trains teacher, E2E baseline, student at the &#x27;smoke&#x27; preset" in panel.message.value


def test_alpha_plus_beta_one_is_accepted_with_sigma_zero(registry):
    panel = DistillationExplorer("smoke", registry=registry, alpha=0.8, beta=0.2)
    assert panel.validate() and panel.config().train.alpha + panel.config().train.beta == pytest.approx(1.0)
    assert "σ = 1 − α − β = 0.00" in panel.sigma.value and not panel.train_button.disabled


def test_alpha_plus_beta_above_one_is_refused_visibly_not_clipped_and_nothing_trains(monkeypatch, registry):
    _forbid_training(monkeypatch)
    panel = DistillationExplorer("smoke", registry=registry)
    panel.alpha.value, panel.beta.value = 0.8, 0.4
    assert (panel.alpha.value, panel.beta.value) == (0.8, 0.4)       # the sliders keep what was chosen
    assert panel.train_button.disabled
    assert "Refused, nothing will be trained" in panel.message.value
    # the config's wording
    assert "&#x27;alpha&#x27; + &#x27;beta&#x27; must be &lt;= 1" in panel.message.value
    assert "got alpha=0.8, beta=0.4" in panel.message.value
    assert "-0.20 &lt; 0: refused" in panel.sigma.value
    with pytest.raises(ConfigError, match="'alpha' \\+ 'beta' must be <= 1"):
        panel.config()
    assert panel.on_train() is None                                   # pressed anyway: refused again
    assert "Refused" in panel.message.value and panel.result.value == ""
    assert registry.runs() == [] and not any(registry.runs_dir.iterdir())
    panel.beta.value = 0.2                                            # back to a valid setting
    assert not panel.train_button.disabled and "Refused" not in panel.message.value


def test_the_button_trains_only_at_smoke_or_quick(monkeypatch, registry):
    _forbid_training(monkeypatch)
    panel = DistillationExplorer("paper", registry=registry, L_t=9)
    assert panel.preset.options == ("smoke", "quick") and panel.preset.value == "quick"
    assert "trains at &#x27;smoke&#x27; or &#x27;quick&#x27; only" in panel.message.value
    assert panel.config().preset == "quick"


def test_the_network_choice_gives_teacher_student_and_baseline_the_same_reconstructor(registry):
    panel = DistillationExplorer("smoke", registry=registry, seed=1, L_t=3)
    assert panel.arch.value == "unet" and panel.config().net.arch == "unet"
    unet_student = registry.run_for(panel.config()).id
    panel.arch.value = "unrolled"
    cfg = panel.config()
    assert cfg == prkd.make("smoke", mode="student", alpha=0.5, beta=0.25, teacher_masks=3, teacher_seed=1,
                            seed=1, arch="unrolled")
    assert panel.baseline_config().net.arch == "unrolled" and teacher_config(cfg).net.arch == "unrolled"
    assert registry.run_for(cfg).id != unet_student and panel.teacher.value == TeacherChoice(3, 1, None)
    assert "trains teacher, E2E baseline, student" in panel.message.value


def test_teacher_list_without_teachers_offers_the_defaults_to_train(registry):
    options = teacher_choices("smoke", registry=registry, seed=0, L_t=4)
    assert [c for _, c in options] == [TeacherChoice(L, 0, None) for L in (3, 4, 6, 9, 15)]
    assert all("not in the registry, trained first" in label for label, _ in options)


def test_the_button_trains_the_missing_runs_then_loads_them(trained, monkeypatch):
    registry = trained
    misfit = [r for r in registry.runs(mode="teacher") if r.config().net.unet_width == 4]
    # the misfit is not offered
    assert misfit and all(c.run_id is None for _, c in teacher_choices("smoke", registry=registry))
    panel = DistillationExplorer("smoke", registry=registry, L_t=2, alpha=0.5, beta=0.25)
    assert panel.teacher.value == TeacherChoice(2, 0, None)
    assert "trains teacher, student" in panel.message.value           # the E2E baseline is in the registry
    student = panel.on_train()
    assert student is not None and student.is_complete, panel.message.value
    assert "results below" in panel.message.value and panel.progress.value == 3
    cfg = student.config()
    assert (cfg.train.alpha, cfg.train.beta, cfg.train.teacher_masks, cfg.preset) == (0.5, 0.25, 2, "smoke")
    teacher = registry.find(student.teacher_id())
    assert teacher.config().optics.n_masks == 2 and teacher.is_complete
    # the table shows the registry's numbers, and the reconstructions were drawn
    m_student = student.metrics()
    m_e2e = registry.run_for(prkd.make("smoke", mode="e2e")).metrics()
    table = _text(panel.result.value)
    assert f"student 1 {m_student['test_psnr']:.2f} {m_student['test_ssim']:.3f} {student.id}" in table
    assert f"E2E baseline 1 {m_e2e['test_psnr']:.2f} {m_e2e['test_ssim']:.3f}" in table
    assert f"teacher 2 {teacher.metrics()['test_psnr']:.2f}" in table
    gain = round(m_student["test_psnr"] - m_e2e["test_psnr"], 2) + 0.0   # + 0.0: a tie reads +0.00, not -0.00
    assert f"student − E2E baseline: {gain:+.2f} dB" in table
    assert bytes(panel.figure.value).startswith(b"\x89PNG")
    # the new teacher is now offered from the registry, and the button loads instead of training
    assert panel.teacher.value == TeacherChoice(2, 0, teacher.id)
    assert panel.train_button.description == "Load student"
    before = {p: p.stat().st_mtime_ns for p in student.path.iterdir()}
    monkeypatch.setattr(prkd.learning.train, "new_fit", lambda *a,
                        **k: (_ for _ in ()).throw(AssertionError("trained")))
    assert panel.on_train() == student
    assert {p: p.stat().st_mtime_ns for p in student.path.iterdir()} == before
    # scored as deployed: the refined scores of every run, from the runs' refined.json, without training
    panel.refine.value = "raar"
    refined = prkd.learning.rescoring.refined_test_scores(student, refine="raar", iterations=200)
    line = f"student 1 {refined['refined_psnr']:.2f} {refined['refined_ssim']:.3f}"
    assert line in _text(panel.result.value)
    assert "refined by RAAR 200 on its own CDPs, no oracle" in _text(panel.result.value)


def test_a_failure_during_training_is_shown_in_the_panel(monkeypatch, registry):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(distillation_explorer, "get_or_train", broken)
    panel = DistillationExplorer("smoke", registry=registry)
    assert panel.on_train() is None
    assert "Training failed: RuntimeError: disk on fire" in panel.message.value
    assert not panel.train_button.disabled          # usable again


# --------------------------------------------------------------------------------------------- sensing
# explorer

def test_sensing_config_follows_the_widgets(test_images, registry):
    panel = SensingExplorer("smoke", registry=registry, seed=2, images=test_images)
    panel.n_masks.value, panel.T.value = 4, 30
    panel.noise.value = "poisson"
    panel.photons.value = 100.0
    assert panel.config() == prkd.make("smoke", seed=2, n_masks=4, T=30, noise="poisson", photons=100.0)
    assert panel.photons.layout.display is None and panel.snr_db.layout.display == "none"
    panel.noise.value = "gaussian"
    assert panel.snr_db.layout.display is None and panel.photons.layout.display == "none"
    panel.preset.value = "quick"
    view = panel.compute()
    assert view.img.shape == (3, 1, 32, 32) and view.y.shape == (3, 4, 32, 32) and view.z.shape == (3, 32, 32)


def test_sensing_view_is_the_systems_measurement_and_initial_estimate(test_images, registry):
    panel = SensingExplorer("smoke", registry=registry, seed=0, n_masks=3, images=test_images)
    view = panel.compute()
    system = prkd.PRSystem(prkd.make("smoke", seed=0, n_masks=3)).eval()
    with torch.no_grad():
        y = system.measure(view.img)
        z = system.initialize(y)
    assert torch.allclose(view.y.cpu(), y.cpu()) and torch.allclose(view.z.cpu(), z.cpu(), atol=1e-6)
    expected = correlation(z, phase_object(view.img, phase_range=system.cfg.data.phase_range))
    assert torch.allclose(view.correlation.cpu(), expected.cpu(), atol=1e-6)
    assert f"<b>{expected.mean().item():.3f}</b>" in panel.summary.value


def test_more_snapshots_and_less_noise_give_a_better_initial_estimate(test_images, registry):
    panel = SensingExplorer("smoke", registry=registry, seed=0, n_images=8, images=test_images)
    panel.T.value = 50
    one = panel.compute().correlation.mean().item()
    drawn = panel.figure.value
    panel.n_masks.value = 12                      # through the widget: the callback recomputes and redraws
    assert f"<b>{panel.compute().correlation.mean().item():.3f}</b>" in panel.summary.value
    assert panel.figure.value != drawn
    many = panel.compute().correlation.mean().item()
    panel.noise.value, panel.snr_db.value = "gaussian", -10.0
    noisy = panel.compute().correlation.mean().item()
    assert many > one + 0.05, (one, many)
    assert noisy < many - 0.05, (many, noisy)
    assert bytes(panel.figure.value).startswith(b"\x89PNG")   # the figure, redrawn in place


def test_learned_masks_come_from_a_registry_run(trained, monkeypatch, test_images):
    registry = trained
    e2e = registry.run_for(prkd.make("smoke", mode="e2e"))
    panel = SensingExplorer("smoke", registry=registry, n_masks=5, images=test_images)
    assert e2e.id in [value for _, value in panel.mask.options]
    panel.mask.value = e2e.id
    assert panel.n_masks.value == 1 and panel.n_masks.disabled
    panel.T.value = 7
    cfg = panel.config()
    assert cfg.init.T == 7 and cfg.optics.n_masks == 1 and cfg.train.mode == "e2e"
    trained = e2e.load_system("cpu")
    system = panel.system(cfg)
    assert torch.equal(system.sensing.phi.cpu(), trained.sensing.phi)
    assert torch.equal(system.init.filter.psi.cpu(), trained.init.filter.psi)
    assert not torch.equal(trained.sensing.phi, prkd.PRSystem(prkd.make("smoke", mode="e2e")).sensing.phi)
    assert e2e.id in panel.summary.value
    panel.mask.value = None
    assert not panel.n_masks.disabled


# ------------------------------------------------------------------------------------------------ notebooks

@pytest.mark.parametrize("notebook, panel", [("01_sensing_model", "SensingExplorer("),
                                             ("02_initialization", "SensingExplorer("),
                                             ("04_kd_student", "DistillationExplorer(")])
def test_the_notebooks_show_the_panels_without_checking_their_output(notebook, panel, registry):
    nb = json.loads((REPO / "notebooks" / f"{notebook}.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    using = [src for src in cells if panel in src]
    assert len(using) == 1, f"{notebook} should create one {panel[:-1]}"
    assert "NBVAL_CHECK_OUTPUT" not in using[0] and "on_train" not in using[0]
    if notebook == "04_kd_student":  # after the notebook's own training: its headless path does not change
        assert cells.index(using[0]) > max(i for i, src in enumerate(cells) if "get_or_train(" in src)
