"""MSN (issue 20): a few steps on tiny data lower the loss without NaN; the teacher follows the
student on the authors' linear momentum schedule; its state (teacher, prototypes) round-trips
through a state dict; a convolutional encoder, too many prototypes and a single view are refused in
one line when the method is built."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_ssl_methods import run_steps

import selfsup.methods as M
from selfsup.config import ModelConfig
from selfsup.errors import ConfigError
from selfsup.models import build_backbone
from selfsup.models.encoder import Encoder
from selfsup.views import PRESETS, MultiCropViews, seeded

N = 16


def build(loss=None, backbone="vit_tiny", n=N, n_views=2, local_crops=2):
    torch.manual_seed(0)
    enc = Encoder(build_backbone(backbone, 1, 8), [0.5], [0.25])
    ctx = M.Context(
        model=ModelConfig(proj_hidden=32, proj_dim=16),
        n_samples=n,
        n_views=n_views,
        batch_size=N,
        local_crops=local_crops,
    )
    return M.build("msn", enc, {"n_prototypes": 8} if loss is None else loss, ctx)


def data():
    x = torch.from_numpy((np.random.default_rng(0).random((N, 1, 8, 8)) * 255).astype("uint8"))
    with seeded(0):
        return x, MultiCropViews(PRESETS["digits"], 1, 2, 2, local_size=4)(x)


def test_a_few_steps_lower_the_loss_without_nan():
    m = build()
    assert M.REGISTRY["msn"].paper
    x, views = data()
    losses = run_steps(m, views, x, steps=10)
    assert all(np.isfinite(losses)), losses
    assert np.mean(losses[-3:]) < losses[0], losses
    _, logs = m(views, M.Batch(x, torch.arange(N)))
    assert all(np.isfinite(v) for v in logs.values()), logs
    assert set(m.collapse_signals()) >= {"teacher_entropy", "teacher_batch_entropy"}


def test_the_anchor_views_lose_their_patches():
    m = build({"n_prototypes": 8, "mask_ratio": 0.5})
    x, views = data()
    seen = []
    bb = m.encoder.backbone
    original = bb.forward_visible

    def spy(x, ids_keep):
        seen.append(ids_keep.shape)
        return original(x, ids_keep)

    bb.forward_visible = spy
    m(views, M.Batch(x, torch.arange(N)))
    # view 1 (4 x 4 patches of 4 px: half dropped) and the two 4 px local views (1 patch: kept)
    side = views[1].shape[-1] // 4
    assert seen == [(N, side * side // 2), (2 * N, 1)]


def test_the_teacher_follows_on_the_linear_schedule():
    m = build({"n_prototypes": 8, "momentum": 0.9})
    assert m.momentum_at(0, 100) == pytest.approx(0.9)
    assert m.momentum_at(100, 100) == pytest.approx(0.9 + 0.1 / 1.25)
    x, views = data()
    run_steps(m, views, x, steps=2)
    s, t = m.encoder.state_dict(), m.teacher_encoder.state_dict()
    assert any(not torch.equal(s[k], t[k]) for k in s)  # moved, not copied
    assert all(not p.requires_grad for p in m.teacher_encoder.parameters())


def test_state_round_trips_through_a_state_dict():
    m = build()
    x, views = data()
    run_steps(m, views, x, steps=3)
    m2 = build()
    m2.load_state_dict(m.state_dict())
    m.eval(), m2.eval()
    with torch.no_grad():
        a = m.teacher_head(m.teacher_encoder(views[0].float()))
        b = m2.teacher_head(m2.teacher_encoder(views[0].float()))
    assert torch.equal(a, b) and torch.equal(m.prototypes, m2.prototypes)


@pytest.mark.parametrize(
    "loss, backbone, n_views, words",
    [
        ({}, "convnet_small", 2, "patch tokens"),
        ({"n_prototypes": 100}, "vit_tiny", 2, "prototypes"),
        ({}, "vit_tiny", 1, "anchor view"),
    ],
)
def test_bad_settings_are_one_line_errors_at_build(loss, backbone, n_views, words):
    with pytest.raises(ConfigError) as e:
        build(loss, backbone=backbone, n_views=n_views, local_crops=0)
    assert words in str(e.value) and "\n" not in str(e.value)


class _Kill(Exception):
    pass


def _kill_at_2(epoch, method):
    if epoch == 2:
        raise _Kill


def test_kill_and_resume_is_bit_identical(tiny_config, tmp_path):
    """End to end on tiny image data: a run stopped after its first epoch's checkpoint and
    resumed ends bit-identical to an uninterrupted one (teacher and prototypes included)."""
    import selfsup
    from selfsup.train import checkpoint as ckpt

    def cfg(out):
        return tiny_config(
            method="msn",
            loss={"n_prototypes": 8},
            model={"backbone": "auto"},
            views={"local_crops": 2, "local_size": 4},
            out=str(out),
            eval={"protocols": ["knn"], "diagnostics": False, "report": False},
        )

    straight = selfsup.train(cfg(tmp_path / "a"))
    with pytest.raises(_Kill):
        selfsup.train(cfg(tmp_path / "b"), on_epoch_end=_kill_at_2)
    resumed = selfsup.train(resume=tmp_path / "b")
    sa, sb = ckpt.load(ckpt.latest(straight.dir)), ckpt.load(ckpt.latest(resumed.dir))
    assert sa["progress"]["step"] == sb["progress"]["step"] > 0
    assert sa["model"].keys() == sb["model"].keys() and "prototypes" in sa["model"]
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k
    assert np.isfinite(straight.summary["eval"]["knn_top1"])
