"""The two-tower encoder of a paired run, and the indexable pair of sample tensors it reads.

:class:`TwoTower` holds one :class:`~selfsup.models.encoder.Encoder` per modality (``a``, ``b``,
each with its own input statistics and backbone) and one projection head per tower into the shared
space where the two modalities are contrasted (``embed_a``, ``embed_b``), as CMC and CLIP do. The
heads are part of the saved encoder, so cross-modal retrieval works from ``encoder.safetensors``
alone. ``forward(pair)`` returns the two towers' features side by side (the representation of an
event seen by both sensors); each tower alone is ``encoder.a`` / ``encoder.b``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class PairTensor:
    """Two tensors of the same samples, indexed together: ``len(p)``, ``p[idx]``, ``p.to(device)``.

    It is what the training loop holds for a paired run (the loop only uses ``len(x)`` and
    ``x[idx]``) and what the paired view maker and encoder read.
    """

    __slots__ = ("a", "b")

    def __init__(self, a: Tensor, b: Tensor):
        if len(a) != len(b):
            raise ValueError(
                f"a pair needs the same number of samples in both tensors, got {len(a)} "
                f"and {len(b)}"
            )
        self.a, self.b = a, b

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, idx: Any) -> PairTensor:
        return PairTensor(self.a[idx], self.b[idx])

    def to(self, *args: Any, **kwargs: Any) -> PairTensor:
        return PairTensor(self.a.to(*args, **kwargs), self.b.to(*args, **kwargs))

    @property
    def device(self) -> torch.device:
        return self.a.device

    def __repr__(self) -> str:
        return f"PairTensor(a={tuple(self.a.shape)}, b={tuple(self.b.shape)})"


class TwoTower(nn.Module):
    """Encoders ``a`` and ``b`` with projection heads ``head_a``, ``head_b`` into a shared space."""

    #: how many encoders a method trains with this module (methods declare the number they need)
    towers = 2

    def __init__(self, a: nn.Module, b: nn.Module, head_a: nn.Module, head_b: nn.Module):
        super().__init__()
        self.a, self.b = a, b
        self.head_a, self.head_b = head_a, head_b
        self.out_dim: int = int(a.out_dim) + int(b.out_dim)

    def tower(self, name: str) -> nn.Module:
        """Encoder ``a`` or ``b`` (its features, before the projection head)."""
        return self.a if name == "a" else self.b

    def embed_a(self, x: Tensor) -> Tensor:
        return self.head_a(self.a(x))

    def embed_b(self, x: Tensor) -> Tensor:
        return self.head_b(self.b(x))

    def embedder(self, name: str) -> nn.Module:
        """A module mapping tower ``name``'s input to the shared space (shares the weights)."""
        return nn.Sequential(self.tower(name), self.head_a if name == "a" else self.head_b)

    def forward(self, x: PairTensor | tuple[Tensor, Tensor]) -> Tensor:
        xa, xb = (x.a, x.b) if isinstance(x, PairTensor) else x
        return torch.cat([self.a(xa), self.b(xb)], dim=1)
