"""The imaging system of Sec. 2 of the paper, in the order light meets it:

* ``optics``        -- coded diffraction patterns y_l = |F diag(e^{j phi_l}) x|^2 (Eq. 1), sensor noise, the
  mask regulariser R(phi);
* ``spectral_init`` -- the filtered spectral initialization with the learnable filter psi (Eq. 2, Alg. 1);
* ``system``        -- ``PRSystem``: sensing -> initialization -> the U-Net of ``prkd.nets``.

Nothing here imports from ``prkd.learning`` or ``prkd.views``.
"""

from prkd.physics.optics import CDPSensing, add_noise, mask_level_penalty
from prkd.physics.spectral_init import SpectralInit
from prkd.physics.system import PROutput, PRSystem

__all__ = ["CDPSensing", "PROutput", "PRSystem", "SpectralInit", "add_noise", "mask_level_penalty"]
