"""Optimisers (SGD, LARS, AdamW, RMSprop) and the learning-rate schedule (linear warm-up, then
cosine)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import DEFAULT_LR, UNSCALED, OptimConfig, resolved_lr

#: the default learning rates (per 256 samples for SGD/LARS) live with the config:
#: :data:`selfsup.config.DEFAULT_LR`, :func:`selfsup.config.resolved_lr`
DEFAULT_WD = {"sgd": 5e-4, "lars": 1e-6, "adamw": 1e-4, "rmsprop": 0.0}


class LARS(torch.optim.Optimizer):
    """LARS (You et al. 2017): SGD with momentum whose step per weight tensor is scaled by the trust
    ratio ``eta * ||w|| / (||g|| + wd ||w||)``. Groups with ``lars=False`` (biases, norms) take
    plain SGD steps, as in SimCLR."""

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eta: float = 0.001,
    ):
        super().__init__(
            params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, lars=True)
        )

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if g["lars"]:
                    if g["weight_decay"]:
                        d = d.add(p, alpha=g["weight_decay"])
                    wn, gn = torch.linalg.vector_norm(p), torch.linalg.vector_norm(d)
                    trust = torch.where(
                        (wn > 0) & (gn > 0), g["eta"] * wn / gn, torch.ones_like(wn)
                    )
                    d = d.mul(trust)
                st = self.state[p]
                if "momentum_buffer" not in st:
                    st["momentum_buffer"] = d.clone()
                else:
                    st["momentum_buffer"].mul_(g["momentum"]).add_(d)
                p.add_(st["momentum_buffer"], alpha=-g["lr"])
        return loss


def param_groups(
    model: nn.Module,
    weight_decay: float,
    decay_all: bool = False,
    lr_factors: dict[str, float] | None = None,
) -> list[dict]:
    """Weight decay on weights of rank >= 2 only; biases and norm parameters are exempt (unless
    ``decay_all``: then every parameter decays, as torch's optimisers do by themselves). With
    ``lr_factors`` (parameter-name prefix -> factor), parameters under a prefix go to groups of
    their own whose ``lr_factor`` the trainer multiplies the scheduled rate by."""
    factors = sorted((lr_factors or {}).items(), key=lambda kv: -len(kv[0]))
    groups: dict[tuple[bool, float], list[nn.Parameter]] = {(True, 1.0): [], (False, 1.0): []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        factor = next((f for k, f in factors if name.startswith(k)), 1.0)
        groups.setdefault((p.ndim >= 2 or decay_all, float(factor)), []).append(p)
    out = []
    for (decay, factor), params in groups.items():
        if factor != 1.0 and not params:
            continue
        group: dict = {"params": params, "weight_decay": weight_decay if decay else 0.0}
        if not decay:
            group["lars"] = False
        if factor != 1.0:
            group["lr_factor"] = factor
        out.append(group)
    return out


def build_optimizer(model: nn.Module, cfg: OptimConfig, batch_size: int) -> torch.optim.Optimizer:
    lr = resolved_lr(cfg, batch_size)
    wd = DEFAULT_WD[cfg.name] if cfg.weight_decay is None else cfg.weight_decay
    groups = param_groups(model, wd, cfg.decay_all, cfg.lr_factors)
    if cfg.name == "lars":
        return LARS(groups, lr=lr, momentum=cfg.momentum)
    for g in groups:
        g.pop("lars", None)
    # the fused kernels update all parameters in one pass: on a 2-core CPU AdamW's step went from
    # tens of milliseconds (per-tensor loops) to about one (BENCHMARKS.md)
    if cfg.name == "sgd":
        # not fused: torch's fused SGD fails when some momentum buffers exist and others do not yet
        # (a parameter without a gradient in the first steps: SwAV's and DINO's frozen prototypes
        # or last layer); the multi-tensor path creates each buffer at its first gradient
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, foreach=True)
    if cfg.name == "rmsprop":  # weight decay, if any, is coupled (L2), as torch's RMSprop has it
        return torch.optim.RMSprop(groups, lr=lr, alpha=0.9, eps=1e-7)
    return _fused(torch.optim.AdamW, groups, lr=lr)


def _fused(cls, groups, **kw) -> torch.optim.Optimizer:
    try:
        return cls(groups, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):  # a device or dtype without a fused kernel
        return cls(groups, **kw)


def lr_at(
    step: int,
    total: int,
    base_lr: float,
    warmup: int,
    schedule: str = "cosine",
    min_ratio: float = 0.0,
) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``min_ratio * base_lr``."""
    if warmup > 0 and step < warmup:
        return base_lr * (step + 1) / warmup
    if schedule == "constant":
        return base_lr
    t = (step - warmup) / max(1, total - warmup)
    return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


__all__ = [
    "DEFAULT_LR",
    "DEFAULT_WD",
    "UNSCALED",
    "build_optimizer",
    "lr_at",
    "param_groups",
    "resolved_lr",
]
