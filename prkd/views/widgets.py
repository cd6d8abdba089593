"""Interactive panels for JupyterLab (ipywidgets): turn the knobs of the sensing model and of distillation.

* :class:`SensingExplorer` (``prkd.views.sensing_explorer``) -- L, random or learned masks, noise, T -> the
  CDPs, the spectral initial estimate and its correlation with the scene.
* :class:`DistillationExplorer` (``prkd.views.distillation_explorer``) -- alpha, beta and L_t of Eq. (7), and
  a button that trains or loads a student and compares it with the E2E baseline.
"""

from prkd.views.distillation_explorer import (DEFAULT_TEACHER_SNAPSHOTS, PANEL_PRESETS, DistillationExplorer,
                                              TeacherChoice, teacher_choices)
from prkd.views.sensing_explorer import SensingExplorer, SensingView

__all__ = ["DEFAULT_TEACHER_SNAPSHOTS", "PANEL_PRESETS", "DistillationExplorer",
           "SensingExplorer", "SensingView",
           "TeacherChoice", "teacher_choices"]
