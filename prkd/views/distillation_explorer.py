"""The distillation explorer: alpha and beta of Eq. (7) (sigma = 1 - alpha - beta shown; alpha + beta > 1
refused, never clipped), the teacher's L_t, the recovery network (the paper's U-Net or notebook 10's unrolled
reconstructor; teacher, student and E2E baseline share it), and a button that trains -- or loads from the run
registry -- a student at the ``smoke`` or ``quick`` preset and compares it with the E2E baseline.

A plain object: its widgets are attributes, its callbacks are methods that tests call directly (``config``,
``validate``, ``on_train``), and displaying it shows its ``widget``. Nothing trains until the button is
pressed, so a headless run (papermill) only builds and displays it.
"""

from __future__ import annotations

import traceback

import ipywidgets as widgets
import torch

from prkd.config import Config, ConfigError, make
from prkd.data import Splits, load_splits, to_images
from prkd.learning import STUDENT_ALPHA, STUDENT_BETA, TrainingInterrupted, get_or_train, teacher_config
from prkd.registry import Registry, Run
from prkd.utils.device import default_device
from prkd.views.panel_parts import WIDE, figure_png, message_box
from prkd.views.teacher_choices import DEFAULT_TEACHER_SNAPSHOTS, TeacherChoice, teacher_choices

__all__ = ["ARCH_CHOICES", "DEFAULT_TEACHER_SNAPSHOTS", "PANEL_PRESETS", "DistillationExplorer",
           "TeacherChoice", "teacher_choices"]

#: Presets the distillation button may train at (``paper`` takes hours on a CPU).
PANEL_PRESETS = ("smoke", "quick")
#: The recovery networks offered (``net.arch``): the paper's U-Net, or notebook 10's unrolled reconstructor.
ARCH_CHOICES = (("U-Net (the paper's)", "unet"), ("unrolled (notebook 10)", "unrolled"))


