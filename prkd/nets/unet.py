"""The recovery network D_theta: a U-Net (Ronneberger et al. [20], Section 4.1) that exposes its bottleneck.

Input: the initial estimate z as two channels (real, imaginary), shape (B, 2, N, N).
Output: the phase image x_hat, shape (B, 1, N, N), in the units of the target image (phase / phase_range,
nominally [0, 1]; not clamped, so the loss sees the raw output), and the bottleneck features
(B, width * 2**(depth-1), N / 2**(depth-1), N / 2**(depth-1)) that L_feat (Eq. 6) compares.

Each level is two 3x3 convolutions with batch normalisation and ReLU; down-sampling by 2x2 max-pooling,
up-sampling by 2x2 transposed convolutions, skip connections by concatenation.

Weights and activations are kept in the channels_last memory format, which the CPU and GPU convolution
kernels prefer (measured 1.57x faster for a U-Net step at 96x96 on a 2-core CPU; see benchmarks/).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["UNet"]


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net with ``depth`` resolution levels (``depth - 1`` poolings) and ``width`` channels at the top.

    N must be divisible by 2**(depth-1) (``prkd.config.make`` checks this).
    """

    def __init__(self, *, depth: int = 4, width: int = 16, in_channels: int = 2, out_channels: int = 1):
        super().__init__()
        widths = [width * 2**i for i in range(depth)]
        self.down = nn.ModuleList([_double_conv(in_channels, widths[0])] +
                                  [_double_conv(widths[i - 1], widths[i]) for i in range(1, depth - 1)])
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _double_conv(widths[-2] if depth > 1 else in_channels, widths[-1])
        self.upsample = nn.ModuleList([nn.ConvTranspose2d(widths[i], widths[i - 1], 2, stride=2)
                                       for i in range(depth - 1, 0, -1)])
        self.up = nn.ModuleList([_double_conv(2 * widths[i - 1], widths[i - 1])
                                 for i in range(depth - 1, 0, -1)])
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self.depth, self.width = depth, width
        self.to(memory_format=torch.channels_last)

    def feature_shape(self, n: int) -> tuple[int, int, int]:
        """Shape (C, h, w) of the bottleneck features for N x N inputs, without running the network."""
        side = n // 2 ** (self.depth - 1)
        return self.width * 2 ** (self.depth - 1), side, side

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z: (B, 2, N, N) -> (x_hat (B, 1, N, N), bottleneck features)."""
        skips = []
        h = z.contiguous(memory_format=torch.channels_last)
        for block in self.down:
            h = block(h)
            skips.append(h)
            h = self.pool(h)
        features = self.bottleneck(h)
        h = features
        for upsample, block, skip in zip(self.upsample, self.up, reversed(skips)):
            h = block(torch.cat([upsample(h), skip], dim=1))
        return self.head(h), features
