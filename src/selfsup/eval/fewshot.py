"""Few-label fine-tuning: the encoder and a new linear head trained briefly on 1% or 10% of labels.

The semi-supervised protocol of SimCLR (Chen et al. 2020, section 6.1): a class-balanced subset of
the labelled training set (the same number of samples per class, fixed by a seed), then the whole
network is fine-tuned with cross-entropy and evaluated on the query set. Here the recipe is kept
short and deterministic: AdamW, a cosine schedule, a smaller learning rate for the encoder than for
the head, deterministic evaluation views (no augmentation).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataError
from ..views import eval_view
from .features import _as_tensor, extract
from .knn import _topk


def few_label_indices(y: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Sorted indices of a class-balanced subset holding ``fraction`` of the labels.

    Every class gets the same count, ``max(1, round(fraction * N / C))`` (fewer only if a class is
    smaller than that), drawn without replacement under ``seed``: the same seed gives the same
    subset.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    y = np.asarray(y)
    classes = np.unique(y)
    per_class = max(1, int(round(fraction * len(y) / len(classes))))
    rng = np.random.default_rng(seed)
    picked = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        picked.append(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    return np.sort(np.concatenate(picked))


class FineTuner:
    """An encoder and a new linear head trained end to end with cross-entropy: the one fine-tuning
    recipe of selfsup (the few-label protocol here, ``selfsup finetune`` in
    :mod:`selfsup.finetune`). AdamW with weight decay 1e-4, the encoder at ``encoder_lr_ratio``
    times the head's learning rate, a cosine schedule over ``total_steps`` steps.

    ``encoder`` is trained in place (pass a copy to keep the original); the head is initialised
    from torch's global generator when this is constructed.
    """

    def __init__(
        self,
        encoder: nn.Module,
        dim: int,
        num_classes: int,
        total_steps: int,
        lr: float = 1e-3,
        encoder_lr_ratio: float = 0.1,
        weight_decay: float = 1e-4,
        device: str | torch.device = "cpu",
    ):
        self.encoder = encoder
        self.head = nn.Linear(dim, num_classes).to(device)
        self.opt = torch.optim.AdamW(
            [
                {"params": encoder.parameters(), "lr": lr * encoder_lr_ratio},
                {"params": self.head.parameters(), "lr": lr},
            ],
            weight_decay=weight_decay,
        )
        self.base = [g["lr"] for g in self.opt.param_groups]
        self.total_steps = max(1, total_steps)
        self.steps = 0

    def step(self, xb, yb: torch.Tensor) -> float:
        """One step on a batch of model inputs ``xb`` (prepared) with labels ``yb``; the loss."""
        self.encoder.train()
        t = min(self.steps, self.total_steps)
        for pg, b in zip(self.opt.param_groups, self.base):
            pg["lr"] = b * 0.5 * (1 + math.cos(math.pi * t / self.total_steps))
        with torch.enable_grad():
            loss = F.cross_entropy(self.head(self.encoder(xb)), yb)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        self.steps += 1
        return float(loss.detach())

    @torch.no_grad()
    def scores(self, x, prepare, batch_size: int = 512, device: str | torch.device = "cpu"):
        """Class scores (N, K) on the CPU for raw samples ``x`` (eval mode)."""
        feats = extract(self.encoder, x, prepare, batch_size, device)
        return self.head(feats.to(device)).cpu()

    def state(self) -> dict:
        """Everything needed to continue exactly (see :meth:`load_state`)."""
        return {
            "encoder": self.encoder.state_dict(),
            "head": self.head.state_dict(),
            "opt": self.opt.state_dict(),
            "steps": self.steps,
            "total_steps": self.total_steps,
        }

    def load_state(self, s: dict) -> None:
        self.encoder.load_state_dict(s["encoder"])
        self.head.load_state_dict(s["head"])
        self.opt.load_state_dict(s["opt"])
        self.steps, self.total_steps = int(s["steps"]), int(s["total_steps"])


def finetune(
    encoder: nn.Module,
    x,
    y: np.ndarray,
    query_x,
    query_y: np.ndarray,
    prepare,
    steps: int = 100,
    batch_size: int = 64,
    lr: float = 1e-3,
    encoder_lr_ratio: float = 0.1,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Fine-tune a copy of ``encoder`` plus a linear head on (``x``, ``y``); accuracy on the query.

    ``x``/``query_x``: raw samples (see :func:`~selfsup.eval.features.extract`); ``prepare`` maps a
    raw batch to the encoder's input (an int: the image size). The given encoder is not modified.
    Each step takes a random batch of ``batch_size`` samples (:class:`FineTuner`).
    Returns ``{"top1", "top5"}``.
    """
    if len(x) < 2:
        raise DataError(f"few-label fine-tuning needs at least 2 labelled samples, got {len(x)}")
    num_classes = int(max(y.max(), query_y.max())) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        enc = copy.deepcopy(encoder).to(device)
        if isinstance(prepare, int):
            size = prepare
            prepare = lambda b: eval_view(b, size)  # noqa: E731
        dim = extract(enc, x[:2], prepare, 2, device).shape[1]
        ft = FineTuner(enc, dim, num_classes, steps, lr, encoder_lr_ratio, device=device)
        xt = prepare(_as_tensor(x).to(device))
        yt = torch.from_numpy(np.asarray(y)).long().to(device)
        bs = min(batch_size, len(xt))
        g = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            idx = torch.randperm(len(xt), generator=g)[:bs].to(device)
            ft.step(xt[idx], yt[idx])
        scores = ft.scores(query_x, prepare, 512, device)
    acc = _topk(scores, torch.from_numpy(np.asarray(query_y)).long(), (1, 5), "f")
    return {"top1": acc["f_top1"], "top5": acc["f_top5"]}


def few_label_eval(
    encoder: nn.Module,
    bank_x,
    bank_y: np.ndarray,
    query_x,
    query_y: np.ndarray,
    prepare,
    fractions=(0.01, 0.1),
    steps: int = 100,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """``{"fewshot_1pct_top1": ..., "fewshot_10pct_top1": ..., ...}`` for each label fraction."""
    out = {}
    for frac in fractions:
        idx = few_label_indices(bank_y, frac, seed)
        r = finetune(
            encoder,
            bank_x[idx],
            bank_y[idx],
            query_x,
            query_y,
            prepare,
            steps=steps,
            seed=seed,
            device=device,
        )
        name = f"fewshot_{frac * 100:g}pct"
        out[f"{name}_top1"], out[f"{name}_top5"] = r["top1"], r["top5"]
        out[f"{name}_labels"] = len(idx)
    return out
