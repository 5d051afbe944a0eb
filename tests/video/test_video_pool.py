"""r2plus1d_pool, the default video encoder's motion pathway: space halved by max-pooling, not
strided convolutions (issue 22: the strided network learned no digit on moving digits, even from
single frames)."""

import torch

from selfsup.modalities import get as get_modality
from selfsup.models.video import R2Plus1D, TwoPathway, build_video_backbone


def test_default_video_backbone_has_the_max_pool_network_as_its_motion_pathway():
    mod = get_modality("video")
    assert mod.default_backbone({}) == "two_pathway"
    meta = {"in_channels": 1, "image_size": 32}
    net = mod.build_backbone("auto", meta, type("M", (), {"width": 0.25})())
    assert isinstance(net, TwoPathway)
    assert isinstance(net.motion, R2Plus1D) and net.motion.downsample == "max"


def test_old_strided_network_stays_reachable_by_name():
    net = build_video_backbone("r2plus1d", 1, 32, 0.25)
    assert isinstance(net, R2Plus1D) and net.downsample == "stride"


def test_max_pool_network_has_the_strided_ones_shapes_and_parameters():
    x = torch.rand(2, 1, 8, 32, 32)
    pool = build_video_backbone("r2plus1d_pool", 1, 32, 0.25).eval()
    stride = build_video_backbone("r2plus1d", 1, 32, 0.25).eval()
    assert [p.shape for p in pool.parameters()] == [p.shape for p in stride.parameters()]
    with torch.no_grad():
        assert pool.stem(x).shape == stride.stem(x).shape  # (2, C, 8, 16, 16) both
        h_pool, h_stride = pool.relu(pool.stem(x)), stride.relu(stride.stem(x))
        for a, b in zip(pool.layers, stride.layers, strict=True):
            h_pool, h_stride = a(h_pool), b(h_stride)
            assert h_pool.shape == h_stride.shape
        assert pool(x).shape == (2, pool.out_dim)


def test_max_pool_downsampling_sees_every_pixel():
    """A lone bright pixel at an odd position: the strided shortcut's 1x1 convolution skips it,
    a max-pool does not."""
    torch.manual_seed(0)
    for downsample, seen in (("stride", False), ("max", True)):
        net = R2Plus1D(1, width=0.25, downsample=downsample).eval()
        block = net.layers[1]  # stage 3: space halved
        h = torch.zeros(1, block.conv1.spatial.in_channels, 4, 8, 8)
        h[..., 3, 3] = 1.0
        with torch.no_grad():
            skip = block.down(block.pool(h))
        assert bool(skip.abs().sum() > 0) is seen


def test_max_pool_network_trains_a_step():
    torch.manual_seed(0)
    net = build_video_backbone("r2plus1d_pool", 3, 16, 0.25)
    x = torch.rand(4, 3, 4, 16, 16)
    net(x).pow(2).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_late_temporal_kernels_leave_the_early_stages_frame_by_frame():
    """r2plus1d_late: before stage 3 each frame is seen on its own (SlowOnly's layout); after it
    the frames are mixed."""
    torch.manual_seed(0)
    net = build_video_backbone("r2plus1d_late", 1, 32, 0.25).eval()
    assert isinstance(net, R2Plus1D) and net.temporal_from == 2 and net.downsample == "max"
    x = torch.rand(1, 1, 8, 32, 32)
    y = x.clone()
    y[:, :, 0] = torch.rand(1, 1, 32, 32)  # change frame 0 only
    with torch.no_grad():
        hx, hy = net.relu(net.stem(x)), net.relu(net.stem(y))
        hx, hy = net.layers[0](hx), net.layers[0](hy)  # stage 2: still frame by frame
        assert torch.equal(hx[:, :, 1:], hy[:, :, 1:]) and not torch.equal(hx, hy)
        hx, hy = net.layers[1](hx), net.layers[1](hy)  # stage 3: temporal kernels
        assert not torch.equal(hx[:, :, 1:], hy[:, :, 1:])
        assert net(x).shape == (1, net.out_dim)


def test_default_r2plus1d_has_temporal_kernels_in_every_stage():
    torch.manual_seed(0)
    net = build_video_backbone("r2plus1d_pool", 1, 32, 0.25).eval()
    x = torch.rand(1, 1, 8, 32, 32)
    y = x.clone()
    y[:, :, 0] = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert not torch.equal(net.stem(x)[:, :, 1], net.stem(y)[:, :, 1])
