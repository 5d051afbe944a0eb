"""DINO's self-distillation loss, its centre, and the teacher temperature warm-up.

Caron, Touvron, Misra, Jegou, Mairal, Bojanowski, Joulin, *Emerging Properties in Self-Supervised
Vision Transformers*, ICCV 2021. A student ``g_s`` (all crops) matches the softmax of a momentum
teacher ``g_t`` (the global crops only). With the teacher's outputs *centred* by ``c`` and
*sharpened* by a low temperature ``t_t``:

    P_t(x) = softmax((g_t(x) - c) / t_t),   P_s(x) = softmax(g_s(x) / t_s)
    L = 1 / |pairs| sum_{i global} sum_{v != i} mean_b [ - sum_k P_t(x_i)_bk log P_s(x_v)_bk ]
    c <- m c + (1 - m) mean_b g_t(x)   (over the teacher's outputs of every global crop and rank)

Centring stops one dimension from dominating, sharpening stops the uniform collapse that centring
alone would cause. The authors' defaults (``facebookresearch/dino``, ``main_dino.py``):
``t_s = 0.1``, ``t_t`` rising linearly from 0.04 over the first 30 epochs to its final value
(0.04, 0.07 for long runs), centre momentum ``m = 0.9``.

:func:`dino_loss` is a pure function; :class:`Centre` holds ``c`` (a buffer, so it is saved and
restored exactly) and updates it with global sums under ``torch.distributed``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._precision import wide
from .distributed import all_sum, world


def teacher_probs(teacher: Tensor, centre: Tensor, temperature: float) -> Tensor:
    """``softmax((teacher - centre) / temperature)`` over the last dimension, no gradient."""
    return F.softmax((wide(teacher.detach()) - centre) / temperature, dim=-1)


def dino_loss(
    student: list[Tensor],
    teacher: list[Tensor],
    centre: Tensor,
    student_temp: float = 0.1,
    teacher_temp: float = 0.04,
) -> Tensor:
    """Cross-entropy of every student view against the centred, sharpened teacher of every *other*
    global view (teacher view ``i`` is the same crop as student view ``i``).

    Parameters
    ----------
    student : one (B, K) tensor of head outputs per view (global views first).
    teacher : one (B, K) tensor per global view (the teacher's outputs; detached here).
    centre : (1, K) or (K,) centre ``c``.
    """
    if not teacher or len(student) < 2 or len(teacher) > len(student):
        raise ValueError(
            f"dino_loss needs 1 <= teacher views <= student views and >= 2 student views, got "
            f"{len(teacher)} and {len(student)}"
        )
    t = [teacher_probs(x, centre, teacher_temp) for x in teacher]
    s = [F.log_softmax(wide(x) / student_temp, dim=-1) for x in student]
    total, n = wide(student[0]).new_zeros(()), 0
    for i, ti in enumerate(t):
        for v, sv in enumerate(s):
            if v != i:
                total = total + (-(ti * sv).sum(dim=-1)).mean()
                n += 1
    return total / n


class Centre(nn.Module):
    """DINO's centre ``c`` (shape ``(1, K)``), an exponential moving average of the teacher's mean
    output; ``update`` averages over every sample of every rank (global sums)."""

    centre: Tensor

    def __init__(self, dim: int, momentum: float = 0.9) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("centre", torch.zeros(1, dim))

    @torch.no_grad()
    def update(self, teacher: Tensor) -> None:
        """``c <- m c + (1 - m) mean(teacher)``; ``teacher`` is (..., K), every leading row
        counts."""
        t = teacher.detach().to(self.centre.dtype).reshape(-1, self.centre.shape[1])
        mean = all_sum(t.sum(dim=0, keepdim=True)) / (len(t) * world()[1])
        self.centre.mul_(self.momentum).add_(mean, alpha=1 - self.momentum)


def teacher_temperature(step: int, warmup_steps: int, start: float, end: float) -> float:
    """DINO's teacher temperature: linear from ``start`` to ``end`` over ``warmup_steps``, then
    ``end`` (the authors' ``np.linspace`` per epoch, here per step)."""
    if warmup_steps <= 0 or step >= warmup_steps:
        return end
    return start + (end - start) * step / warmup_steps
