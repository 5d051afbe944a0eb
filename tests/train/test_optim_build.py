"""The optimisers selfsup builds step parameters that have no gradient at first (SwAV's and DINO's
frozen prototypes and last layer in the first iterations), then do."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from selfsup.config import OptimConfig
from selfsup.train.optim import build_optimizer


@pytest.mark.parametrize("name", ["sgd", "adamw", "lars", "rmsprop"])
def test_a_parameter_that_gets_its_first_gradient_later(name):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    opt = build_optimizer(model, OptimConfig(name=name, lr=0.1), batch_size=8)
    x = torch.randn(8, 4)
    for step in range(3):
        opt.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        if step == 0:  # frozen in the first step: no gradient, no update
            model[1].weight.grad = None
            before = model[1].weight.detach().clone()
        opt.step()
        if step == 0:
            assert torch.equal(model[1].weight, before)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not torch.equal(model[1].weight, before)  # updated once it had gradients
