"""``backward = "truncated"``: the gradient through the last K power iterations only. The same forward as the
exact one; the exact gradient when K = T; on fixed inputs, its cosine with the exact gradient of phi and psi
at least 0.99 for a 9-mask teacher with K = 5, and far lower at L = 1 (docs/performance.md); its K part of a
run's identity only when it is used."""

import pytest
import torch

import prkd
from prkd.config import ConfigError
from prkd.registry.run import run_id, run_id_for, teacher_config


def _gradients(cfg: prkd.Config, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The initial estimate and the gradients of phi and psi of a task loss through the whole system."""
    system = prkd.PRSystem(cfg)
    out = system(img, generator=torch.Generator().manual_seed(1))
    (out.x_hat - img).square().mean().backward()
    return out.z.detach(), system.sensing.phi.grad.flatten(), system.init.filter.psi.grad.flatten()


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()


def _config(L: int, **extra) -> prkd.Config:
    fields = dict(image_size=32, T=25, n_masks=L, mode="teacher" if L > 1 else "e2e", unet_depth=3,
                  unet_width=8)
    return prkd.make("smoke", **{**fields, **extra})


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(8, 1, 32, 32, generator=torch.Generator().manual_seed(0))


def test_the_forward_is_the_exact_one_and_K_equal_T_is_the_exact_gradient(images):
    exact = _gradients(_config(3, T=6), images)
    whole = _gradients(_config(3, T=6, backward="truncated", backward_iterations=6), images)
    cut = _gradients(_config(3, T=6, backward="truncated", backward_iterations=2), images)
    torch.testing.assert_close(cut[0], exact[0], rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(whole[1:], exact[1:]):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-7)
    assert not torch.allclose(cut[1], exact[1])  # a truncated gradient is not the exact one


def test_cosine_with_the_exact_gradient_on_fixed_inputs(images):
    """The measured reason for adopting it for teachers only: at L = 9 the power iterations converge within
    T = 25 and the cut-off iterations carry little of the gradient; at L = 1 they do not."""
    cosines = {}
    for L in (9, 1):
        exact = _gradients(_config(L), images)
        cheap = _gradients(_config(L, backward="truncated", backward_iterations=5), images)
        cosines[L] = [_cosine(cheap[i], exact[i]) for i in (1, 2)]
    assert min(cosines[9]) >= 0.99, cosines
    assert cosines[1][0] < 0.9, cosines


def test_backward_iterations_is_checked_and_named_only_where_it_is_used():
    with pytest.raises(ConfigError, match="'backward_iterations' must be in \\[1, T\\] = \\[1, 10\\]"):
        prkd.make("smoke", backward="truncated", backward_iterations=11)
    prkd.make("smoke", backward="plain", backward_iterations=11)  # ignored by an exact gradient
    registry_id = run_id
    plain = [registry_id(prkd.make("smoke", backward_iterations=k)) for k in (3, 5)]
    assert plain[0] == plain[1]
    cut = [registry_id(prkd.make("smoke", backward="truncated", backward_iterations=k)) for k in (3, 5)]
    assert cut[0] != cut[1] and plain[0] not in cut


def test_a_student_names_a_truncated_teacher_without_changing_the_ids_that_exist():
    student = dict(mode="student", alpha=0.5, beta=0.25, teacher_masks=3)
    same = prkd.make("smoke", **student)
    cut = prkd.make("smoke", teacher_backward="truncated", backward_iterations=4, **student)
    assert teacher_config(same).init.backward == "plain"
    teacher = teacher_config(cut)
    assert (teacher.init.backward, teacher.init.backward_iterations) == ("truncated", 4)
    assert cut.init.backward == "plain"  # the student keeps the exact gradient
    assert teacher.train.teacher_backward == "same"
    assert run_id_for(teacher) == run_id_for(prkd.make("smoke", mode="teacher", n_masks=3,
                                                       backward="truncated", backward_iterations=4))
    assert run_id_for(cut) != run_id_for(same)
    # the field at its default is left out of every identity: e2e runs ignore it altogether
    assert run_id_for(prkd.make("smoke", teacher_backward="truncated")) == run_id_for(prkd.make("smoke"))


def test_new_experiments_teachers_are_the_checked_variant():
    """What ``catalog`` hands to new experiments is what the cosine test and the paired check measured."""
    from prkd.experiments.catalog import NEW_STUDENT_FIELDS, NEW_TEACHER_FIELDS

    student = prkd.make("smoke", mode="student", alpha=0.5, beta=0.25, teacher_masks=3, **NEW_STUDENT_FIELDS)
    teacher = teacher_config(student)
    assert student.init.backward == "plain"
    assert {k: getattr(teacher.init, k) for k in NEW_TEACHER_FIELDS} == NEW_TEACHER_FIELDS
    same = prkd.make("smoke", mode="teacher", n_masks=3, **NEW_TEACHER_FIELDS)
    assert run_id_for(teacher) == run_id_for(same)
