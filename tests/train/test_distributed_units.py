"""Single-process pieces of the distributed path: keyed view randomness, slices, SyncBatchNorm
conversion."""

from __future__ import annotations

import torch
from torch import nn

from selfsup.train import distributed as ddp


def test_view_seed_is_a_function_of_its_key():
    assert ddp.view_seed(0, 5) == ddp.view_seed(0, 5)
    keys = {ddp.view_seed(s, t, r) for s in range(3) for t in range(50) for r in (-1, 0, 1)}
    assert len(keys) == 3 * 50 * 3


def test_keyed_rng_repeats_and_restores_the_global_stream():
    cpu = torch.device("cpu")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    with ddp.keyed_rng(ddp.view_seed(0, 7), cpu):
        a = torch.rand(4)
    with ddp.keyed_rng(ddp.view_seed(0, 7), cpu):
        b = torch.rand(4)
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), before)


def test_single_process_defaults():
    assert ddp.world() == (0, 1) and ddp.is_main() and ddp.slice_of(16) == (0, 16)
    assert ddp.broadcast_object("x") == "x"
    t = torch.ones(2)
    assert ddp.reduce_sum(t) is t


def test_cpu_sync_batchnorm_keeps_parameters_and_state_keys():
    m = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.Flatten(), nn.BatchNorm1d(36))
    )
    params = [id(p) for p in m.parameters()]
    keys = list(m.state_dict())
    c = ddp.convert_sync_batchnorm(m, torch.device("cpu"))
    assert isinstance(c[1], ddp.CPUSyncBatchNorm) and isinstance(c[2][1], ddp.CPUSyncBatchNorm)
    assert [id(p) for p in c.parameters()] == params and list(c.state_dict()) == keys
    x = torch.randn(8, 1, 5, 5)
    ref = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    ref.load_state_dict({k: v for k, v in c.state_dict().items() if k.startswith(("0.", "1."))})
    torch.testing.assert_close(c[:2](x), ref(x))  # one process: plain BatchNorm
