"""What a reader sees. Views read runs; they never train, except the distillation explorer's button, which
goes through ``prkd.learning.get_or_train``. Every module, by job:

* figures and tables: ``plots``, ``tables`` (CSV/Markdown writers, intervals), ``report`` (Figs. 2-4, Tables
  1-2), ``paper_comparison`` (the paper's numbers beside a run's), ``learned_optics`` (masks, drift, scores);
* every experiment's report: ``experiment_report`` (runs, verdict, flatness, training, the spec's tables,
  verdict.md, wall time, records);
* the study (notebook 07): ``study_report`` (its figures and verdict.md), ``study_checks`` (its
  preconditions), ``study_records`` (its records with what they keep of the weights);
* the ladder (notebook 09): ``ladder_report`` (its figures and verdict.md); notebook 08: ``classical_report``;
* the JupyterLab panels: ``widgets``, ``sensing_explorer``, ``distillation_explorer``, ``teacher_choices``,
  ``panel_parts``."""
