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
detached references to its outputs in the step (all views, all chunks), so the monitor costs no
extra forward pass (only a small SVD every ``every`` steps). If the encoder was not called in the
step, ``method.embed`` is used.

When both checks in a row find ``emb_std < std_ratio / sqrt(D)`` or ``emb_rank <
max(rank_floor, rank_fraction * min(N, D))`` it prints one warning line to stderr, once per run.

Methods with a teacher distribution (DINO, iBOT, SwAV's codes, OBoW's bags of words, ...) also
report, through ``method.collapse_signals()``, the entropies of that distribution on the step's
batch (``teacher_entropy``: mean over samples; ``teacher_batch_entropy``: of the batch mean;
``teacher_entropy_max``: log K); they are logged with the other statistics. DINO's two failure modes
(Caron et al. 2021, section 5.3) read off them: every sample's distribution *uniform* (row entropy
above ``uniform_ratio * log K``: sharpening too weak, the loss stuck near log K) or one output
*dominating* the batch (batch entropy below ``dominant_ratio * log K``: centring failing). Either,
for ``patience`` checks in a row, prints one warning line with what to try (the method's own
``collapse_hint(kind)`` where it has one). The monitor warns once per run in all.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

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
        uniform_ratio: float = 0.98,
        dominant_ratio: float = 0.1,
    ):
        self.method, self.every, self.patience = method, every, patience
        self.std_ratio, self.rank_fraction, self.rank_floor = std_ratio, rank_fraction, rank_floor
        self.stream = stream
        self.uniform_ratio, self.dominant_ratio = uniform_ratio, dominant_ratio
        self.warned = False
        self._bad = 0
        self._bad_teacher: dict[str, int] = {"uniform": 0, "dominant": 0}
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
        """Call after every step: statistics for this step's log record ({} between
        measurements)."""
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
        stats.update(self._teacher(step))
        self._bad = self._bad + 1 if self.collapsing(stats, len(z)) else 0
        if self._bad >= self.patience and not self.warned:
            self.warned = True
            hint = getattr(self.method, "collapse_hint", None)
            todo = hint("rank") if callable(hint) else _HINTS["rank"]
            (self.stream or sys.stderr).write(
                f"warning: the representation is collapsing at step {step} (feature std "
                f"{stats['emb_std']:.2g} vs {stats['emb_std_ideal']:.2g} when spread out, "
                f"effective rank {stats['emb_rank']:.1f} of "
                f"{min(len(z), z.flatten(1).shape[1])}); {todo}\n"
            )
        return stats

    def _teacher(self, step: int) -> dict[str, float]:
        """The method's teacher-distribution signals, checked for the two collapse modes."""
        signals: Callable[[], dict[str, float]] | None = getattr(
            self.method, "collapse_signals", None
        )
        got = dict(signals()) if callable(signals) else {}
        if not {"teacher_entropy", "teacher_batch_entropy", "teacher_entropy_max"} <= set(got):
            return got
        top = got["teacher_entropy_max"]
        bad = {
            "uniform": got["teacher_entropy"] > self.uniform_ratio * top,
            "dominant": got["teacher_batch_entropy"] < self.dominant_ratio * top,
        }
        for kind, is_bad in bad.items():
            self._bad_teacher[kind] = self._bad_teacher[kind] + 1 if is_bad else 0
            if self._bad_teacher[kind] >= self.patience and not self.warned:
                self.warned = True
                what = (
                    "every sample's output is nearly uniform (entropy "
                    f"{got['teacher_entropy']:.2f} of at most {top:.2f} nats): the loss is stuck"
                    if kind == "uniform"
                    else f"one output takes the whole batch (batch entropy "
                    f"{got['teacher_batch_entropy']:.2f} of at most {top:.2f} nats)"
                )
                hint = getattr(self.method, "collapse_hint", None)
                todo = hint(kind) if callable(hint) else _HINTS[kind]
                (self.stream or sys.stderr).write(
                    f"warning: the teacher is collapsing at step {step}: {what}; {todo}\n"
                )
        return got

    def close(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None


#: what to try, when the method has no ``collapse_hint`` of its own
_HINTS = {
    "rank": "lower the learning rate or check the method's settings",
    "uniform": "sharpen the targets (a lower teacher temperature or Sinkhorn epsilon) or lower the "
    "learning rate",
    "dominant": "strengthen the centring or equipartition (more prototypes, a queue, a larger "
    "batch) or lower the learning rate",
}
