"""Linear probe, standard protocol: a linear layer trained by SGD on frozen features.

The common benchmark recipe (SimCLR, MoCo, solo-learn): mini-batch SGD with momentum 0.9, a
cosine-decayed learning rate, cross-entropy, no weight decay, on features that are either used as
they are or normalised first. Normalisation here is a parameter-free batch-norm: each dimension is
standardised with the training features' mean and std (MAE's probe does the same), which makes the
result insensitive to the scale of the features. ``eval/linear.py`` has the fast full-batch L-BFGS
variant for small sets.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .knn import _topk


def linear_probe_sgd(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    normalize: bool = True,
    epochs: int = 100,
    lr: float = 0.1,
    batch_size: int = 256,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> dict[str, float]:
    """Top-1 and top-5 accuracy of an SGD-trained linear classifier on frozen features.

    Parameters
    ----------
    normalize : standardise each feature with the training set's mean and std first.
    epochs, lr, batch_size, momentum, weight_decay : the SGD recipe (cosine schedule to 0).
    seed : fixes the initialisation and the batch order.

    Returns
    -------
    ``{"top1": ..., "top5": ...}``
    """
    x, xt = train_x.float(), test_x.float()
    y, yt = train_y.long(), test_y.long()
    if normalize:
        mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
        x, xt = (x - mean) / std, (xt - mean) / std
    num_classes = int(max(y.max(), yt.max())) + 1
    g = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(x.shape[1], num_classes)
    with torch.no_grad():
        layer.weight.normal_(0, 0.01, generator=g)
        layer.bias.zero_()
    opt = torch.optim.SGD(layer.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    bs = min(batch_size, len(x))
    steps_per_epoch = max(1, math.ceil(len(x) / bs))
    total = epochs * steps_per_epoch
    step = 0
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=g)
            for i in range(steps_per_epoch):
                idx = order[i * bs : (i + 1) * bs]
                for pg in opt.param_groups:
                    pg["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
                loss = F.cross_entropy(layer(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
    with torch.no_grad():
        acc = _topk(layer(xt), yt, (1, 5), "p")
    return {"top1": acc["p_top1"], "top5": acc["p_top5"]}