class DistillationExplorer:
    """alpha, beta and L_t -> a student trained (or loaded) at ``smoke`` or ``quick``, next to the E2E
    baseline.

    Eq. (7): alpha L_task + rho R(phi) + beta L_cdp + sigma L_feat with sigma = 1 - alpha - beta >= 0. A
    setting with alpha + beta > 1 is refused with the config's own message and the button is disabled; the
    sliders keep the values the user chose.

    Args:
        preset: ``smoke`` or ``quick``; any other (``paper``) starts the panel at ``quick`` with a note.
        registry: where the teachers are listed from and the runs are trained (``prkd.open_registry``).
        seed: seed of the student and of the E2E baseline it is compared with.
        L_t, alpha, beta: the starting values (the notebook's parameters).
        n_images: test images reconstructed after training.
        device: default ``prkd.default_device()``.
    """

    def __init__(self, preset: str = "quick", *, registry: Registry, seed: int = 0, L_t: int = 9,
                 alpha: float = STUDENT_ALPHA, beta: float = STUDENT_BETA, n_images: int = 4,
                 device: torch.device | None = None):
        self.registry = registry
        self.seed, self.n_images, self.device = seed, n_images, device or default_device()
        self._L_t, self._busy, self._splits = L_t, False, {}
        self.note = "" if preset in PANEL_PRESETS else (
            f"The button trains at 'smoke' or 'quick' only ('{preset}' is meant for a GPU and takes hours): "
            f"the panel starts at 'quick'. ")
        self.preset = widgets.ToggleButtons(options=PANEL_PRESETS, value=preset if preset in PANEL_PRESETS
                                            else "quick", description="preset")
        self.alpha = widgets.FloatSlider(value=alpha, min=0.0, max=1.0, step=0.05, description="α (L_task)",
                                         readout_format=".2f", style=WIDE)
        self.beta = widgets.FloatSlider(value=beta, min=0.0, max=1.0, step=0.05, description="β (L_cdp)",
                                        readout_format=".2f", style=WIDE)
        self.sigma = widgets.HTML()
        self.arch = widgets.ToggleButtons(options=ARCH_CHOICES, value="unet", description="network")
        self.teacher = widgets.Dropdown(description="teacher", style=WIDE,
                                        layout=widgets.Layout(width="auto"))
        self.refine = widgets.Dropdown(options=[("no refinement", "none"), ("+ ER 200 (no oracle)", "er"),
                                                ("+ RAAR 200 (no oracle)", "raar")], value="none",
                                       description="scored", style=WIDE)
        self.train_button = widgets.Button(description="Train student", icon="play", button_style="primary")
        self.progress = widgets.IntProgress(value=0, min=0, max=3, description="", style=WIDE)
        self.message = widgets.HTML()
        self.result = widgets.HTML()
        self.log = widgets.Output()
        self.figure = widgets.Image(format="png", layout=widgets.Layout(display="none"))  # shown once drawn
        self.progress.layout.display = "none"
        for w, name in ((self.alpha, "alpha"), (self.beta, "beta"), (self.sigma, "sigma"),
                        (self.teacher, "teacher"),
                        (self.train_button, "train"), (self.message, "message"), (self.result, "result")):
            w.add_class(f"prkd-{name}")
        self.widget = widgets.VBox([
            widgets.HTML("<b>Distillation explorer</b>: the student of Eq. (7), "
                         "α L<sub>task</sub> + β L<sub>cdp</sub> + σ L<sub>feat</sub>"),
            self.preset, self.arch, widgets.HBox([self.alpha, self.beta, self.sigma]),
            widgets.HBox([self.teacher, self.refine]),
            widgets.HBox([self.train_button, self.progress]), self.message, self.log,
            self.result, self.figure])
        self.widget.add_class("prkd-distillation-explorer")
        self._list_teachers()
        for w in (self.preset, self.arch):
            w.observe(self._on_preset, names="value")
        for w in (self.alpha, self.beta, self.teacher):
            w.observe(self.validate, names="value")
        self.train_button.on_click(self.on_train)
        self.refine.observe(self._on_refine, names="value")
        self._shown: dict[str, Run] | None = None
        self.validate()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _list_teachers(self) -> None:
        """Fill the teacher list for the current preset, keeping the chosen L_t where it is still offered."""
        current = self.teacher.value.L_t if self.teacher.value is not None else self._L_t
        options = teacher_choices(self.preset.value, registry=self.registry, seed=self.seed, L_t=current,
                                  arch=self.arch.value)
        self.teacher.options = options
        self.teacher.value = next(c for _, c in options if c.L_t == current)

    def _on_preset(self, change=None) -> None:
        self._list_teachers()
        self.validate()

    def weights(self) -> tuple[float, float]:
        """(alpha, beta) as the sliders show them (rounded to 1e-6 against float noise; never clipped)."""
        return round(float(self.alpha.value), 6), round(float(self.beta.value), 6)

    def config(self) -> Config:
        """The student's validated config for the current values. Raises ConfigError (e.g. alpha + beta >
        1)."""
        alpha, beta = self.weights()
        choice = self.teacher.value
        return make(self.preset.value, mode="student", alpha=alpha, beta=beta, teacher_masks=choice.L_t,
                    teacher_seed=choice.seed, seed=self.seed, arch=self.arch.value)

    def baseline_config(self) -> Config:
        """The E2E baseline (L = 1, Eq. 4) the student is compared with: same preset, network and seed."""
        return make(self.preset.value, mode="e2e", seed=self.seed, arch=self.arch.value)

    def _teacher_id(self, cfg: Config) -> str:
        return self.teacher.value.run_id or self.registry.run_for(teacher_config(cfg)).id

    def validate(self, change=None) -> bool:
        """Show sigma and what the button would do; refuse (message, disabled button) an invalid setting."""
        alpha, beta = self.weights()
        sigma = round(1.0 - alpha - beta, 6) + 0.0  # + 0.0: no "-0.00" for alpha + beta = 1
        try:
            cfg = self.config()
        except ConfigError as err:
            self.sigma.value = (f'<span style="color:#c62828">σ = 1 − α − β = {sigma:.2f} &lt; 0: '
                                'refused</span>')
            self.message.value = message_box(f"Refused, nothing will be trained: {err}. Lower α or β so that "
                                      f"α + β ≤ 1.", "error")
            self.train_button.disabled = True
            return False
        self.sigma.value = f"σ = 1 − α − β = {sigma:.2f} (weight of L<sub>feat</sub>)"
        teacher_id = self._teacher_id(cfg)
        student = self.registry.run_for(cfg, teacher_id)
        todo = [name for name, run in (("teacher", Run(self.registry.runs_dir / teacher_id)),
                                       ("E2E baseline", self.registry.run_for(self.baseline_config())),
                                       ("student", student)) if not run.is_complete]
        self.train_button.description = "Train student" if todo else "Load student"
        self.train_button.disabled = self._busy
        what = (f"the button trains {', '.join(todo)} at the '{cfg.preset}' preset ({cfg.train.epochs} "
                "epoch(s))"
                if todo else "the button loads it and the E2E baseline from the registry")
        self.message.value = message_box(f"{self.note}Student run {student.id}: {what}.")
        return True

    def _data(self, cfg: Config) -> Splits:
        if cfg.preset not in self._splits:
            self._splits[cfg.preset] = load_splits(cfg.data)
        return self._splits[cfg.preset]

    def _stage(self, done: int, text: str) -> None:
        self.progress.value = done
        self.progress.description = f"{done}/3 {text}"

    def on_train(self, button=None) -> Run | None:
        """The button's callback: train or load teacher, E2E baseline and student, then show the comparison.

        Returns the student's run, or None when the setting is refused or training failed (the message says
        why).
        """
        if self._busy or not self.validate():
            return None
        cfg = self.config()
        choice = self.teacher.value
        self._busy, self.train_button.disabled = True, True
        self.log.clear_output()
        self.figure.value, self.result.value = b"", ""
        self.figure.layout.display, self.progress.layout.display = "none", None
        student = None
        try:
            with self.log:
                data = self._data(cfg)
                kw = {"registry": self.registry, "device": self.device, "data": data, "log": print}
                self._stage(0, f"teacher (L_t = {choice.L_t})")
                teacher = (self.registry.find(choice.run_id) if choice.run_id
                           else get_or_train(teacher_config(cfg), **kw))
                self._stage(1, "E2E baseline")
                e2e = get_or_train(self.baseline_config(), **kw)
                self._stage(2, "student")
                student = get_or_train(cfg, teacher_run=teacher.id, **kw)
                self._stage(3, "done")
            self.show_results(student, e2e, teacher, data)
            outcome = message_box(f"Student run {student.id} (α = {cfg.train.alpha:g}, β = "
                                  f"{cfg.train.beta:g}, "
                           f"σ = {round(cfg.sigma, 6) + 0.0:g}, L_t = {choice.L_t}): results below.", "ok")
        except TrainingInterrupted as err:
            outcome = message_box(f"{err} (press the button again to resume)", "warning")
        # noqa: BLE001 -- shown in the panel (a callback's exception would go to a hidden log)
        except Exception as err:
            with self.log:
                traceback.print_exc()
            outcome = message_box(f"Training failed: {type(err).__name__}: {err}", "error")
        self._busy = False
        self._list_teachers()
        self.validate()
        self.message.value = outcome
        return student

    def show_results(self, student: Run, e2e: Run, teacher: Run, data: Splits) -> None:
        """Test PSNR/SSIM of student, E2E baseline and teacher, and the first test images through each."""
        rows = {"student": student, "E2E baseline": e2e, "teacher": teacher}
        img = to_images(data.test[:self.n_images].to(self.device), student.config().data.image_size)
        self.figure.value = _reconstructions_png(rows, img, self.device, self.seed)
        self.figure.layout.display = None
        self._shown = rows
        self.result.value = _results_html(rows, self.refine.value)

    def _on_refine(self, change=None) -> None:
        """Re-score the runs on show with the chosen refinement (computed once per run, then read)."""
        if self._shown is not None:
            self.result.value = _results_html(self._shown, self.refine.value)


