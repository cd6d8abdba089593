"""check-results (``python -m prkd check-results``): whether a fresh run's result tables agree with the
committed ones within the spread of their seeds (docs/check-results.md). Every module, by job:

* ``tolerance``: folders and tables compared row by row and cell by cell (``compare_folders``);
* ``cell_tolerance``: one cell's numbers against the committed cell's, with its tolerance.
"""
