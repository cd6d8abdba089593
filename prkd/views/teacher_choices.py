"""The teachers a distillation explorer's student can use: complete teacher runs in the registry that fit it,
then the default snapshot counts, to be trained first."""

from __future__ import annotations

from dataclasses import dataclass

from prkd.config import ConfigError, make
from prkd.learning import check_teacher_fits
from prkd.registry import Registry

__all__ = ["DEFAULT_TEACHER_SNAPSHOTS", "TeacherChoice", "teacher_choices"]

#: Teacher snapshots offered when the registry has no teacher with that L_t (the paper sweeps 1-15, Sec. 4.2).
DEFAULT_TEACHER_SNAPSHOTS = (3, 6, 9, 15)


@dataclass(frozen=True)
class TeacherChoice:
    """A teacher for the student: a complete registry run (``run_id``), or one to train first (``run_id``
    None)."""

    L_t: int
    seed: int
    run_id: str | None = None


def teacher_choices(preset: str, *, registry: Registry, seed: int = 0, L_t: int = 9,
                    arch: str = "unet") -> list[tuple[str, TeacherChoice]]:
    """(label, choice) pairs: the complete teacher runs of ``preset`` that a student of ``preset`` with
    recovery network ``arch`` can use (``check_teacher_fits``: the same network, among the rest), then the
    default L_t values (and ``L_t``) that no such run has yet, to be trained first."""
    student = make(preset, mode="student", seed=seed, arch=arch)
    options, have = [], set()
    for run in registry.runs(mode="teacher", preset=preset, complete=True):
        cfg = run.config()
        try:
            check_teacher_fits(student, cfg, run.id)
        except ConfigError:
            continue
        have.add(cfg.optics.n_masks)
        m = run.metrics()
        options.append((f"L_t = {cfg.optics.n_masks}: in the registry, {m['test_psnr']:.2f} dB ({run.id})",
                        TeacherChoice(cfg.optics.n_masks, cfg.train.seed, run.id)))
    for L in sorted(set(DEFAULT_TEACHER_SNAPSHOTS) | {L_t}):
        if L not in have:
            options.append((f"L_t = {L}: not in the registry, trained first", TeacherChoice(L, seed)))
    return options
