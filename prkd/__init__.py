"""prkd: single-snapshot distillation for phase coded mask design in phase retrieval.

A thin, GPU-ready helper package for the notebooks in ``notebooks/``, laid out as the method flows:

* ``config``, ``data``, ``metrics`` -- experiment configs and presets (``make``); Fashion-MNIST and its split;
  PSNR, SSIM, correlation
* ``physics/``     -- the imaging system: CDPs with coded masks (Eq. 1), noise, R(phi); the filtered spectral
  initialization (Eq. 2); ``PRSystem`` = sensing -> initialization -> U-Net
* ``nets/``        -- the recovery U-Net D_theta with its bottleneck exposed
* ``learning/``    -- the objectives of Eqs. (4) and (7), the frozen teacher's targets, one step, the fit
                   loop,
  ``get_or_train``, evaluation, optics diagnostics
* ``registry/``    -- run folders, one trainer per run (locks), provenance (``events.jsonl``), the output root
* ``experiments/`` -- the reproduction's plans; every experiment as a spec over one engine (its runs, verdict,
                   readings and statistics): the study, the ladder, the unrolled experiment, notebook 08's
* ``execution/``   -- where a plan's runs train: a graph of runs, its order, local processes or Dask
* ``checks/``      -- check-results: fresh result tables against the committed ones within their seed spread
* ``views/``       -- plots, every experiment's report, figures and tables, the JupyterLab panels
* ``utils/``       -- atomic writes, the device, peak memory, the allocator setting, the repository's folders
* ``reproduce``    -- run the notebooks headlessly with papermill; ``__main__`` -- the command line

Dependencies point one way: ``physics`` and ``nets`` import nothing from ``learning``, ``experiments`` or
``views``; ``learning`` nothing from ``experiments`` or ``views``; ``experiments`` and ``execution`` nothing
from ``views``.
"""

from prkd.config import Config, ConfigError, make
from prkd.utils.device import default_device
from prkd.registry import Registry, open_registry
from prkd.physics.system import PROutput, PRSystem

__all__ = ["Config", "ConfigError", "make", "default_device", "open_registry", "PRSystem",
           "PROutput", "Registry"]
__version__ = "0.1.0"
