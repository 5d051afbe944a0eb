"""iBOT's options added while fixing its collapse on digits (issue 20): BatchNorm in the head runs
on the patch tokens too (statistics over every token of the batch), and ``mask_prob`` leaves the
other crops unmasked, as the authors' random-MIM recipes do."""

from __future__ import annotations

import numpy as np
import torch
from test_ssl_methods import run_steps

import selfsup.methods as M
from selfsup.config import ModelConfig
from selfsup.models import build_backbone
from selfsup.models.encoder import Encoder
from selfsup.views import PRESETS, MultiCropViews, seeded

N = 16


def build(loss):
    torch.manual_seed(0)
    enc = Encoder(build_backbone("vit_tiny", 1, 8), [0.5], [0.25])
    ctx = M.Context(model=ModelConfig(proj_hidden=32, proj_dim=16), n_samples=N, batch_size=N)
    return M.build("ibot", enc, {"out_dim": 64, **loss}, ctx)


def test_batchnorm_in_the_head_trains_on_patch_tokens():
    m = build({"use_bn_in_head": True})
    assert any(isinstance(x, torch.nn.BatchNorm1d) for x in m.head.modules())
    x = torch.from_numpy((np.random.default_rng(0).random((N, 1, 8, 8)) * 255).astype("uint8"))
    with seeded(0):
        views = MultiCropViews(PRESETS["digits"], 1, 2, 0)(x)
    losses = run_steps(m, views, x, steps=6)
    assert all(np.isfinite(losses)) and np.mean(losses[-2:]) < losses[0], losses


def test_mask_prob_leaves_the_other_crops_unmasked():
    torch.manual_seed(1)
    full = build({"mask_ratio": 0.3}).masks(2000, 16, torch.device("cpu"))
    half = build({"mask_ratio": 0.3, "mask_ratio_var": 0.2, "mask_prob": 0.5}).masks(
        2000, 16, torch.device("cpu")
    )
    assert bool(full.any(dim=1).all())
    masked = half.any(dim=1)
    assert 0.45 < float(masked.float().mean()) < 0.55
    ratios = half[masked].float().mean(dim=1)
    assert float(ratios.min()) >= 1 / 16 and float(ratios.max()) <= 0.5 + 1e-6
