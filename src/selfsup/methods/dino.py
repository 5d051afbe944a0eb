"""DINO: self-distillation with no labels, a momentum teacher centred and sharpened.

Caron, Touvron, Misra, Jegou, Mairal, Bojanowski, Joulin, *Emerging Properties in Self-Supervised
Vision Transformers*, ICCV 2021. Student: encoder -> :class:`~selfsup.models.prototypes.DINOHead`
on every crop. Teacher: an EMA copy of encoder and head (momentum from 0.996 rising to 1 on a
cosine, the BYOL schedule of :func:`~selfsup.methods._common.cosine_momentum`) on the *global* crops
only. Loss :func:`~selfsup.losses.dino_loss`: each student crop predicts the centred, sharpened
teacher distribution of every other global crop; the centre (:class:`~selfsup.losses.Centre`,
momentum 0.9, global sums under DDP) is updated after each step that was taken. Defaults from the
authors' ``main_dino.py``: student temperature 0.1, teacher temperature 0.04 (optionally warmed up
linearly from ``warmup_teacher_temp``), last layer frozen during the first epoch, weight-normalised
last layer with fixed norms. Deviations: the head's width and bottleneck are the config's
``model.proj_hidden`` and ``model.proj_dim`` (512 and 128 by default, for CPUs; the authors use 2048
and 256), and ``out_dim`` is 4096 by default (65536 on ImageNet). An optional KoLeo term on the
student's backbone features of the global crops (DINOv2's, weight 0.1 there) is off by default.

Works on every modality (pooled features only). The teacher temperature must stay below the
student's (it sharpens), which is checked when the method is built.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from pydantic import Field, field_validator
from torch import Tensor

from ..losses import Centre, dino_loss, koleo, teacher_temperature
from ..losses.dino import teacher_probs
from ..models.encoder import Encoder
from ..models.prototypes import DINOHead
from . import register
from ._common import cosine_momentum, ema_update, encode, frozen_copy, global_count
from ._distill import below_student, distribution_signals, epoch_steps
from .base import Batch, Context, Method, Params


class DINOParams(Params):
    out_dim: int = Field(default=4096, ge=2)
    """Output dimension K of the head (the authors': 65536 on ImageNet)."""
    student_temp: float = Field(default=0.1, gt=0)
    teacher_temp: float = Field(default=0.04, gt=0)
    """Final teacher temperature (0.04; up to 0.07 for long runs; it must stay below the
    student's)."""
    warmup_teacher_temp: float = Field(default=0.04, gt=0)
    warmup_teacher_temp_epochs: float = Field(default=0.0, ge=0)
    """Linear warm-up of the teacher temperature from ``warmup_teacher_temp`` (the authors' code: 0
    epochs by default, 30 in their recommended ViT runs)."""
    center_momentum: float = Field(default=0.9, ge=0, lt=1)
    momentum: float = Field(default=0.996, ge=0, le=1)
    """Starting teacher momentum; it rises to 1 on a cosine over the run."""
    freeze_last_layer_epochs: float = Field(default=1.0, ge=0)
    norm_last_layer: bool = True
    head_layers: int = Field(default=3, ge=1)
    use_bn_in_head: bool | None = None
    """BatchNorm in the head MLP (the authors' ``use_bn_in_head``); default: on for backbones
    without patch tokens (ConvNets, as lightly's ResNet recipe), off for ViTs (the authors')."""
    koleo_weight: float = Field(default=0.0, ge=0)
    """Weight of a KoLeo term on the student's features of each global crop (DINOv2: 0.1)."""

    _sharpens = field_validator("teacher_temp", "warmup_teacher_temp")(below_student)


@register
class DINO(Method):
    name = "dino"
    paper = "Caron et al. 2021, Emerging Properties in Self-Supervised Vision Transformers"
    Params = DINOParams

    steps_done: Tensor

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        m = ctx.model
        self.head = DINOHead(
            encoder.out_dim,
            params.out_dim,
            m.proj_hidden,
            m.proj_dim,
            params.head_layers,
            params.norm_last_layer,
            self.head_bn(encoder, params),
        )
        self.teacher_encoder = frozen_copy(encoder)
        self.teacher_head = cast(DINOHead, frozen_copy(self.head))
        self.centre = Centre(params.out_dim, params.center_momentum)
        self.warmup_steps = epoch_steps(params.warmup_teacher_temp_epochs, ctx)
        self.freeze_steps = epoch_steps(params.freeze_last_layer_epochs, ctx)
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self._teacher_out: list[Tensor] = []
        self._signals: dict[str, float] = {}

    @staticmethod
    def head_bn(encoder: Encoder, params: Any) -> bool:
        if params.use_bn_in_head is not None:
            return bool(params.use_bn_in_head)
        return "tokens" not in getattr(getattr(encoder, "backbone", None), "capabilities", ())

    def teacher_temp(self) -> float:
        p = self.params
        return teacher_temperature(
            int(self.steps_done), self.warmup_steps, p.warmup_teacher_temp, p.teacher_temp
        )

    @property
    def last_frozen(self) -> bool:
        return int(self.steps_done) < self.freeze_steps

    def koleo_term(self, feats: list[Tensor], g: int) -> Tensor:
        return cast(Tensor, sum(koleo(f) for f in feats[:g])) / g

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        p, g = self.params, global_count(views)
        frozen = self.last_frozen
        feats = encode(self.encoder, views)
        student = [self.head(f, frozen) for f in feats]
        with torch.no_grad():
            teacher = encode(lambda x: self.teacher_head(self.teacher_encoder(x)), views[:g])
        tt = self.teacher_temp()
        loss = dino_loss(student, teacher, self.centre.centre, p.student_temp, tt)
        logs = {"teacher_temp": tt}
        if p.koleo_weight > 0:
            kl = self.koleo_term(feats, g)
            loss = loss + p.koleo_weight * kl
            logs["koleo"] = float(kl.detach())
        self._teacher_out = [t.detach() for t in teacher]
        self._signals = distribution_signals(teacher_probs(teacher[0], self.centre.centre, tt))
        return loss, logs

    def collapse_signals(self) -> dict[str, float]:
        """The teacher distribution's entropies at the last step (read by the collapse monitor)."""
        return self._signals

    def collapse_hint(self, kind: str) -> str:
        """What to try when the collapse monitor sees ``kind`` (uniform, dominant, rank)."""
        return {
            "uniform": "lower params.teacher_temp and params.warmup_teacher_temp (0.04) or the "
            "learning rate",
            "dominant": "lower params.center_momentum (faster centring), warm the teacher "
            "temperature up (params.warmup_teacher_temp_epochs) or lower the learning rate",
        }.get(
            kind,
            "lower the learning rate, raise params.momentum or add local crops (views.local_crops)",
        )

    def momentum_at(self, step: int, total_steps: int) -> float:
        return cosine_momentum(self.params.momentum, step, total_steps)

    def update_teacher(self, step: int, total_steps: int) -> None:
        m = self.momentum_at(step, total_steps)
        ema_update(self.teacher_encoder, self.encoder, m)
        ema_update(self.teacher_head, self.head, m)

    def after_step(self, step: int, total_steps: int) -> None:
        self.update_teacher(step, total_steps)
        if self._teacher_out:
            self.centre.update(torch.cat(self._teacher_out))
        self._teacher_out = []
        self.steps_done += 1
