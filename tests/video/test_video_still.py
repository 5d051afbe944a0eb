"""views.video.still_p: a view made a still clip (one of its frames repeated), off by default."""

import pytest
import torch
from pydantic import ValidationError

from selfsup.views.video import VideoViews, VideoViewsConfig, still_clips


def _moving(n: int = 4, t: int = 8, size: int = 16) -> torch.Tensor:
    x = torch.zeros(n, t, size, size, 1, dtype=torch.uint8)
    for f in range(t):
        x[:, f, 4:8, f : f + 4] = 255  # a square moving right
    return x


def test_still_views_are_constant_over_time():
    torch.manual_seed(0)
    spec = VideoViewsConfig(clip_frames=4, still_p=1.0, crop_scale=(1.0, 1.0), jitter_p=0.0)
    for v in VideoViews(spec, 16)(_moving()):
        assert torch.equal(v, v[:, :, :1].expand_as(v))


def test_default_views_keep_the_motion():
    torch.manual_seed(0)
    spec = VideoViewsConfig(clip_frames=4, crop_scale=(1.0, 1.0), jitter_p=0.0)
    assert spec.still_p == 0.0
    for v in VideoViews(spec, 16)(_moving()):
        assert not torch.equal(v[:, :, 0], v[:, :, -1])


def test_still_clips_picks_one_of_its_own_frames():
    torch.manual_seed(0)
    v = torch.rand(8, 1, 5, 6, 6)
    out = still_clips(v, 1.0)
    for i in range(len(v)):
        assert any(torch.equal(out[i, :, 0], v[i, :, f]) for f in range(5))
    assert torch.equal(still_clips(v, 0.0), v)


def test_still_p_out_of_range_is_refused():
    with pytest.raises(ValidationError):
        VideoViewsConfig(still_p=1.5)
