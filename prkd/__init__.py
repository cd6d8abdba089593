"""prkd: single-snapshot distillation for phase coded mask design in phase retrieval.

A thin, GPU-ready helper package for the notebooks in ``notebooks/``. Modules, one job each:

* ``config``        -- frozen experiment configs, presets ``smoke`` / ``quick`` / ``paper``, ``make()``
* ``data``          -- Fashion-MNIST loading and the 30k/30k/10k split; phase objects
* ``optics``        -- coded diffraction patterns, Eq. (1); noise; mask regularizer R(phi)
* ``spectral_init`` -- filtered spectral initialization, Eq. (2) and Algorithm 1
* ``unet``          -- the recovery U-Net D_theta with its bottleneck exposed
* ``system``        -- ``PRSystem``: sensing -> initialization -> U-Net
* ``metrics``       -- per-image PSNR, SSIM, correlation
* ``device``        -- the one place the compute device is chosen
* ``registry``      -- the run registry: run folders, one trainer per run (locks), provenance (events.jsonl),
                       the output root (``open_registry``)
* ``paths``         -- where the repository's own folders are
* ``reproduce``     -- run the notebooks headlessly with papermill
* ``widgets``       -- JupyterLab panels: the sensing explorer and the distillation explorer
"""

from .config import Config, ConfigError, make
from .device import default_device
from .registry import Registry, open_registry
from .system import PROutput, PRSystem

__all__ = ["Config", "ConfigError", "make", "default_device", "open_registry", "PRSystem", "PROutput", "Registry"]
__version__ = "0.1.0"
