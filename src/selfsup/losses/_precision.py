"""``wide(x)``: a tensor in at least float32 (bf16/fp16 activations under autocast are widened for
softmaxes and logarithms; float64 stays float64, so references and gradcheck run exactly)."""

from __future__ import annotations

import torch
from torch import Tensor


def wide(x: Tensor) -> Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()
