"""A cheap collapse monitor for the training loop.

Every ``every`` steps it measures, on the encoder features of the current batch:

- ``emb_std``: the mean over dimensions of the standard deviation of the L2-normalised features
  (Chen & He 2021, SimSiam, section 4.1): 0 under complete collapse, about ``1/sqrt(D)`` when the
  features spread over the sphere (``emb_std_ideal``);
- ``emb_rank``: the effective rank RankMe (Garrido et al. 2023, *RankMe: Assessing the Downstream
  Performance of Pretrained Self-Supervised Representations by Their Rank*):
  ``exp(-sum_k p_k log p_k)``, ``p_k = s_k / sum(s) + eps`` for the singular values ``s`` of the
  (N, D) feature matrix; 1 under complete collapse, at most ``min(N, D)``.

The features are the ones the step already computed: a forward hook on ``method.encoder`` keeps
detached references to its outputs in the step (all views, all chunks), so the monitor costs no extra forward pass (only a small
SVD every ``every`` steps). If the encoder was not called in the step, ``method.embed`` is used.

When both checks in a row find ``emb_std < std_ratio / sqrt(D)`` or ``emb_rank <
max(rank_floor, rank_fraction * min(N, D))`` it prints one warning line to stderr, once per run.
"""

from __future__ import annotations

import math
import sys

import torch
from torch import Tensor, nn

from ..eval.diagnostics import dim_std, effective_rank


def collapse_stats(z: Tensor, eps: float = 1e-7) -> dict[str, float]:
    """``emb_std``, ``emb_std_ideal`` and ``emb_rank`` of features ``z`` (N, D), N >= 2."""
    z = z.detach().flatten(1).float()
    return {
        "emb_std": float(dim_std(z).mean()),
        "emb_std_ideal": 1.0 / math.sqrt(z.shape[1]),
        "emb_rank": effective_rank(z, eps),
    }


class CollapseMonitor:
    """Collapse statistics of the latest encoder output, every ``every`` steps; one warning."""

    def __init__(
        self,
        method: nn.Module,
        every: int = 10,
        std_ratio: float = 0.1,
        rank_fraction: float = 0.01,
        rank_floor: float = 1.5,
        patience: int = 2,
        stream=None,
    ):
        self.method, self.every, self.patience = method, every, patience
        self.std_ratio, self.rank_fraction, self.rank_floor = std_ratio, rank_fraction, rank_floor
        self.stream = stream
        self.warned = False
        self._bad = 0
        self._outs: list[Tensor] = []
        enc = getattr(method, "encoder", None)
        self._hook = (
            enc.register_forward_hook(self._capture) if isinstance(enc, nn.Module) else None
        )

    def _capture(self, module, args, out):
        if isinstance(out, Tensor) and out.ndim >= 2 and module.training and len(self._outs) < 64:
            self._outs.append(out.detach())

    def collapsing(self, stats: dict[str, float], n: int) -> bool:
        d = 1.0 / stats["emb_std_ideal"] ** 2
        rank_min = max(self.rank_floor, self.rank_fraction * min(n, d))
        return (
            stats["emb_std"] < self.std_ratio * stats["emb_std_ideal"]
            or stats["emb_rank"] < rank_min
        )

    def __call__(self, views: list[Tensor], step: int) -> dict[str, float]:
        """Call after every step: statistics for this step's log record ({} between measurements)."""
        outs, self._outs = self._outs, []
        if self.every <= 0 or step % self.every != 0:
            return {}
        outs = [o.flatten(1) for o in outs if o.flatten(1).shape[1] == outs[0].flatten(1).shape[1]]
        z = torch.cat(outs) if outs else None
        if z is None or len(z) < 2:
            with torch.no_grad():
                z = self.method.embed(views[:1])[0]
        if len(z) < 2:
            return {}
        stats = collapse_stats(z)
        self._bad = self._bad + 1 if self.collapsing(stats, len(z)) else 0
        if self._bad >= self.patience and not self.warned:
            self.warned = True
            (self.stream or sys.stderr).write(
                f"warning: the representation is collapsing at step {step} (feature std "
                f"{stats['emb_std']:.2g} vs {stats['emb_std_ideal']:.2g} when spread out, effective rank "
                f"{stats['emb_rank']:.1f} of {min(len(z), z.flatten(1).shape[1])}); lower the learning "
                "rate or check the method's settings\n"
            )
        return stats

    def close(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
