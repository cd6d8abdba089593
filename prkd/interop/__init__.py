"""Bridges from prkd to other libraries, each behind an optional extra and imported only when used.

* ``deepinv`` -- a trained run's coded phase masks as a ``deepinv.physics.PhaseRetrieval``
  (``as_deepinv_physics``,
  ``from_run``), so that deepinv's solvers, denoisers and unrolled models run on learned masks. Needs
  ``pip install -e '.[deepinv]'``; ``import prkd.interop.deepinv`` works without it.

This package imports only from the lower levels of prkd (utils, config, data, metrics, physics, nets,
classical, registry), never from learning, experiments or views.
"""
