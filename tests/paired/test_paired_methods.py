"""Paired methods on tiny data: the loss falls without NaN, state round-trips, refusals at build."""

from __future__ import annotations

import pytest
import torch

from selfsup.errors import ConfigError
from selfsup.methods import Batch
from selfsup.models.two_tower import TwoTower
from selfsup.parts import assemble, load_data
from selfsup.resolve import resolve_config


def _parts(paired_config, method, **extra):
    cfg = resolve_config(paired_config(method, **extra))
    splits, _, _ = load_data(cfg)
    return cfg, assemble(cfg, splits.train, torch.device("cpu"))


@pytest.mark.parametrize("method", ["clip", "isogclr_pair", "xhcl"])
def test_a_few_steps_lower_the_loss(paired_config, method):
    torch.manual_seed(0)
    cfg, p = _parts(
        paired_config,
        method,
        loss={"tau_init": 0.05, "tau_max": 0.2} if method == "isogclr_pair" else {},
    )
    assert isinstance(p.method.encoder, TwoTower)
    opt = torch.optim.Adam(p.method.parameters(), lr=3e-3)
    idx = torch.arange(16)
    batch = Batch(p.x[idx], idx)
    views = [v.detach() for v in p.views(batch.x)]
    assert len(views) == 2 and views[0].shape[1] == 2 and views[1].shape[1] == 3
    losses = []
    for step in range(12):
        loss, logs = p.method(views, batch)
        assert torch.isfinite(loss) and all(torch.isfinite(torch.tensor(v)) for v in logs.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        p.method.after_step(step, 12)
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_clip_clamps_its_logit_scale_after_the_step(paired_config):
    _, p = _parts(paired_config, "clip")
    with torch.no_grad():
        p.method.clip.logit_scale.fill_(9.0)
    p.method.after_step(0, 1)
    assert float(p.method.clip.logit_scale.detach()) == pytest.approx(
        torch.log(torch.tensor(100.0)).item()
    )


def test_isogclr_pair_state_round_trips(paired_config):
    _, p = _parts(paired_config, "isogclr_pair")
    idx = torch.arange(16)
    batch = Batch(p.x[idx], idx)
    loss, _ = p.method(p.views(batch.x), batch)
    p.method.after_step(0, 1)
    sd = {k: v.clone() for k, v in p.method.state_dict().items()}
    assert (sd["isog.state_a.u"][:16] > 0).all() and (sd["isog.state_b.u"][:16] > 0).all()
    _, q = _parts(paired_config, "isogclr_pair")
    q.method.load_state_dict(sd)
    for k, v in q.method.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_single_modality_method_on_paired_data_is_refused(paired_config):
    with pytest.raises(
        ConfigError, match="'simclr' trains one encoder, but the data is paired"
    ) as e:
        _parts(paired_config, "simclr")
    assert "\n" not in str(e.value)


def test_paired_method_on_single_modality_data_is_refused(paired_config, series5):
    cfg = resolve_config(paired_config("xhcl", data={"source": series5, "pair_channels": None}))
    splits, _, _ = load_data(cfg)
    with pytest.raises(
        ConfigError, match="'xhcl' trains 2 towers on paired data, but the data has one modality"
    ):
        assemble(cfg, splits.train, torch.device("cpu"))


@pytest.mark.parametrize("method", ["clip", "isogclr_pair", "xhcl"])
def test_recipe_loads(method):
    from pathlib import Path

    cfg = resolve_config(
        Path(__file__).resolve().parents[2] / "configs" / f"{method}-basicmotions.yaml"
    )
    assert cfg.method == method and cfg.data.pair_channels == "0,1,2:3,4,5"
