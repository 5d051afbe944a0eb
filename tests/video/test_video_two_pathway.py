"""two_pathway: an appearance pathway that sees frames one by one beside a motion pathway that sees
the clip (issue 22: a single (2+1)-D network trained by CVRL dropped the digit for the motion)."""

import torch

from selfsup.models.video import FrameEncoder, R2Plus1D, TwoPathway, build_video_backbone


def _net() -> TwoPathway:
    torch.manual_seed(0)
    net = build_video_backbone("two_pathway", 1, 32, 0.25).eval()
    assert isinstance(net, TwoPathway)
    return net


def test_two_pathway_concatenates_an_appearance_and_a_motion_pathway():
    net = _net()
    assert isinstance(net.appearance, FrameEncoder)
    assert isinstance(net.motion, R2Plus1D) and net.motion.downsample == "max"
    x = torch.rand(3, 1, 8, 32, 32)
    with torch.no_grad():
        y = net(x)
        a, m = net.appearance(x[:, :, ::4]), net.motion(x)
    assert y.shape == (3, net.out_dim) and net.out_dim == a.shape[1] + m.shape[1]
    assert torch.equal(y, torch.cat([a, m], dim=1))


def test_appearance_half_sees_every_fourth_frame_in_any_order_and_the_motion_half_all():
    """The appearance pathway reads frames 0 and 4 of 8 (SlowFast's ratio 4), each on its own and
    averaged: swapping them leaves it unchanged, and so does changing frame 1, which only the motion
    pathway sees; changing frame 4 moves both halves."""
    net = _net()
    assert net.frame_stride == 4
    x = torch.rand(2, 1, 8, 32, 32)
    swapped = x.clone()
    swapped[:, :, [0, 4]] = x[:, :, [4, 0]]
    other = x.clone()
    other[:, :, 1] = torch.rand(2, 1, 32, 32)
    seen = x.clone()
    seen[:, :, 4] = torch.rand(2, 1, 32, 32)
    k = net.appearance.out_dim
    with torch.no_grad():
        y, y_swap, y_other, y_seen = (net(v) for v in (x, swapped, other, seen))
    assert torch.allclose(y[:, :k], y_swap[:, :k], atol=1e-5)
    assert not torch.allclose(y[:, k:], y_swap[:, k:], atol=1e-3)
    assert torch.equal(y[:, :k], y_other[:, :k]) and not torch.equal(y[:, k:], y_other[:, k:])
    assert not torch.allclose(y[:, :k], y_seen[:, :k], atol=1e-3)
    assert torch.allclose(net.appearance(x[:, :, ::4]), y[:, :k])


def test_two_pathway_trains_a_step_through_both_pathways():
    net = _net().train()
    x = torch.rand(4, 1, 4, 16, 16)
    net(x).pow(2).mean().backward()
    for part in (net.appearance, net.motion):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(float(g.abs().sum()) > 0 for g in grads if g is not None)
