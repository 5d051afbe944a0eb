"""Encoders written by an earlier version still load and give the same features.

``tests/fixtures/encoders/*-7142eaa.safetensors`` were trained (one epoch, tiny widths) by commit
7142eaa, before the modality seam, the typed method needs and the encoder checksum; the features
they gave then for four recorded inputs are in ``expected-7142eaa.npz``. A change to the encoder
format, a backbone's parameter names or an input normalisation that breaks old files fails here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import selfsup

FIXTURES = Path(__file__).parent.parent / "fixtures" / "encoders"


@pytest.mark.parametrize("kind", ["image", "series"])
def test_an_encoder_of_an_earlier_version_loads_and_embeds_the_same(kind):
    enc = selfsup.load_encoder(FIXTURES / f"{kind}-7142eaa.safetensors")
    expected = np.load(FIXTURES / "expected-7142eaa.npz")
    x = torch.from_numpy(expected[f"{kind}_x"])
    if kind == "image":  # the recorded input: uint8 (N, H, W) grey images as floats in [0, 1]
        x = x[:, None].float() / 255.0
    with torch.no_grad():
        f = enc(x)
    np.testing.assert_allclose(f.numpy(), expected[f"{kind}_f"], rtol=1e-5, atol=1e-6)
    assert "checksum" not in enc.meta  # files without a checksum keep loading
