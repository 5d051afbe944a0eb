"""VIME's self-supervised objective: mask-vector estimation + feature reconstruction.

Yoon, Zhang, Jordon, van der Schaar. *VIME: Extending the Success of Self- and Semi-supervised
Learning to Tabular Domain.* NeurIPS 2020. Authors' code: jsyoon0823/VIME (``vime_self.py``: the
mask head trained with binary cross-entropy, the feature head with mean squared error, loss weights
1 and ``alpha``, 2.0 by default; ``vime_utils.py``: ``pretext_generator``).

For corrupted rows ``x~`` with mask ``m`` (1 where a cell was replaced by a different value),
mask logits ``l = s_m(e(x~))`` and reconstruction ``x^ = s_r(e(x~))`` of the clean row ``x``::

    L = mean_ij BCE(sigmoid(l_ij), m_ij) + alpha * mean_ij (x^_ij - x_ij)^2

The authors scale features to [0, 1] and use a sigmoid feature head; here rows are standardised
(the encoder's input statistics) and the feature head is linear.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def vime_loss(
    mask_logits: Tensor, mask: Tensor, reconstruction: Tensor, target: Tensor, alpha: float = 2.0
) -> Tensor:
    """``BCE(mask_logits, mask) + alpha * MSE(reconstruction, target)``, each a mean over all cells.

    Examples
    --------
    >>> import torch
    >>> z = torch.zeros(4, 3)
    >>> vime_loss(z, torch.ones(4, 3), z, z).item()  # log 2
    0.6931471824645996
    """
    if mask_logits.shape != mask.shape or reconstruction.shape != target.shape:
        raise ValueError(
            f"vime_loss: mask logits {tuple(mask_logits.shape)} vs mask {tuple(mask.shape)}, "
            f"reconstruction {tuple(reconstruction.shape)} vs target {tuple(target.shape)}"
        )
    return F.binary_cross_entropy_with_logits(
        mask_logits, mask.to(mask_logits.dtype)
    ) + alpha * F.mse_loss(reconstruction, target)
