"""cmae's contrastive term against Point-CMAE's released code: Amazingren/Point-CMAE,
``models/Point_CMAE.py`` at commit 89ff9eaea70a6570a83fb39ea9cd8062f20b957d (read for facts:
``Point_CMAE.forward``, the block "Contrastive Loss (Cross)"). The reference below is a float64
transcription written here from that reading.

What the project's ``cmae`` is (docs/methods/cmae.md): Point-CMAE's objective on image patches, not
Huang et al.'s image CMAE (whose InfoNCE between an online and an EMA target branch it does not
build, so there is nothing of Huang et al.'s to compare with). Its global NT-Xent term
(``contrast_weight``) is the project's addition, SimCLR's loss, tested elsewhere. The Point-CMAE
term is ``token_weight``'s agreement of decoder features at patches hidden in both masks.

The released code places each branch's decoder features back at their patch positions,
L2-normalises them, takes the *batched* product ``cos = F1 F2^T`` (B, G, G), expands the co-mask
``m1 & m2`` (B, G) over the last axis and averages ``1 - cos + 1e-8`` over it: each co-masked patch
of branch 1 is compared with **every** patch of branch 2. The project compares it with the **same**
patch of branch 2 (the paper's description, as docs/methods/cmae.md and the pointcmae module read
it; a documented deviation). The tests check that the project's term is exactly the released
formula restricted to the same patch (the diagonal of ``cos``), that it is not the full released
formula on general inputs, and the special case where both agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from selfsup import methods
from selfsup.config import ModelConfig
from selfsup.losses.masked import masked_token_agreement
from selfsup.models import build_backbone
from selfsup.models.encoder import Encoder

EPS = 1e-8  # the released code's epsilon inside the sum


def _normalise(f: np.ndarray) -> np.ndarray:
    return f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-12)  # F.normalize


def authors_loss_contras(f1: np.ndarray, f2: np.ndarray, m1: np.ndarray, m2: np.ndarray) -> float:
    """The released ``loss_contras``: features (B, G, C) in patch order, masks (B, G) bool."""
    cos = np.einsum("blc,bkc->blk", _normalise(f1), _normalise(f2))
    comask = np.repeat((m1 & m2)[:, :, None], f1.shape[1], axis=2).astype(float)
    return float((comask * (1 - cos + EPS)).sum() / comask.sum())


def authors_loss_contras_same_patch(
    f1: np.ndarray, f2: np.ndarray, m1: np.ndarray, m2: np.ndarray
) -> float:
    """The same formula with ``cos`` restricted to its diagonal (patch ``l`` against patch ``l``):
    the paper's per-patch agreement, the reading the project implements."""
    cos = np.einsum("blc,blc->bl", _normalise(f1), _normalise(f2))
    comask = (m1 & m2).astype(float)
    return float((comask * (1 - cos + EPS)).sum() / comask.sum())


def _masks(rng: np.random.Generator, b: int, g: int, ratio: float) -> np.ndarray:
    """``_mask_center_rand``: exactly ``int(ratio * G)`` hidden patches per sample, shuffled."""
    out = np.zeros((b, g), dtype=bool)
    for i in range(b):
        out[i, rng.permutation(g)[: int(ratio * g)]] = True
    return out


def test_token_agreement_is_the_released_formula_at_the_same_patch():
    rng = np.random.default_rng(0)
    for b, g, c, ratio in ((3, 16, 8, 0.75), (2, 64, 12, 0.6)):
        # branch 2 near branch 1 patch by patch, as the two masks' features of one image are
        f1 = rng.standard_normal((b, g, c))
        f2 = f1 + 0.5 * rng.standard_normal((b, g, c))
        m1, m2 = _masks(rng, b, g, ratio), _masks(rng, b, g, ratio)
        got = float(
            masked_token_agreement(
                torch.as_tensor(f1), torch.as_tensor(f2), torch.as_tensor((m1 & m2).astype(float))
            )
        )
        assert got == pytest.approx(authors_loss_contras_same_patch(f1, f2, m1, m2), abs=2e-8)
        # the documented deviation: the released all-pairs average is another value (about 1
        # here, where the same-patch agreement is small)
        assert got < 0.3 and authors_loss_contras(f1, f2, m1, m2) > 0.7
        # features of other scales (the cosine ignores them)
        s1, s2 = rng.uniform(0.1, 5, (b, g, 1)), rng.uniform(0.1, 5, (b, g, 1))
        scaled = masked_token_agreement(
            torch.as_tensor(f1 * s1),
            torch.as_tensor(f2 * s2),
            torch.as_tensor((m1 & m2).astype(float)),
        )
        assert float(scaled) == pytest.approx(got, abs=1e-12)


