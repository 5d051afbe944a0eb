"""iBOT: DINO plus masked patch self-distillation with an online tokenizer, on a ViT.

Zhou, Wei, Wang, Shen, Xie, Yuille, Kong, *iBOT: Image BERT Pre-Training with Online Tokenizer*,
ICLR 2022. Everything of :mod:`~selfsup.methods.dino`, plus: in each global crop a random fraction
of the patch embeddings is replaced by a learned mask token before the positions are added; the
student's pooled feature of that masked crop enters DINO's loss, and its patch tokens, through the
same head MLP and a separate last layer (``shared_head=False``, the authors' default), predict the
teacher's (unmasked, shared-head) patch distributions on the masked patches
(:func:`~selfsup.losses.ibot_patch_loss`, its own centre). Loss ``lambda1 L_cls + lambda2 L_mim``.
Defaults from ``bytedance/ibot`` ``main_ibot.py``: both teacher temperatures warm up from 0.04 to
0.07 (class token: 0.04 -> 0.04 unless set) over 30 epochs, 0.3 of the patches masked, lambda1 =
lambda2 = 1. Deviations: masks are random patches with a ratio drawn per image from
``[mask_ratio - mask_ratio_var, mask_ratio + mask_ratio_var]`` rather than the authors' blocks (on
the 4x4 to 8x8 patch grids of small images blocks and random patches differ little); output
dimension 4096 for both heads (the authors': 8192); local crops are not masked, as in the authors'
code.

On small images (digits) a random ViT's features are so alike that the authors' head (no
BatchNorm) leaves the centred teacher uniform from the start and the run collapses; BatchNorm in the
head (``use_bn_in_head=True``, the authors' ``--norm_in_head bn``) prevents it (BENCHMARKS.md).

Needs a backbone with patch tokens (``Needs(encoder="tokens")``: a ViT; with ``--backbone auto``
the modality picks one); a convolutional one is refused in one line when the method is built.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

from ..losses import Centre, dino_loss, ibot_patch_loss, teacher_temperature
from ..losses.dino import teacher_probs
from ..models.encoder import Encoder
from ..models.prototypes import DINOHead, NormedLinear
from ..models.vit import ViT
from . import register
from ._common import encode, global_count
from ._distill import below_student, distribution_signals, epoch_steps
from .base import Batch, Context, Needs
from .dino import DINO, DINOParams
from .mae import normalised


class IBOTParams(DINOParams):
    warmup_teacher_temp_epochs: float = Field(default=30.0, ge=0)
    teacher_patch_temp: float = Field(default=0.07, gt=0)
    warmup_teacher_patch_temp: float = Field(default=0.04, gt=0)
    shared_head: bool = False
    """The student's patch tokens use the class head's last layer (the teacher's always do)."""
    mask_ratio: float = Field(default=0.3, gt=0, lt=1)
    mask_ratio_var: float = Field(default=0.0, ge=0, lt=0.5)
    mask_prob: float = Field(default=1.0, gt=0, le=1)
    """Fraction of the global crops that are masked; the others enter unmasked (their patch loss is
    0). The authors' code masks every crop; their recommended ViT recipes (``--pred_ratio 0 0.3
    --pred_ratio_var 0 0.2``) mask half of them, with a ratio drawn in [0.1, 0.5]."""
    lambda1: float = Field(default=1.0, ge=0)
    lambda2: float = Field(default=1.0, ge=0)

    _patch_sharpens = field_validator("teacher_patch_temp", "warmup_teacher_patch_temp")(
        below_student
    )

    @model_validator(mode="after")
    def _mask_ratio(self) -> IBOTParams:
        if self.mask_ratio - self.mask_ratio_var <= 0 or self.mask_ratio + self.mask_ratio_var >= 1:
            raise ValueError("mask_ratio +- mask_ratio_var must stay inside (0, 1)")
        return self


@register
class IBOT(DINO):
    name = "ibot"
    paper = "Zhou et al. 2022, iBOT: Image BERT Pre-Training with Online Tokenizer"
    Params = IBOTParams
    needs = Needs(encoder="tokens")

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        vit = self.vit
        self.mask_token = nn.Parameter(torch.zeros(1, 1, vit.dim))
        nn.init.normal_(self.mask_token, std=0.02)
        #: the student's last layer for patch tokens (``shared_head=False``); the teacher's patch
        #: tokens use its class head (the authors' ``shared_head_teacher``), so both have out_dim
        self.patch_layer = NormedLinear(
            self.head.bottleneck_dim, params.out_dim, params.norm_last_layer
        )
        self.patch_centre = Centre(params.out_dim, params.center_momentum)
        self.patch_warmup = epoch_steps(params.warmup_teacher_temp_epochs, ctx)
        self._teacher_patches: list[Tensor] = []

    @property
    def vit(self) -> ViT:
        return cast(ViT, self.encoder.backbone)

    def patch_logits(self, head: DINOHead, tokens: Tensor, frozen: bool, student: bool) -> Tensor:
        # (N, L, D) -> (N * L, D): a BatchNorm in the head MLP then sees every token of the batch
        h = head.bottleneck(tokens.reshape(-1, tokens.shape[-1])).unflatten(0, tokens.shape[:-1])
        if student and not self.params.shared_head:
            out: Tensor = self.patch_layer(h, frozen)
        else:
            out = head.last_layer(h, frozen)
        return out

    def masks(self, n: int, length: int, device: torch.device) -> Tensor:
        """(n, L) boolean masks, a ratio per image drawn around ``mask_ratio``; with ``mask_prob`` <
        1 the rows of the crops left unmasked are all False."""
        p = self.params
        lo, hi = p.mask_ratio - p.mask_ratio_var, p.mask_ratio + p.mask_ratio_var
        ratio = lo + (hi - lo) * torch.rand(n, 1, device=device)
        k = (ratio * length).round().clamp(1, length - 1)
        rank = torch.rand(n, length, device=device).argsort(dim=1).argsort(dim=1)
        out: Tensor = rank < k
        if p.mask_prob < 1:
            out &= torch.rand(n, 1, device=device) < p.mask_prob
        return out

    def masked_tokens(self, x: Tensor, mask: Tensor) -> Tensor:
        """The student's encoded tokens (N, 1 + L, D) of ``x`` with the ``mask`` patches
        replaced."""
        vit = self.vit
        gh, gw = vit.grid(x.shape[-2], x.shape[-1])
        t = vit.patch_embed(normalised(self.encoder, x)).flatten(2).transpose(1, 2)
        t = torch.where(mask.unsqueeze(-1), self.mask_token.to(t.dtype), t)
        return vit.encode_tokens(t + vit.pos_embed(gh, gw, t.device, t.dtype))

    def teacher_tokens(self, x: Tensor) -> Tensor:
        vit = cast(ViT, self.teacher_encoder.backbone)
        return vit.encode_tokens(vit.tokens(normalised(self.teacher_encoder, x)))

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        p, g = self.params, global_count(views)
        frozen = self.last_frozen
        xg = torch.cat(views[:g])
        n_patches = self.vit.grid(xg.shape[-2], xg.shape[-1])
        mask = self.masks(len(xg), n_patches[0] * n_patches[1], xg.device)
        zg = self.masked_tokens(xg, mask)
        feats = list(self.vit.pooled(zg).chunk(g)) + encode(self.encoder, views[g:])
        student = [self.head(f, frozen) for f in feats]
        s_patch = self.patch_logits(self.head, zg[:, 1:], frozen, True).chunk(g)
        with torch.no_grad():
            zt = self.teacher_tokens(xg)
            teacher = list(self.teacher_head(self.vit.pooled(zt)).chunk(g))
            t_patch = self.patch_logits(self.teacher_head, zt[:, 1:], False, False)
        tt = self.teacher_temp()
        tpt = teacher_temperature(
            int(self.steps_done),
            self.patch_warmup,
            p.warmup_teacher_patch_temp,
            p.teacher_patch_temp,
        )
        l_cls = dino_loss(student, teacher, self.centre.centre, p.student_temp, tt)
        l_mim = cast(
            Tensor,
            sum(
                ibot_patch_loss(s, t, m, self.patch_centre.centre, p.student_temp, tpt)
                for s, t, m in zip(s_patch, t_patch.chunk(g), mask.chunk(g), strict=True)
            )
            / g,
        )
        self._teacher_out = [t.detach() for t in teacher]
        self._teacher_patches = [t_patch.detach()]
        self._signals = distribution_signals(teacher_probs(teacher[0], self.centre.centre, tt))
        loss = p.lambda1 * l_cls + p.lambda2 * l_mim
        return loss, {
            "loss_cls": float(l_cls.detach()),
            "loss_mim": float(l_mim.detach()),
            "teacher_temp": tt,
        }

    def after_step(self, step: int, total_steps: int) -> None:
        if self._teacher_patches:
            self.patch_centre.update(torch.cat(self._teacher_patches))
        self._teacher_patches = []
        super().after_step(step, total_steps)
