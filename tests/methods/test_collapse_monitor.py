"""The collapse monitor: its statistics, its single warning, and its records in metrics.jsonl."""

import io
import json
import math

import pytest
import torch
from torch import nn

import selfsup
from selfsup.train.monitor import CollapseMonitor, collapse_stats


def test_stats_of_collapsed_and_spread_features():
    c = collapse_stats(torch.ones(64, 32) + 1e-9 * torch.randn(64, 32))
    assert c["emb_std"] < 1e-6 and c["emb_rank"] == pytest.approx(1.0, abs=1e-3)
    r = collapse_stats(torch.randn(512, 32, generator=torch.Generator().manual_seed(0)))
    assert r["emb_std_ideal"] == pytest.approx(1 / math.sqrt(32))
    assert r["emb_std"] == pytest.approx(1 / math.sqrt(32), rel=0.05) and r["emb_rank"] > 28
    e = collapse_stats(torch.eye(8).repeat(4, 1))  # 8 equal singular values: rank 8
    assert e["emb_rank"] == pytest.approx(8.0, rel=1e-4)


class _Const(nn.Module):
    def __init__(self, collapsed):
        super().__init__()
        self.encoder = nn.Linear(4, 16)
        self.collapsed = collapsed

    def step(self, x):
        self.encoder(torch.zeros_like(x) if self.collapsed else x)


@pytest.mark.parametrize("collapsed", [True, False])
def test_warns_once_after_two_bad_checks_using_the_steps_own_features(collapsed):
    m, out = _Const(collapsed), io.StringIO()
    mon = CollapseMonitor(m, every=10, stream=out)
    recs = []
    for step in range(1, 51):
        m.step(torch.randn(32, 4))
        recs.append(mon([], step))
    assert [bool(r) for r in recs].count(True) == 5 and "emb_rank" in recs[9]
    lines = out.getvalue().splitlines()
    assert len(lines) == (1 if collapsed else 0)
    if collapsed:
        assert lines[0].startswith("warning: the representation is collapsing at step 20")
    mon.close()


def test_a_run_logs_collapse_statistics(tiny_config):
    run = selfsup.train(
        tiny_config(
            train={"epochs": 4}, eval={"protocols": ["knn"], "diagnostics": False, "report": False}
        )
    )
    recs = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    at10 = [r for r in recs if r.get("step") == 10 and "loss" in r]
    assert at10 and at10[0]["emb_rank"] > 1 and 0 < at10[0]["emb_std"] <= 1


def test_the_monitor_hook_is_gone_after_training(tiny_config):
    """Evaluation deep-copies the encoder (fine-tuning): no training hook may follow it there."""
    seen = []
    selfsup.train(
        tiny_config(train={"epochs": 1}, eval={"protocols": ["knn"], "diagnostics": False}),
        on_epoch_end=lambda epoch, m: seen.append(m),
    )
    assert seen and len(seen[0].encoder._forward_hooks) == 0
