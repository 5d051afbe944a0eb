"""Series encoders: padding never changes a representation; missing values are masked."""

import pytest
import torch

from selfsup.models.timeseries import SERIES_BACKBONES


def pad(x, extra):
    return torch.cat([x, torch.full((x.shape[0], x.shape[1], extra), float("nan"))], dim=2)


@pytest.mark.parametrize("name", SERIES_BACKBONES)
def test_padding_does_not_change_a_representation(name):
    torch.manual_seed(0)
    enc = SERIES_BACKBONES[name](2, 0.25).eval()
    x = torch.randn(3, 2, 19)
    x[1, 0, 7] = float("nan")  # a missing value inside
    short = torch.randn(1, 2, 11)
    mixed = torch.cat([x, pad(short, 8)])  # a batch of unequal lengths
    with torch.no_grad():
        a, b, c = enc(x), enc(pad(x, 13)), enc(mixed)
        alone = enc(short)
        h, valid = enc.forward_steps(pad(x, 5))
    assert a.shape == (3, enc.out_dim) and torch.isfinite(a).all()
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(a, c[:3], atol=1e-5)
    assert torch.allclose(alone, c[3:], atol=1e-5)
    assert h.shape == (3, enc.out_dim, 24) and valid.shape == (3, 1, 24)
    assert (h[..., 19:] == 0).all()


@pytest.mark.parametrize("name", SERIES_BACKBONES)
def test_training_mode_is_finite_and_has_gradients(name):
    torch.manual_seed(0)
    enc = SERIES_BACKBONES[name](3, 0.25).train()
    x = pad(torch.randn(4, 3, 16), 4)
    x[0, :, 10:] = float("nan")
    x[2, 1, 3] = float("nan")
    enc(x).sum().backward()
    grads = [p.grad for p in enc.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_masked_batchnorm_statistics_ignore_padding():
    """In training, BatchNorm statistics come from valid steps: padding a batch changes nothing."""
    torch.manual_seed(0)
    enc = SERIES_BACKBONES["resnet1d"](1, 0.25).train()
    x = torch.randn(4, 1, 12)
    assert torch.allclose(enc(x), enc(pad(x, 6)), atol=1e-5)


def test_the_timestamp_mask_is_on_in_training_only():
    from selfsup.models.timeseries import DilatedConvEncoder

    torch.manual_seed(0)
    enc = DilatedConvEncoder(1, width=0.25, dropout=0.0)
    x = torch.randn(2, 1, 16)
    enc.train()
    a, b = enc(x), enc(x)
    enc.eval()
    assert not torch.allclose(a, b) and torch.equal(enc(x), enc(x))
