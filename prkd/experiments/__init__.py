"""What is trained and what it shows. Every module, by job:

* the reproduction: ``plans`` (Sec. 4 as lists of configs: Figs. 2-4, Tables 1-2, ``run_all``, ``collect``);
* the study (notebook 07): ``study`` (its plan, one graph of runs), ``verdict`` (its paired comparisons and
  claims), ``study_sweep`` (its beta sweeps);
* the budget ladder (notebook 09): ``ladder`` (its runs), ``ladder_verdict`` (its verdict, Holm, trends);
* the unrolled experiment (notebook 10): ``unrolled_study`` (its runs), ``unrolled_verdict`` (its tables);
* notebook 08: ``classical_sweep`` (the classical solvers against L), ``fair_comparison`` (learned against
  classical on the same CDPs), ``noise_level`` (which photon count the ladder's noisy rung uses, and why);
* shared: ``catalog`` (a preset's plan, ``docs/results/<experiment>``, how new experiments train teachers),
  ``stats`` (paired intervals, Holm, equivalence, readings, trends), ``graph`` (a plan as a graph of runs),
  ``schedule`` (critical-path order), ``executors`` and ``dask_runner`` (where the runs train);
* check-results: ``tolerance`` and ``cell_tolerance`` (fresh result tables against the committed ones).

``from prkd import experiments`` gives the reproduction's plans (``experiments.run_all``,
``experiments.PLANS``).
"""

from prkd.experiments.plans import (ABLATIONS, PLANS, Plan, Results, ablation_prefix, collect,
                                    experiment_configs,
                                    mean_ci95, plan_run_id, run_all, run_of)

__all__ = ["ABLATIONS", "PLANS", "ablation_prefix", "Plan", "Results", "collect",
           "experiment_configs", "mean_ci95",
           "plan_run_id", "run_all", "run_of"]
