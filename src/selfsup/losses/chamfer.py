"""Chamfer distance between point sets (Point-MAE's reconstruction loss).

Pang, Wang, Tay, Liu, Tian, Yuan, *Masked Autoencoders for Point Cloud Self-supervised Learning*,
ECCV 2022: each masked patch's points are predicted in its centre's frame and compared with the
true patch by the L2 Chamfer distance

    CD(P, G) = 1/|P| sum_{p in P} min_{g in G} ||p - g||^2
             + 1/|G| sum_{g in G} min_{p in P} ||g - p||^2

averaged over patches (the authors' ``ChamferDistanceL2``: squared distances, both directions).

Example
-------
>>> import torch
>>> a = torch.zeros(1, 2, 3); b = torch.ones(1, 1, 3)
>>> float(chamfer_l2(a, b))
6.0
"""

from __future__ import annotations

import torch
from torch import Tensor


def chamfer_l2(pred: Tensor, target: Tensor) -> Tensor:
    """Mean over the batch of the L2 Chamfer distance of ``pred`` (B, n, 3) and ``target`` (B,
    m, 3)."""
    d = torch.cdist(pred.float(), target.float()) ** 2  # (B, n, m)
    return d.min(2).values.mean(1).mean() + d.min(1).values.mean(1).mean()
