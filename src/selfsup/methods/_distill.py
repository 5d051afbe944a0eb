"""Helpers shared by the clustering and self-distillation methods (not a method module).

- :func:`steps_per_epoch`, :func:`epoch_steps`: the authors state schedules in epochs (SwAV's
  prototypes frozen for the first epoch, its queue from epoch 15, DINO's last layer frozen for the
  first epoch); a method only knows steps, so epochs are converted with ``n_samples // batch_size``
  steps per epoch, as the training loop counts them.
- :func:`default_prototypes`: the number of clusters when the user gives none.
- :func:`check_prototypes`: refuses more clusters than training samples, in one line;
  :func:`below_student`: a teacher temperature above the student's.
- :func:`distribution_signals`: the teacher's (or the codes') entropies, for the logs and the
  collapse monitor (:mod:`selfsup.train.monitor`).
"""

from __future__ import annotations

import math

import torch
from pydantic import ValidationInfo
from torch import Tensor

from ..errors import ConfigError
from .base import Context


def below_student(value: float, info: ValidationInfo) -> float:
    """A field validator: a teacher temperature must stay below ``student_temp`` (it sharpens)."""
    student = info.data.get("student_temp")
    if student is not None and value > student:
        raise ValueError(
            f"{value} is above student_temp={student}: the teacher must sharpen (a lower "
            "temperature than the student's), e.g. 0.04"
        )
    return value


def steps_per_epoch(ctx: Context) -> int:
    bs = ctx.batch_size or 0
    return max(ctx.n_samples // bs, 1) if bs > 0 and ctx.n_samples > 0 else 1


def epoch_steps(epochs: float, ctx: Context) -> int:
    """``epochs`` as a number of optimiser steps (rounded)."""
    return int(round(epochs * steps_per_epoch(ctx)))


def default_prototypes(ctx: Context, cap: int = 3000) -> int:
    """``cap`` (SwAV's and DeepCluster-v2's 3000) or a tenth of the training samples if fewer."""
    return max(2, min(cap, ctx.n_samples // 10)) if ctx.n_samples > 0 else cap


def check_prototypes(name: str, k: int, ctx: Context, field: str = "params.n_prototypes") -> None:
    if ctx.n_samples and k > ctx.n_samples:
        raise ConfigError(
            f"method '{name}' has {k} prototypes but the training data has only {ctx.n_samples} "
            f"samples; set --set {field}=N with N <= {ctx.n_samples} (about a tenth of the samples "
            "is a good start)"
        )


@torch.no_grad()
def distribution_signals(p: Tensor) -> dict[str, float]:
    """For row distributions ``p`` (B, K): ``teacher_entropy`` (mean entropy of a row, nats),
    ``teacher_batch_entropy`` (entropy of the mean row) and ``teacher_entropy_max`` (log K).
    A row entropy near log K: every sample is spread uniformly (sharpening too weak); a batch
    entropy near 0: every sample goes to the same cluster (centring or equipartition failing)."""
    p = p.detach().float().reshape(-1, p.shape[-1])
    mean = p.mean(dim=0)
    return {
        "teacher_entropy": float(-(torch.xlogy(p, p)).sum(dim=1).mean()),
        "teacher_batch_entropy": float(-(torch.xlogy(mean, mean)).sum()),
        "teacher_entropy_max": math.log(p.shape[-1]),
    }
