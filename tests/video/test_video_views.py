"""CVRL's views: one spatial transform for every frame of a clip, the interval sampler's
distribution, frame-rate jitter inside the video, the evaluation clip, and tube masking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfsup.views.video import (
    VideoViews,
    VideoViewsConfig,
    clip_indices,
    consistent_augment,
    eval_clip,
    interval_probs,
    sample_gaps,
    tube_mask,
)


@pytest.mark.parametrize("channels", [1, 3])
def test_every_frame_of_a_clip_gets_the_same_crop_flip_and_colour(channels):
    torch.manual_seed(0)
    still = torch.rand(6, channels, 1, 16, 16).expand(-1, -1, 5, -1, -1).contiguous()
    spec = VideoViewsConfig(crop_scale=(0.2, 0.6), flip=0.5, jitter_p=1.0, grayscale_p=0.5)
    v = consistent_augment(still, spec, 12)
    assert v.shape == (6, channels, 5, 12, 12)
    # a clip of identical frames stays a clip of identical frames: one transform a clip
    torch.testing.assert_close(v, v[:, :, :1].expand_as(v), atol=1e-6, rtol=0)
    # ...and clips do get different transforms (the test would pass for the identity otherwise)
    w = consistent_augment(still, spec, 12)
    assert (v - w).abs().amax() > 0.05


def test_a_moving_pattern_keeps_its_motion_through_the_views():
    """The shift between consecutive frames survives: a random crop per frame would break it."""
    torch.manual_seed(1)
    base = torch.rand(1, 1, 1, 16, 40)
    frames = torch.cat([base[..., i : i + 16] for i in range(6)], dim=2)  # slides left 1 px/frame
    spec = VideoViewsConfig(crop_scale=(1.0, 1.0), flip=0.0, jitter_p=0.0, grayscale_p=0.0)
    v = consistent_augment(frames.expand(4, -1, -1, -1, -1), spec, 16)
    torch.testing.assert_close(v[:, :, 1:, :, :-1], v[:, :, :-1, :, 1:], atol=1e-5, rtol=0)


def test_the_interval_sampler_draws_gaps_with_linearly_decreasing_probability():
    torch.manual_seed(0)
    d = 9
    n = 200_000
    gaps = sample_gaps(torch.full((n,), d))
    freq = torch.bincount(gaps, minlength=d + 1).double() / n
    p = interval_probs(d)
    assert gaps.min() >= 0 and gaps.max() <= d
    torch.testing.assert_close(freq, p, atol=4e-3, rtol=0)  # ~4 standard errors
    assert torch.allclose(p, (d + 1 - torch.arange(d + 1.0, dtype=torch.float64)) / 55)
    # per-sample bounds: a zero room gives a zero gap
    mixed = sample_gaps(torch.tensor([0, 1, 5] * 1000))
    assert (mixed[0::3] == 0).all() and mixed[1::3].max() <= 1 and mixed[2::3].max() <= 5


def test_two_clips_of_a_video_fit_its_frames_with_the_strides_drawn():
    torch.manual_seed(0)
    a, b = clip_indices(5000, 16, 6, (1, 3), "cvrl", "cpu")
    for idx in (a, b):
        assert idx.min() >= 0 and idx.max() <= 15
        steps = idx.diff(dim=1)
        assert (steps == steps[:, :1]).all() and set(steps[:, 0].tolist()) == {1, 2, 3}
    # the larger gaps are rarer: gap 0 more often than the largest possible ones
    gap = (a[:, 0] - b[:, 0]).abs()
    assert (gap == 0).sum() > (gap >= 8).sum()
    same_a, same_b = clip_indices(10, 16, 6, (1, 1), "same", "cpu")
    assert torch.equal(same_a, same_b)
    # a clip longer than the video is cut to the video
    short, _ = clip_indices(3, 4, 8, (1, 2), "cvrl", "cpu")
    assert short.shape == (3, 4) and torch.equal(short, torch.arange(4).expand(3, -1))


def test_views_and_the_evaluation_clip_have_the_encoder_layout():
    x = torch.randint(0, 255, (3, 16, 20, 20, 3), dtype=torch.uint8)
    views = VideoViews(VideoViewsConfig(clip_frames=8), 16, n_views=3)(x)
    assert len(views) == 3 and all(v.shape == (3, 3, 8, 16, 16) for v in views)
    assert all(0 <= float(v.min()) and float(v.max()) <= 1 for v in views)
    e = eval_clip(x, 4, 20)
    assert e.shape == (3, 3, 4, 20, 20)
    torch.testing.assert_close(e[:, :, 0], x[:, 0].permute(0, 3, 1, 2).float() / 255)
    torch.testing.assert_close(e[:, :, -1], x[:, -1].permute(0, 3, 1, 2).float() / 255)


@pytest.mark.parametrize("ratio", [0.5, 0.75, 0.9])
def test_tube_masking_masks_the_ratio_at_the_same_places_in_every_frame(ratio):
    torch.manual_seed(0)
    grid = (4, 5, 6)
    keep_ids, mask, restore = tube_mask(7, grid, ratio)
    hw = 30
    keep = int(hw * (1 - ratio))
    assert mask.shape == (7, 4 * hw) and keep_ids.shape == (7, 4 * keep)
    assert float(mask.mean()) == pytest.approx(1 - keep / hw)
    m = mask.view(7, 4, hw)
    assert torch.equal(m, m[:, :1].expand_as(m))  # a tube: the same positions at every time step
    # ids_keep lists exactly the visible tokens, and ids_restore inverts the shuffle
    visible = torch.zeros_like(mask).scatter(1, keep_ids, 1.0)
    assert torch.equal(visible, 1 - mask)
    assert np.array_equal(restore.argsort(1)[:, : keep_ids.shape[1]].numpy(), keep_ids.numpy())
