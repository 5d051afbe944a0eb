"""Coupled L2 weight decay written as a loss term.

``torch.optim.Adam(params, weight_decay=wd)`` adds ``wd * w`` to each gradient before Adam's
moment estimates (L2 regularisation, "coupled"), unlike AdamW, which shrinks the weights apart from
the gradient (Loshchilov & Hutter 2019). The penalty

    l2_penalty(module, wd) = wd / 2 * sum over every parameter w of sum(w ** 2)

has exactly that gradient, ``wd * w``, so a method that adds it to its loss and trains with
``optim.weight_decay: 0`` takes the same steps as the authors' Adam with weight decay (GraphMAE,
THUDM/GraphMAE ``graphmae/utils.py`` ``create_optimizer``; GRACE, CRIPAC-DIG/GRACE ``train.py``),
biases and PReLU slopes included, as theirs are.

Example::

    >>> import torch
    >>> lin = torch.nn.Linear(2, 1)
    >>> float(l2_penalty(lin, 0.0))
    0.0
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def l2_penalty(module: nn.Module, weight_decay: float) -> Tensor:
    """``weight_decay / 2 * sum(w ** 2)`` over every trainable parameter of ``module``."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return torch.zeros(())
    total = torch.stack([p.float().pow(2).sum() for p in params]).sum()
    return 0.5 * weight_decay * total