def _reconstructions_png(rows: dict[str, Run], img: torch.Tensor, device: torch.device, seed: int) -> bytes:
    """The test images through each run's system (noise seeded by ``seed``), with per-image PSNR / SSIM."""
    from prkd.views.plots import show_reconstructions
    with torch.no_grad():
        x_hat = {f"{name} (L = {run.config().optics.n_masks})": run.load_system(device)(
            img, generator=torch.Generator().manual_seed(seed)).x_hat for name, run in rows.items()}
    return figure_png(show_reconstructions(img, x_hat, suptitle="test images: per-image PSNR (dB) / SSIM"))


def _results_html(rows: dict[str, Run], refine: str = "none") -> str:
    """The runs' test metrics as an HTML table, and the student's gain over the E2E baseline; with ``refine``
    "er" or "raar" the scores are those of the outputs refined for 200 iterations on their own CDPs, no oracle
    (``prkd.learning.rescoring``)."""
    metrics = {name: run.metrics() for name, run in rows.items()}
    if refine != "none":
        from prkd.learning.rescoring import refined_test_scores
        for name, run in rows.items():
            scores = refined_test_scores(run, refine=refine, iterations=200)
            metrics[name] = {**metrics[name], "test_psnr": scores["refined_psnr"],
                             "test_ssim": scores["refined_ssim"]}
    td, num = '<td style="padding:1px 10px">', '<td style="padding:1px 10px;text-align:right">'
    cells = "".join(
        f"<tr>{td}{name}</td>{num}{run.config().optics.n_masks}</td>"
        f"{num}{metrics[name]['test_psnr']:.2f}</td>"
        f"{num}{metrics[name]['test_ssim']:.3f}</td>{td}<code>{run.id}</code></td></tr>"
        for name, run in rows.items())
    gain = round(metrics["student"]["test_psnr"] - metrics["E2E baseline"]["test_psnr"], 2) + 0.0  # no -0.00
    n_test = metrics["student"]["n_test"]
    head = "".join(f'<th style="padding:1px 10px">{h}</th>'
                   for h in ("run", "L", "test PSNR (dB)", "test SSIM",
                                                                     "run id"))
    return (f'<table class="prkd-metrics" style="border-collapse:collapse"><tr>{head}</tr>{cells}</table>'
            f"<div>student − E2E baseline: <b>{gain:+.2f} dB</b> PSNR (mean over {n_test} test images"
            f"{'' if refine == 'none' else f', each output refined by {refine.upper()} 200 on its own CDPs'}"
            f"{'' if refine == 'none' else ', no oracle'})"
            f"</div>")
