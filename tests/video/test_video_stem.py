"""r2plus1d's stem: stride 2 by default (issue 22: stride 1 did not keep the digit)."""

import torch

from selfsup.models.video import R2Plus1D, build_video_backbone


def test_default_stem_halves_space_and_small_stem_keeps_it():
    x = torch.rand(2, 1, 4, 32, 32)
    default = R2Plus1D(1, width=0.25).eval()
    small = R2Plus1D(1, width=0.25, small_stem=True).eval()
    with torch.no_grad():
        assert default.stem(x).shape[-2:] == (16, 16)
        assert small.stem(x).shape[-2:] == (32, 32)
        assert small(x).shape == default(x).shape == (2, default.out_dim)
    # the same parameters either way: a stride is not recorded by the weights' shapes
    assert [p.shape for p in small.parameters()] == [p.shape for p in default.parameters()]


def test_built_backbone_keeps_the_stride_2_stem_for_small_frames():
    net = build_video_backbone("r2plus1d", 1, 32, 0.25)
    assert isinstance(net, R2Plus1D) and net.stem_stride == 2
