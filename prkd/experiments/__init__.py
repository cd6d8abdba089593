"""What is trained and what it shows. An experiment is a spec (``spec``) that one engine trains and collects
(``engine``) and one verdict (``verdicts``) and one report (``prkd.views.experiment_report``) read. Every
module, by job:

* the engine: ``spec`` (an experiment as data: runs, comparisons, tables), ``engine`` (train on any executor,
  time each launch, collect from records or the registry), ``verdicts`` (pairing, Holm per family, two
  one-sided tests, the flatness of every group), ``readings`` (the words a verdict may use), ``stats`` (paired
  intervals, Holm, equivalence, trends), ``catalog`` (a preset's plan, ``docs/results/<experiment>``, how new
  experiments train teachers);
* the experiments as specs: ``study`` (notebook 07; its claims ``study_claims``, its beta sweeps
  ``study_sweep``), ``ladder`` (notebook 09; its own tables ``ladder_tables``), ``unrolled`` (notebook 10),
  ``resolution`` (96×96, own teachers, doubled budgets; not trained yet);
* the reproduction: ``plans`` (Sec. 4 as a spec, ``REPRODUCTION``: Figs. 2-4, Tables 1-2, ``run_all``,
  ``collect``);
* notebook 08: ``classical_sweep`` (the classical solvers against L), ``fair_comparison`` (learned against
  classical on the same CDPs), ``noise_level`` (which photon count the ladder's noisy rung uses, and why).

Where the runs train (a plan as a graph of runs, its order, the executors) is ``prkd.execution``;
check-results lives apart, in ``prkd.checks``. ``from prkd import experiments`` gives the reproduction's plans
(``experiments.run_all``, ``experiments.PLANS``).
"""

from prkd.experiments.plans import (ABLATIONS, PLANS, REPRODUCTION, Plan, Results, ablation_prefix, collect,
                                    experiment_configs, mean_ci95, plan_run_id, run_all, run_of)

__all__ = ["ABLATIONS", "PLANS", "REPRODUCTION", "ablation_prefix", "Plan", "Results", "collect",
           "experiment_configs", "mean_ci95", "plan_run_id", "run_all", "run_of"]
