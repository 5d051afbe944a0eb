"""MSN's loss: prototype assignments of masked anchors match sharpened, balanced targets.

Assran, Caron, Misra, Bojanowski, Bordes, Vincent, Joulin, Rabbat, Ballas, *Masked Siamese
Networks for Label-Efficient Learning*, ECCV 2022. Anchors ``z`` (masked views, the student) and
targets ``z+`` (an unmasked view, the EMA teacher) are L2-normalised and compared by cosine with K
learnable, L2-normalised prototypes ``q``:

    p(z)  = softmax(z q^T / tau)                                  (the anchor's prediction)
    p+    = sharpen(softmax(z+ q^T / tau), T),  sharpen(p, T)_k = p_k^(1/T) / sum_j p_j^(1/T)
    p+    <- Sinkhorn(p+)   (3 iterations, the authors' code; rows re-scaled to sum to 1)
    L     = 1/(VB) sum_{v,b} H(p+_b, p(z_vb))  -  lambda H(mean_{v,b} p(z_vb)) + lambda log K

The last two terms are the mean-entropy-maximisation (me-max) regulariser written, as in the
authors' code, as ``KL(pbar || uniform) = log K - H(pbar)``: it is 0 when the anchors use every
prototype equally, and it keeps the loss at 0 for a perfect, balanced assignment. Sharpening with
``T = 0.25`` at ``tau = 0.1`` gives the targets an effective temperature of 0.025, the "teacher
temperature" of the paper. The authors' defaults (``facebookresearch/msn``, ``src/losses.py``,
``configs/pretrain/msn_vits16.yaml``): ``tau = 0.1``, ``T = 0.25``, Sinkhorn on (``use_sinkhorn``,
3 iterations), ``lambda = 1`` (``memax_weight``), 1024 prototypes.

The Sinkhorn step reuses :func:`~selfsup.losses.sinkhorn.sinkhorn` on the log of the sharpened
targets with ``epsilon = 1`` (``exp(log p) = p``, so its iterations are the authors' iterations on
``p``); under ``torch.distributed`` its sums and the me-max mean are over every rank's samples.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._precision import wide
from .distributed import all_sum, world
from .sinkhorn import sinkhorn


def msn_targets(
    targets: Tensor,
    prototypes: Tensor,
    temperature: float = 0.1,
    sharpen: float = 0.25,
    sinkhorn_iterations: int = 3,
    distributed: bool = True,
) -> Tensor:
    """The target distributions (B, K) of the target view's embeddings ``targets`` (B, D): the
    prototype softmax at ``temperature``, sharpened by ``1 / sharpen``, then balanced by Sinkhorn
    (``sinkhorn_iterations`` 0: no balancing). No gradient."""
    with torch.no_grad():
        s = (
            F.normalize(wide(targets.detach()), dim=1)
            @ F.normalize(wide(prototypes.detach()), dim=1).t()
        )
        log_p = F.log_softmax(s / (temperature * sharpen), dim=1)  # log sharpen(softmax(s / tau))
        if sinkhorn_iterations <= 0:
            return log_p.exp()
        return sinkhorn(log_p, 1.0, sinkhorn_iterations, distributed)


def _mean_over_ranks(x: Tensor) -> Tensor:
    """The mean of ``x`` over ranks, with the gradient flowing to this rank's ``x`` (the authors'
    ``AllReduce``)."""
    _, size = world()
    if size == 1:
        return x
    return x + (all_sum(x) / size - x).detach()


def msn_terms(
    anchors: Tensor,
    targets: Tensor,
    prototypes: Tensor,
    temperature: float = 0.1,
    sharpen: float = 0.25,
    sinkhorn_iterations: int = 3,
    distributed: bool = True,
) -> tuple[Tensor, Tensor]:
    """``(cross-entropy, me-max)`` of MSN's loss (the total is ``ce + lambda me_max``).

    Parameters
    ----------
    anchors : (V * B, D) embeddings of V anchor views, view after view (view v of sample b at row
        ``v * B + b``), with gradient.
    targets : (B, D) embeddings of the target view (the teacher's; detached here).
    prototypes : (K, D) prototypes (normalised here; they get a gradient through the anchors).
    """
    b = len(targets)
    if anchors.ndim != 2 or targets.ndim != 2 or b == 0 or len(anchors) % b:
        raise ValueError(
            f"msn_loss expects (V*B, D) anchors and (B, D) targets, got {tuple(anchors.shape)} "
            f"and {tuple(targets.shape)}"
        )
    v = len(anchors) // b
    p_t = msn_targets(targets, prototypes, temperature, sharpen, sinkhorn_iterations, distributed)
    logits = F.normalize(wide(anchors), dim=1) @ F.normalize(wide(prototypes), dim=1).t()
    log_p = F.log_softmax(logits / temperature, dim=1)
    ce = -(p_t.repeat(v, 1) * log_p).sum(dim=1).mean()
    mean_p = log_p.exp().mean(dim=0)
    if distributed:
        mean_p = _mean_over_ranks(mean_p)
    me_max = torch.xlogy(mean_p, mean_p).sum() + math.log(len(mean_p))
    return ce, me_max


def msn_loss(
    anchors: Tensor,
    targets: Tensor,
    prototypes: Tensor,
    temperature: float = 0.1,
    sharpen: float = 0.25,
    sinkhorn_iterations: int = 3,
    me_max_weight: float = 1.0,
    distributed: bool = True,
) -> Tensor:
    """MSN's loss, ``ce + me_max_weight * me_max`` (see :func:`msn_terms` for the arguments).

    Examples
    --------
    >>> a, t, q = torch.randn(2 * 8, 16), torch.randn(8, 16), torch.randn(32, 16)
    >>> float(msn_loss(a, t, q)) > 0
    True
    """
    ce, reg = msn_terms(
        anchors, targets, prototypes, temperature, sharpen, sinkhorn_iterations, distributed
    )
    return ce + me_max_weight * reg
