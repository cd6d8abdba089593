"""Where the runs of a plan train, for every experiment and the reproduction alike. Every module, by job:

* ``graph``: a plan as a graph of runs keyed by run id, each student after its teacher; ``run_plan`` on any
  executor, with one failure rule, and its outcome (complete, failed, skipped);
* ``schedule``: the order runs start in (each run's cost fitted to measured run times, the longest
  teacher-and-students chains first);
* ``executors``: the executor interface (``submit``, ``as_completed``): in this process, local worker
  processes, ``executor_for`` (the one the command line names);
* ``dask_runner``: the Dask executor (``prkd[scale]``).
"""
