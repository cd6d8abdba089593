"""The recovery network D_theta: a U-Net whose bottleneck is exposed for the feature loss L_feat."""

from prkd.nets.unet import UNet

__all__ = ["UNet"]
