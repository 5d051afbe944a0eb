"""iBOT's masked patch self-distillation loss.

Zhou, Wei, Wang, Shen, Xie, Yuille, Kong, *iBOT: Image BERT Pre-Training with Online Tokenizer*,
ICLR 2022. The student sees a global crop with some patch tokens replaced by a mask token; the
momentum teacher (the online tokenizer) sees the same crop unmasked. On the masked patches of the
*same* view, the student's patch distribution matches the teacher's centred, sharpened one:

    L_mim = mean_b [ sum_l m_bl ( - sum_k P_t(u_bl)_k log P_s(\\hat u_bl)_k ) / max(1, sum_l m_bl) ]

with ``P_t = softmax((g_t - c') / t_t')`` and ``P_s = softmax(g_s / t_s)`` (DINO's form, a separate
centre ``c'`` for the patch tokens). The authors' defaults (``bytedance/ibot``, ``main_ibot.py``):
``t_s = 0.1``, patch teacher temperature warming up from 0.04 to 0.07, centre momenta 0.9.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ._precision import wide
from .dino import teacher_probs


def ibot_patch_loss(
    student: Tensor,
    teacher: Tensor,
    mask: Tensor,
    centre: Tensor,
    student_temp: float = 0.1,
    teacher_temp: float = 0.07,
) -> Tensor:
    """Masked patch distillation for one view.

    Parameters
    ----------
    student, teacher : (B, L, K) head outputs of the L patch tokens (teacher detached here).
    mask : (B, L), 1 (or True) for a patch the student saw masked; only those count.
    centre : (1, K) patch centre ``c'``.
    """
    if student.shape != teacher.shape or student.shape[:2] != mask.shape:
        raise ValueError(
            f"ibot_patch_loss expects (B, L, K) student and teacher and a (B, L) mask, got "
            f"{tuple(student.shape)}, {tuple(teacher.shape)}, {tuple(mask.shape)}"
        )
    t = teacher_probs(teacher, centre, teacher_temp)
    ce = -(t * F.log_softmax(wide(student) / student_temp, dim=-1)).sum(dim=-1)  # (B, L)
    m = mask.to(ce.dtype)
    return ((ce * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)).mean()