def test_token_agreement_special_cases_of_the_released_formula():
    rng = np.random.default_rng(1)
    b, g, c = 2, 16, 6
    m1, m2 = _masks(rng, b, g, 0.75), _masks(rng, b, g, 0.75)
    both = torch.as_tensor((m1 & m2).astype(float))
    f1 = rng.standard_normal((b, g, c))
    # branch 2's features all point one way within a sample: every column of cos is the same,
    # so comparing with every patch and with the same patch coincide
    f2 = np.repeat(rng.standard_normal((b, 1, c)), g, axis=1) * rng.uniform(0.5, 2, (b, g, 1))
    got = float(masked_token_agreement(torch.as_tensor(f1), torch.as_tensor(f2), both))
    assert got == pytest.approx(authors_loss_contras(f1, f2, m1, m2), abs=2e-8)
    assert got == pytest.approx(authors_loss_contras_same_patch(f1, f2, m1, m2), abs=2e-8)
    # identical features: perfect agreement (the released code's value is its epsilon)
    same = float(masked_token_agreement(torch.as_tensor(f1), torch.as_tensor(f1), both))
    assert same == pytest.approx(0.0, abs=1e-12)
    assert authors_loss_contras_same_patch(f1, f1, m1, m2) == pytest.approx(EPS, abs=1e-12)
    # opposite features: the largest value, 2
    opp = float(masked_token_agreement(torch.as_tensor(f1), torch.as_tensor(-f1), both))
    assert opp == pytest.approx(2.0, abs=1e-12)
    # patches hidden in one mask only do not count, whatever their features
    f3 = f1.copy()
    f3[~(m1 & m2)] = rng.standard_normal((int((~(m1 & m2)).sum()), c))
    again = float(masked_token_agreement(torch.as_tensor(f1), torch.as_tensor(f3), both))
    assert again == pytest.approx(0.0, abs=1e-12)
    # no patch hidden in both masks: the released code divides 0 by 0 (NaN); the project returns
    # the constant 1 (no gradient), a difference only in this degenerate case
    none = np.zeros((b, g), dtype=bool)
    with np.errstate(invalid="ignore"):
        assert np.isnan(authors_loss_contras_same_patch(f1, f2, none, none))
    zero = torch.zeros(b, g, dtype=torch.float64)
    assert float(masked_token_agreement(torch.as_tensor(f1), torch.as_tensor(f2), zero)) == 1.0


def test_a_cmae_step_uses_the_two_masks_decoder_features_at_the_same_patch(monkeypatch):
    """``contrast_weight=0 token_weight=0.5`` (docs/methods/cmae.md: the setting closest to
    Point-CMAE): the step's loss is the reconstruction plus ``token_weight`` times the
    (same-patch) released term on the two masks' decoder features, mask 1 paired with mask 2 of
    the same image."""
    torch.manual_seed(0)
    enc = Encoder(build_backbone("vit_tiny_p2", 1, 16, width=0.25), [0.5], [0.25])
    ctx = methods.Context(
        model=ModelConfig(proj_hidden=32, proj_dim=16), n_samples=8, extra={"batch_size": 8}
    )
    tw = 0.5
    m = methods.build(
        "cmae",
        enc,
        {"decoder_dim": 16, "decoder_depth": 1, "contrast_weight": 0.0, "token_weight": tw},
        ctx,
    )
    seen: dict[str, Any] = {}
    real = m.masked_pass

    def spy(x):
        out = real(x)
        seen["out"] = out
        return out

    monkeypatch.setattr(m, "masked_pass", spy)
    x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    loss, logs = m([x, x], methods.Batch(x, torch.arange(8)))
    rec, mask, _, dec = seen["out"]
    hidden = mask.bool().numpy()
    m1, m2 = hidden[:8], hidden[8:]
    assert (m1 & m2).any() and (m1 != m2).any()  # independent masks, some patches hidden twice
    d = dec.detach().double().numpy()
    ref_token = authors_loss_contras_same_patch(d[:8], d[8:], m1, m2)
    assert logs["token_agreement"] == pytest.approx(ref_token, abs=1e-6)
    assert float(loss.detach()) == pytest.approx(float(rec.detach()) + tw * ref_token, abs=1e-6)
    # the other pairing (an image's mask 1 against another image's mask 2) is another value
    shuffled = authors_loss_contras_same_patch(d[:8], np.roll(d[8:], 1, axis=0), m1, m2)
    assert abs(shuffled - ref_token) > 1e-3
