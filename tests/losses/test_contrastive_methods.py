"""Each method of the contrastive family: a few steps on tiny data lower the loss, no NaN."""

import math

import pytest
import torch
from torch import nn

from selfsup import methods
from selfsup.config import ModelConfig
from selfsup.errors import ConfigError

NEW = ["dcl", "dclw", "hcl", "debiased", "isogclr", "groco", "supcon"]


class _Enc(nn.Module):
    out_dim = 16

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(12, 16))

    def forward(self, x):
        return self.net(x)


def _data(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 12, generator=g) * 0.3 + torch.eye(12)[y * 4] * 2
    views = [x + 0.3 * torch.randn(n, 12, generator=g) for _ in range(2)]
    return views, methods.Batch(x, torch.arange(n), y)


@pytest.mark.parametrize("name", NEW)
def test_few_steps_lower_the_loss(name):
    torch.manual_seed(0)
    ctx = methods.Context(model=ModelConfig(proj_hidden=16, proj_dim=8), n_samples=24, n_views=2)
    loss_cfg = {"k": 4} if name == "groco" else {}
    method = methods.build(name, _Enc(), loss_cfg, ctx)
    assert method.paper and method.name == name
    assert method.uses_labels == (name == "supcon")
    opt = torch.optim.Adam(method.parameters(), lr=1e-2)
    views, batch = _data()
    losses = []
    for step in range(8):
        loss, logs = method(views, batch)
        assert math.isfinite(float(loss.detach())) and all(math.isfinite(v) for v in logs.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.after_step(step, 8)  # as the training loop does after a step it took
        losses.append(float(loss.detach()))
    method.eval()  # the last value in eval mode (BatchNorm, no iSogCLR state update) vs the first
    with torch.no_grad():
        final = float(method(views, batch)[0])
    if name == "isogclr":  # its surrogate moves with its state: compare the paper's objective
        z1, z2 = method.project(views)
        fresh = methods.build(name, _Enc(), {}, ctx)
        assert float(method.isog.objective(z1, z2, batch.index)) < float(
            fresh.isog.objective(*fresh.eval().project(views), batch.index)
        )
        assert not torch.all(method.isog.state.tau[:24] == 0.1)
    else:
        assert final < losses[0], (name, losses, final)


def test_isogclr_state_is_not_written_by_a_skipped_step():
    """The loop skips a non-finite step without calling after_step: the state stays as it was."""
    torch.manual_seed(0)
    ctx = methods.Context(model=ModelConfig(proj_hidden=16, proj_dim=8), n_samples=24, n_views=2)
    method = methods.build("isogclr", _Enc(), {}, ctx)
    views, batch = _data()
    method(views, batch)
    method.after_step(0, 3)
    before = {k: v.clone() for k, v in method.isog.state_dict().items()}
    bad = [v.clone() for v in views]
    bad[0][0, 0] = float("nan")
    loss, _ = method(bad, batch)
    assert not math.isfinite(float(loss.detach()))  # the loop skips this step: no after_step
    for k, v in method.isog.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    method(views, batch)  # the next good step commits its own update, never the skipped one
    method.after_step(1, 3)
    assert all(torch.isfinite(v).all() for v in method.isog.state_dict().values())


def test_hyperparameters_validated_from_config():
    with pytest.raises(ConfigError, match="params.tau_plus"):
        methods.validate_params("hcl", {"tau_plus": 1.5})
    assert methods.validate_params("dclw", {"sigma": 2.0}).sigma == 2.0
    assert methods.validate_params("supcon", {"weight": 0.5, "tiled": True}).tiled is True
    with pytest.raises(ConfigError, match="2 views"):
        methods.build(
            "isogclr",
            _Enc(),
            {},
            methods.Context(model=ModelConfig(proj_hidden=8, proj_dim=4), n_samples=10, n_views=3),
        )


def test_supcon_trains_end_to_end(tiny_config):
    import selfsup

    run = selfsup.train(
        tiny_config(
            method="supcon",
            train={"epochs": 1},
            loss={"weight": 0.5},
            eval={"protocols": ["knn"], "diagnostics": False, "report": False},
        )
    )
    assert run.summary["steps"] == 3 and run.summary["skipped_steps"] == 0
