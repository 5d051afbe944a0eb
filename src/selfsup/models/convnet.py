"""A small VGG-style ConvNet for CPU-sized runs and tests.

Stages of (3x3 conv, BatchNorm, ReLU) with a 2x2 max-pool between stages, then global average
pooling. ``widths`` sets the channels of each stage (scaled by ``width``).
"""

from __future__ import annotations

from torch import Tensor, nn


class ConvNet(nn.Module):
    #: what methods may need of it (:class:`selfsup.methods.Needs`): maps that can run sparse
    capabilities = frozenset({"feature_maps"})

    def __init__(
        self,
        in_channels: int = 3,
        widths: tuple[int, ...] = (32, 64, 128, 256),
        width: float = 1.0,
        convs_per_stage: int = 1,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for s, w in enumerate(widths):
            w = max(1, int(round(w * width)))
            for _ in range(convs_per_stage if s > 0 else 1):
                layers += [
                    nn.Conv2d(c, w, 3, padding=1, bias=False),
                    nn.BatchNorm2d(w),
                    nn.ReLU(inplace=True),
                ]
                c = w
            if s < len(widths) - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = c

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x)).flatten(1)
