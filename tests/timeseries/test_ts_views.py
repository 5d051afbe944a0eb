"""Series views: shape and dtype kept, reproducible under a seed, NaN (padding, missing)
preserved."""

import pytest
import torch

from selfsup.views.timeseries import (
    SERIES_PRESETS,
    SeriesViews,
    SeriesViewSpec,
    channel_dropout,
    magnitude_warp,
    permute_segments,
    time_warp,
    valid_lengths,
    window_slice,
)

ALL = SeriesViewSpec(
    slice=0.8,
    time_warp=0.3,
    permute=5,
    magnitude_warp=0.2,
    scale=0.1,
    jitter=0.05,
    channel_dropout=0.3,
)


def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 20, generator=g)
    x[1, :, 12:] = float("nan")  # a shorter series
    x[2, 1, 4] = float("nan")  # a missing value
    return x


def same(a, b):
    return torch.equal(torch.nan_to_num(a, nan=123.0), torch.nan_to_num(b, nan=123.0))


@pytest.mark.parametrize("name", [*SERIES_PRESETS, "all"])
def test_views_keep_shape_dtype_padding_and_are_seeded(name):
    spec = ALL if name == "all" else SERIES_PRESETS[name]
    views = SeriesViews(spec, [1.0, 2.0, 0.5], n_views=3, mean=[0.0, 1.0, -1.0])
    x = batch()
    torch.manual_seed(7)
    a = views(x)
    torch.manual_seed(7)
    b = views(x)
    torch.manual_seed(8)
    c = views(x)
    assert len(a) == 3 and all(v.shape == x.shape and v.dtype == torch.float32 for v in a)
    assert all(same(u, v) for u, v in zip(a, b, strict=True))
    if name not in ("none",):
        assert not same(a[0], c[0]) and not same(a[0], a[1])
    for v in a:
        assert torch.isnan(v[1, :, 12:]).all()  # the padded tail stays padding
        assert not torch.isnan(v[1, :, :12]).all(dim=0).any()  # and nothing new is padded
        assert torch.equal(valid_lengths(v), valid_lengths(x))


OPS = {
    "slice": lambda x, n: window_slice(x, n, 0.7),
    "time_warp": lambda x, n: time_warp(x, n, 0.4),
    "permute": lambda x, n: permute_segments(x, n, 4),
    "magnitude_warp": lambda x, n: magnitude_warp(x, 0.3),
    "channel_dropout": lambda x, n: channel_dropout(x, 0.5, torch.zeros(1, 3, 1)),
}


@pytest.mark.parametrize("op", OPS)
def test_each_op_keeps_shape_dtype_and_padding(op):
    x = batch()
    torch.manual_seed(0)
    y = OPS[op](x, valid_lengths(x))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isnan(y[1, :, 12:]).all() and torch.isfinite(y[0]).all()


def test_segment_permutation_only_reorders_the_valid_steps():
    x = torch.arange(20.0).view(1, 1, 20).repeat(4, 1, 1)
    x[0, :, 15:] = float("nan")
    torch.manual_seed(1)
    y = permute_segments(x, valid_lengths(x), 5)
    assert torch.equal(y[0, 0, :15].sort().values, torch.arange(15.0))
    assert torch.isnan(y[0, 0, 15:]).all()
    assert any(not torch.equal(y[i], x[i]) for i in range(4))


def test_window_slice_of_one_is_the_identity_and_channel_dropout_keeps_a_channel():
    x = batch()
    assert same(window_slice(x, valid_lengths(x), 1.0), x)
    torch.manual_seed(0)
    y = channel_dropout(torch.randn(64, 3, 5), 0.99, torch.full((1, 3, 1), 9.0))
    kept = (y != 9.0).all(dim=2).sum(dim=1)
    assert (kept >= 1).all()
