"""What is trained and what it shows:

* ``plans``     -- the reproduction of Sec. 4 as lists of configs (Figs. 2-4, Tables 1-2), ``run_all``,
                ``collect``;
* ``study``     -- notebook 07's study of whether distillation helps, as one graph of runs;
* ``verdict``   -- the study's paired comparisons and claims;
* ``stats``     -- paired confidence intervals over seeds and over images;
* ``tolerance`` -- fresh result tables against the committed ones (``python -m prkd check-results``).

``from prkd import experiments`` gives the reproduction's plans (``experiments.run_all``,
``experiments.PLANS``).
"""

from prkd.experiments.plans import (ABLATIONS, PLANS, Plan, Results, ablation_prefix, collect,
                                    experiment_configs,
                                    mean_ci95, plan_run_id, run_all, run_of)

__all__ = ["ABLATIONS", "PLANS", "ablation_prefix", "Plan", "Results", "collect",
           "experiment_configs", "mean_ci95",
           "plan_run_id", "run_all", "run_of"]
