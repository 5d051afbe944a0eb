"""CLIP-style symmetric contrastive loss for paired samples of two modalities.

Radford et al. *Learning Transferable Visual Models From Natural Language Supervision.* ICML 2021.

For B pairs ``(a_i, b_i)``, L2-normalised, and ``scale = exp(logit_scale)``::

    L = 1/2 [ mean_i CE(scale a_i . b_*, i) + mean_i CE(scale b_i . a_*, i) ]
      = 1/2 mean_i [ lse_j(scale a_i.b_j) + lse_j(scale b_i.a_j) ] - mean_i scale a_i.b_i

The logit scale is learnable (:class:`ClipLoss` holds it), initialised to ``log(1/0.07)``. As in
OpenCLIP (mlfoundations/open_clip, ``src/open_clip_train/train.py``: ``logit_scale.clamp_(0,
math.log(100))`` under ``no_grad`` right after ``optimizer.step()``), the *parameter* is clamped to
``[0, log 100]`` after each optimiser step (:meth:`ClipLoss.clamp_`, which a method holding the loss
calls from its ``after_step``); the forward pass uses ``exp(logit_scale)`` as it is, so the scale
keeps its gradient at the bound. Collinear embeddings give ``log B``. Both cross-entropies have the
exact tiled path, including the gradient of the scale.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._pairs import check_pair
from .distributed import gather
from .tiled import row_lse

MAX_SCALE = 100.0
LOG_INIT = math.log(1 / 0.07)


def clip_loss(
    a: Tensor, b: Tensor, logit_scale: Tensor | float = LOG_INIT, *, tiled: bool | None = None
) -> Tensor:
    """Mean symmetric paired cross-entropy; ``logit_scale`` is the log of the inverse temperature.

    Examples
    --------
    >>> clip_loss(torch.randn(8, 16), torch.randn(8, 16), torch.tensor(2.659)).shape
    torch.Size([])
    """
    check_pair("clip_loss", a, b)
    if not isinstance(logit_scale, Tensor):
        logit_scale = torch.tensor(float(logit_scale), dtype=a.dtype, device=a.device)
    scale = logit_scale.exp()
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    lse_a = row_lse(a, gather(b), scale, None, tiled)
    lse_b = row_lse(b, gather(a), scale, None, tiled)
    pos = scale * (a * b).sum(1)
    return 0.5 * (lse_a + lse_b).mean() - pos.mean()


class ClipLoss(nn.Module):
    """:func:`clip_loss` with its learnable ``logit_scale`` parameter (init ``log(1/0.07)``)."""

    def __init__(self, init_temperature: float = 0.07, tiled: bool | None = None):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)))
        self.tiled = tiled

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return clip_loss(a, b, self.logit_scale, tiled=self.tiled)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Clamp ``logit_scale`` to ``[0, log 100]`` in place; call after each optimiser step."""
        self.logit_scale.clamp_(0.0, math.log(MAX_SCALE))
