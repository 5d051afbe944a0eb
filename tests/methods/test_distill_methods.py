"""Clustering and self-distillation methods (issue 20): a few steps lower the loss without NaN on
tiny data (with multi-crop), the prototypes freeze and the queue fills as the papers say, the
teacher and centre follow the student, bad settings are refused in one line when the method is
built, and the collapse monitor reads the teacher's entropies."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from test_ssl_methods import run_steps

import selfsup.methods as M
from selfsup.config import ModelConfig
from selfsup.errors import ConfigError
from selfsup.models import build_backbone
from selfsup.models.encoder import Encoder
from selfsup.train.monitor import CollapseMonitor
from selfsup.views import PRESETS, MultiCropViews, seeded

N = 16
SMALL = {
    "swav": {"n_prototypes": 8, "queue_size": 32, "queue_start_epochs": 1},
    "dino": {"out_dim": 64},
    "ibot": {"out_dim": 64},
    "deepclusterv2": {"n_prototypes": 4},
    "obow": {"num_words": 32},
}
BACKBONE = {"ibot": "vit_tiny"}


def build(name, loss=None, backbone=None, n=N):
    torch.manual_seed(0)
    enc = Encoder(
        build_backbone(backbone or BACKBONE.get(name, "convnet_small"), 1, 8), [0.5], [0.25]
    )
    ctx = M.Context(
        model=ModelConfig(proj_hidden=32, proj_dim=16),
        n_samples=n,
        extra={"batch_size": N, "local_crops": 2},
    )
    return M.build(name, enc, SMALL.get(name, {}) if loss is None else loss, ctx)


def data():
    x = torch.from_numpy((np.random.default_rng(0).random((N, 1, 8, 8)) * 255).astype("uint8"))
    maker = MultiCropViews(PRESETS["digits"], 1, 2, 2, local_size=4)
    with seeded(0):
        return x, maker(x), maker


def run(m, views, x, steps=10, lr=1e-3):
    losses = run_steps(m, views, x, steps, lr)
    _, logs = m(views, M.Batch(x, torch.arange(len(x))))
    assert all(np.isfinite(v) for v in logs.values()), logs
    return losses


@pytest.mark.parametrize(
    "name, backbone",
    [
        ("swav", None),
        ("dino", None),
        ("ibot", None),
        ("deepclusterv2", None),
        ("obow", None),
        ("obow", "vit_tiny"),
    ],
)
def test_a_few_steps_lower_the_loss_without_nan(name, backbone):
    m = build(name, backbone=backbone)
    assert M.REGISTRY[name].paper
    x, views, maker = data()
    if name == "deepclusterv2":
        with seeded(1):
            m.prepare(x, maker)
    losses = run(m, views, x)
    assert all(np.isfinite(losses)), losses
    assert min(losses[-3:]) < losses[0], losses
    sig = m.collapse_signals()
    assert 0 <= sig["teacher_entropy"] <= sig["teacher_entropy_max"] + 1e-6


def test_swav_freezes_prototypes_then_fills_and_uses_its_queue():
    m = build(
        "swav",
        {
            "n_prototypes": 8,
            "queue_size": 32,
            "queue_start_epochs": 1,
            "freeze_prototypes_epochs": 2,
        },
    )
    x, views, _ = data()
    w0 = m.prototypes.weight.detach().clone()
    run(m, views, x, steps=2)  # one step per epoch: frozen for two steps (renormalised only)
    assert torch.allclose(m.prototypes.weight, w0, atol=1e-6)
    assert int(m.queued) == N and not m.queue_ready()  # filled from epoch 1, 16 of 32
    run(m, views, x, steps=2)
    assert not torch.allclose(m.prototypes.weight, w0, atol=1e-4)
    assert m.queue_ready() and torch.allclose(m.prototypes.weight.norm(dim=1), torch.ones(8))


def test_swav_default_queue_follows_the_batch():
    assert build("swav", {"n_prototypes": 8}).queue_list[0].size == N  # batch < 256: capped at n
    m = build("swav", {"n_prototypes": 8, "queue_size": 0})
    assert not m.queue_list


def test_dino_teacher_centre_and_last_layer_freeze():
    m = build(
        "dino",
        {
            "out_dim": 64,
            "freeze_last_layer_epochs": 1,
            "momentum": 0.5,
            "warmup_teacher_temp": 0.02,
            "teacher_temp": 0.06,
            "warmup_teacher_temp_epochs": 4,
        },
    )
    assert any(isinstance(x, torch.nn.BatchNorm1d) for x in m.head.mlp)  # a ConvNet: BN in head
    assert not any(isinstance(x, torch.nn.BatchNorm1d) for x in build("ibot").head.mlp)  # a ViT
    x, views, _ = data()
    v0 = m.head.last_layer.v.detach().clone()
    t0 = m.teacher_head.mlp[0].weight.detach().clone()
    assert m.teacher_temp() == pytest.approx(0.02)
    run(m, views, x, steps=1)
    assert torch.equal(m.head.last_layer.v, v0)  # frozen during the first epoch
    assert not torch.equal(m.teacher_head.mlp[0].weight, t0)  # the EMA moved the teacher
    assert float(m.centre.centre.abs().sum()) > 0
    assert m.teacher_temp() == pytest.approx(0.03)
    run(m, views, x, steps=4)
    assert not torch.equal(m.head.last_layer.v, v0) and m.teacher_temp() == pytest.approx(0.06)


def test_deepclusterv2_reclusters_each_epoch_into_its_memory():
    m = build("deepclusterv2")
    x, views, maker = data()
    with seeded(1):
        m.prepare(x, maker)
    assert bool((m.assignments >= 0).all()) and m.centroids.shape == (3, 4, 16)
    c0 = m.centroids.clone()
    run(m, views, x, steps=1)  # one step = one epoch: new centroids from the updated memory
    assert not torch.equal(m.centroids, c0)
    assert torch.allclose(m.centroids.norm(dim=2), torch.ones(3, 4), atol=1e-5)


@pytest.mark.parametrize(
    "name, loss, backbone, words",
    [
        ("swav", {"n_prototypes": 100}, None, "prototypes"),
        ("deepclusterv2", {"n_prototypes": 100}, None, "prototypes"),
        ("dino", {"teacher_temp": 0.2}, None, "sharpen"),
        ("ibot", {"teacher_patch_temp": 0.2}, None, "sharpen"),
        ("ibot", {}, "convnet_small", "patch tokens"),
        ("cluster_distill", {}, None, "paired"),
    ],
)
def test_bad_settings_are_one_line_errors_at_build(name, loss, backbone, words):
    with pytest.raises(ConfigError) as e:
        build(name, loss, backbone=backbone)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_obow_refuses_an_encoder_without_local_features():
    from selfsup.models.tabular import TableMLP

    enc = Encoder(TableMLP([0, 0, 0]), torch.zeros(1, 3), torch.ones(1, 3))
    with pytest.raises(ConfigError) as e:
        M.build("obow", enc, {"num_words": 8}, M.Context(n_samples=N))
    assert "local features" in str(e.value)


class _Teacher(torch.nn.Module):
    def __init__(self, signals, hint=True):
        super().__init__()
        self.encoder = torch.nn.Linear(4, 16)
        self.signals = signals
        if hint:
            self.collapse_hint = lambda kind: f"try {kind}"

    def collapse_signals(self):
        return self.signals


@pytest.mark.parametrize(
    "signals, line",
    [
        ({"teacher_entropy": 2.3, "teacher_batch_entropy": 2.3}, "nearly uniform"),
        ({"teacher_entropy": 0.0, "teacher_batch_entropy": 0.01}, "takes the whole batch"),
        ({"teacher_entropy": 1.0, "teacher_batch_entropy": 2.0}, None),
    ],
)
def test_the_monitor_warns_once_when_the_teacher_collapses(signals, line):
    m, out = _Teacher({**signals, "teacher_entropy_max": np.log(10)}), io.StringIO()
    mon = CollapseMonitor(m, every=10, stream=out)
    for step in range(1, 41):
        m.encoder(torch.randn(32, 4))
        rec = mon([], step)
        if step % 10 == 0:
            assert rec["teacher_entropy"] == signals["teacher_entropy"]
    lines = out.getvalue().splitlines()
    if line is None:
        assert lines == []
    else:
        assert len(lines) == 1 and line in lines[0] and "at step 20" in lines[0]
        kind = "uniform" if "uniform" in line else "dominant"
        assert lines[0].endswith(f"try {kind}")
    mon.close()


def test_cluster_distill_on_paired_series_lowers_the_loss(tmp_path):
    """Two modalities of the same samples (channels 0-1 and 2-4 of a series): tower a's cluster
    codes are tower b's targets and the other way round; the prototypes are shared."""
    from selfsup.parts import assemble, load_data
    from selfsup.resolve import resolve_config

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 16)
    t = np.arange(24)
    x = np.stack([np.sin(t * (0.3 + 0.4 * k) + rng.uniform(0, 6)) for k in y for _ in range(5)])
    x = (x + 0.1 * rng.standard_normal(x.shape)).reshape(48, 5, 24).astype(np.float32)
    np.savez(tmp_path / "s.npz", x=x, y=y)
    for direction in ("both", "a_to_b"):
        cfg = resolve_config(
            {
                "method": "cluster_distill",
                "data": {"source": str(tmp_path / "s.npz"), "pair_channels": "0,1:2,3,4"},
                "train": {"epochs": 2, "batch_size": 16, "progress": "none", "device": "cpu"},
                "model": {"width": 0.25, "proj_hidden": 32, "proj_dim": 16},
                "loss": {"n_prototypes": 6, "direction": direction, "queue_size": 0},
                "views": {"n_views": 4},
                "out": str(tmp_path / "run"),
            }
        )
        splits, _, _ = load_data(cfg)
        torch.manual_seed(0)
        p = assemble(cfg, splits.train, torch.device("cpu"))
        idx = torch.arange(16)
        views = [v.detach() for v in p.views(p.x[idx])]
        assert len(views) == 4  # [a1, b1, a2, b2]
        assert p.method.assigned(views) == ([0, 1, 2, 3] if direction == "both" else [0, 2])
        losses = run(p.method, views, p.x[idx], steps=12, lr=3e-3)
        assert all(np.isfinite(losses)) and min(losses[-3:]) < losses[0], losses
