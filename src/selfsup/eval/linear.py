"""Linear probe on frozen features: multinomial logistic regression fitted by full-batch L-BFGS.

Features are standardised with the training set's mean and std; the objective is the mean
cross-entropy plus ``l2 * ||W||^2``. Deterministic, and fast for the small and medium sets this
tool evaluates on (for very large sets the SGD protocol of the evaluation module is the choice).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .knn import _topk


def fit_logistic(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float = 1e-4, max_iter: int = 200
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (W, b, mean, std) of a standardised multinomial logistic regression."""
    x = x.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    xs = (x - mean) / std
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xs @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach(), mean, std


def linear_accuracy(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    l2: float = 1e-4,
    max_iter: int = 200,
    topk: tuple[int, ...] = (1,),
) -> dict[str, float]:
    """Top-k accuracies of the linear probe, e.g. ``{"linear_top1": 0.95}``."""
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    w, b, mean, std = fit_logistic(train_x, train_y.long(), num_classes, l2, max_iter)
    scores = ((test_x.double() - mean) / std) @ w + b
    return _topk(scores, test_y.long(), topk, "linear")
