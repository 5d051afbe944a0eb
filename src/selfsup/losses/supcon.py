"""SupCon: supervised contrastive loss for any number of views, and its semi-supervised mix.

Khosla, Teterwak, Wang, Sarna, Tian, Isola, Maschinot, Liu, Krishnan. *Supervised Contrastive
Learning.* NeurIPS 2020 (the ``L_out`` form, their best).

B samples with V views each give N = V B L2-normalised embeddings. Anchor ``a`` has positives
``P(a)``: every other embedding whose sample has the same label. With ``A(a)`` all embeddings but
``a``::

    L_a = -1/|P(a)| sum_{p in P(a)} log( exp(s(z_a, z_p)/t) / sum_{c in A(a)} exp(s(z_a, z_c)/t) )
        = log sum_{c in A(a)} exp(s_ac / t)  -  mean_{p in P(a)} s_ap / t

multiplied by ``t / base_temperature`` (base 0.07) and averaged over *all* N anchors, an anchor
without a positive counting as 0, as in the authors' code (HobbitLong/SupContrast, ``losses.py``,
``SupConLoss``: ``-(temperature / base_temperature) * mean_log_prob_pos``, then the mean over
``anchor_count x batch_size``, with the positive count clamped to 1). Label ``-1`` marks an
unlabelled sample: its only positives are its own other views (the self-supervised case), so with
every label -1, V = 2 and ``base_temperature = temperature`` this is NT-Xent. Collinear embeddings
give ``(t / base) log(N - 1)``. pytorch-metric-learning's ``SupConLoss`` is the same with the factor
left out and the mean taken over the anchors that have a positive (equal when every anchor has
one, as with V >= 2). Default t = 0.1 (the paper's), base 0.07 (the authors' code).

The positive term uses per-class sums of the keys, so it is O(N D); the denominator has the exact
tiled path of :mod:`selfsup.losses.tiled`.

:func:`supcon_mix` is ``weight * SupCon + (1 - weight) * NT-Xent`` (NT-Xent over all V views: each
sample's other views are its positives), one knob from self- to label-supervision, as in
controllable video-music retrieval.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ._pairs import check_positive
from .distributed import all_sum, gather, world
from .tiled import row_lse


def _check(z: Tensor, labels: Tensor | None) -> Tensor:
    if z.ndim == 2:
        z = z[:, None]
    if z.ndim != 3:
        raise ConfigError(
            f"supcon expects embeddings of shape (B, V, D) or (B, D), got {tuple(z.shape)}"
        )
    if labels is not None and (labels.ndim != 1 or labels.shape[0] != z.shape[0]):
        raise ConfigError(
            f"supcon expects one label per sample: {z.shape[0]} samples but labels of "
            f"shape {tuple(labels.shape)}"
        )
    return z


def supcon(
    z: Tensor,
    labels: Tensor,
    temperature: float = 0.1,
    base_temperature: float = 0.07,
    *,
    tiled: bool | None = None,
) -> Tensor:
    """Mean supervised contrastive loss.

    Parameters
    ----------
    z : (B, V, D) embeddings of V views of B samples (or (B, D) for one view), normalised here
    labels : (B,) integer labels; -1 = unlabelled (positives: its other views only)
    temperature : t > 0
    base_temperature : the loss is scaled by ``t / base_temperature`` (authors' code: 0.07)
    tiled : force the tiled (True) or dense (False) denominator; None chooses by size

    Examples
    --------
    >>> supcon(torch.randn(8, 2, 16), torch.tensor([0, 1, 0, 1, -1, -1, 2, 2])).shape
    torch.Size([])
    """
    z = _check(z, labels)
    check_positive(temperature=temperature, base_temperature=base_temperature)
    rank, size = world()
    b, v, _ = z.shape
    z = F.normalize(z, dim=2)
    q = z.transpose(0, 1).reshape(v * b, -1)  # view-major: row = view * B + i
    zg = gather(z)  # (R B, V, D)
    k = zg.transpose(0, 1).reshape(v * size * b, -1)
    lab = gather(labels.to(z.device).long())
    sample = torch.arange(size * b, device=z.device)
    lab = torch.where(lab >= 0, lab, -2 - sample)  # unlabelled: a class of its own
    _, cls = torch.unique(lab, return_inverse=True)
    key_cls = cls.repeat(v)
    n_cls = int(cls.max()) + 1
    sums = k.new_zeros(n_cls, k.shape[1]).index_add(0, key_cls, k)
    counts = torch.bincount(key_cls, minlength=n_cls)
    local = torch.arange(b, device=z.device) + rank * b
    self_idx = (torch.arange(v, device=z.device)[:, None] * (size * b) + local).reshape(-1)
    a_cls = key_cls[self_idx]
    n_pos = counts[a_cls] - 1
    pos_sum = (q * (sums[a_cls] - k[self_idx])).sum(1)
    lse = row_lse(q, k, 1.0 / temperature, self_idx[:, None], tiled)
    valid = n_pos > 0
    per = lse - pos_sum / (temperature * n_pos.clamp_min(1).to(q.dtype))
    if float(all_sum(valid.sum().to(per.dtype))) == 0:
        raise ConfigError(
            "supcon: no anchor has a positive (every label is unique and there is one "
            "view); give two or more views or repeated labels"
        )
    # the mean over this rank's V B anchors (an anchor without a positive adds 0); data-parallel
    # training averages the ranks, which gives the mean over every anchor of every rank
    return (temperature / base_temperature) * per[valid].sum() / (v * b)


def supcon_mix(
    z: Tensor,
    labels: Tensor,
    temperature: float = 0.1,
    weight: float = 1.0,
    base_temperature: float = 0.07,
    *,
    tiled: bool | None = None,
) -> Tensor:
    """``weight * supcon(z, labels) + (1 - weight) * supcon(z, unlabelled)``, ``weight`` in [0, 1]
    (the second term is SupContrast's unsupervised mode: NT-Xent over all V views, same factor).

    Examples
    --------
    >>> labels = torch.tensor([0, 1, 0, 1, -1, -1, 2, 2])
    >>> supcon_mix(torch.randn(8, 2, 16), labels, weight=0.5).shape
    torch.Size([])
    """
    if not 0 <= weight <= 1:
        raise ConfigError(f"weight must be in [0, 1], got {weight}")
    z = _check(z, labels)
    unl = torch.full((z.shape[0],), -1, dtype=torch.long, device=z.device)
    parts: list[Tensor] = []
    if weight > 0:
        parts.append(weight * supcon(z, labels, temperature, base_temperature, tiled=tiled))
    if weight < 1:
        parts.append((1 - weight) * supcon(z, unl, temperature, base_temperature, tiled=tiled))
    return parts[0] if len(parts) == 1 else parts[0] + parts[1]
