"""SCGC's influence-augmented contrastive (IAC) loss and its soft cluster head (DEC's KL term).

Kulatilleke, Portmann, Chandra. *SCGC: Self-Supervised Contrastive Graph Clustering.* arXiv
2204.12656 (2022), Eq. 4-9; authors' code: gayanku/SCGC, ``train.py`` (``get_A_r_flex``,
``get_feature_dis``, ``Ncontrast``, ``target_distribution``) and ``models.py`` (``SCGC``,
``SCGC_TRIM``: the Student-t soft assignment). The adjacency is SDCN's (bdy9527/SDCN ``utils.py``,
``load_graph``): symmetric, with self-loops, row-normalised: ``A~ = D^-1 (A + I)``.

Influence targets of order ``r``: ``W = A~^r`` (SCGC) or, with influence augmentation (SCGC*),
``W = A~ + A~^2 + ... + A~^r``. With ``s_ij`` the cosine similarity of embeddings ``z_i, z_j``
for ``i != j`` and ``s_ii = 0``, and ``tau`` the temperature (multiplying, as in the code)::

    L_IAC = -(1/N) sum_i log( sum_j W_ij e^{tau s_ij} / sum_j e^{tau s_ij} )

The soft cluster head (DEC, Xie et al. 2016): ``q_ij = (1 + ||z_i - mu_j||^2 / v)^{-(v+1)/2}``
normalised over clusters ``j``; target ``p_ij = (q_ij^2 / f_j) / sum_k (q_ik^2 / f_k)`` with
``f_j = sum_i q_ij``; ``L_KL = KL(P || Q)`` averaged over nodes. SCGC's loss:
``beta L_KL + alpha L_IAC`` (+ the autoencoder's reconstruction MSE for SCGC, not SCGC*).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def influence_targets(
    edge_index: Tensor, n: int, order: int = 1, cumulative: bool = False
) -> Tensor:
    """Dense (n, n) ``A~^order`` (or the sum of the powers 1..order) of SDCN's normalised
    adjacency."""
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    a = torch.zeros(n, n, dtype=torch.float32, device=edge_index.device)
    a[edge_index[0], edge_index[1]] = 1.0
    a = torch.maximum(a, a.t())
    a.fill_diagonal_(1.0)
    a = a / a.sum(1, keepdim=True)
    out, power = a, a
    for _ in range(order - 1):
        power = power @ a
        out = out + power if cumulative else power
    return out


def iac_loss(z: Tensor, targets: Tensor, tau: float = 1.0) -> Tensor:
    """SCGC's (influence-augmented) contrastive loss of embeddings (N, D) with targets W (N, N)."""
    if z.ndim != 2 or targets.shape != (len(z), len(z)):
        raise ValueError(
            f"iac_loss needs z (N, D) and targets (N, N), got {tuple(z.shape)} and "
            f"{tuple(targets.shape)}"
        )
    zn = F.normalize(z, dim=1)
    s = (zn @ zn.t()) * (1 - torch.eye(len(z), dtype=z.dtype, device=z.device))
    e = torch.exp(tau * s)
    return -torch.log((e * targets).sum(1) / e.sum(1) + 1e-8).mean()


def soft_assign(z: Tensor, centers: Tensor, v: float = 1.0) -> Tensor:
    """Student-t soft assignment Q (N, K) of embeddings (N, D) to cluster centres (K, D)."""
    q = (1.0 + torch.cdist(z, centers).pow(2) / v).pow(-(v + 1.0) / 2.0)
    return q / q.sum(1, keepdim=True)


def target_distribution(q: Tensor) -> Tensor:
    """DEC's sharpened target P of a soft assignment Q."""
    w = q.pow(2) / q.sum(0)
    return w / w.sum(1, keepdim=True)


def cluster_kl(q: Tensor, p: Tensor) -> Tensor:
    """KL(P || Q) summed over clusters, averaged over nodes
    (``F.kl_div(q.log(), p, 'batchmean')``)."""
    return F.kl_div(q.log(), p, reduction="batchmean")
