"""The ts2vec method: overlapping crops, a few steps lower the loss, no NaN, state round-trips;
every existing method trains on series unchanged."""

import json

import numpy as np
import pytest
import torch

import selfsup
from selfsup.methods.ts2vec import crop


def sines(path, n=24, c=2, t=32, ragged=True):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    steps = np.arange(t)
    x = np.stack(
        [
            [
                np.sin(steps * (0.3 + 0.4 * k) + rng.uniform(0, 6)) + 0.1 * rng.standard_normal(t)
                for _ in range(c)
            ]
            for k in y
        ]
    ).astype(np.float32)
    if ragged:
        x[::4, :, t - 7 :] = np.nan
    np.savez(path, x=x, y=y, x_test=x[::2], y_test=y[::2])
    return path


def test_crop_takes_one_window_per_row():
    x = torch.arange(20.0).view(2, 1, 10)
    out = crop(x, torch.tensor([1, 4]), 3)
    assert out.tolist() == [[[1.0, 2.0, 3.0]], [[14.0, 15.0, 16.0]]]


def build(tmp_path, **loss):
    from selfsup.parts import assemble
    from selfsup.resolve import resolve_config

    data = sines(tmp_path / "s.npz")
    cfg = resolve_config(
        {
            "method": "ts2vec",
            "data": {"source": str(data)},
            "loss": loss,
            "model": {"width": 0.25},
            "train": {"batch_size": 8},
        }
    )
    from selfsup.data import load_source

    parts = assemble(cfg, load_source(str(data)).train, torch.device("cpu"))
    return parts


def test_a_few_steps_lower_the_loss_without_nan(tmp_path):
    from selfsup.methods import Batch

    parts = build(tmp_path)
    assert parts.preset == "none"  # TS2Vec's augmentations are its crops and timestamp mask
    method, views, x = parts.method, parts.views, parts.x
    opt = torch.optim.AdamW(method.parameters(), lr=1e-3)
    torch.manual_seed(0)
    losses = []
    for _ in range(3):  # the same crops and masks every pass: a fair before/after comparison
        epoch = []
        for i in range(0, 24, 8):
            xb = x[i : i + 8]
            with torch.random.fork_rng():
                torch.manual_seed(i)
                loss, logs = method(views(xb), Batch(xb, torch.arange(i, i + 8)))
            assert torch.isfinite(loss) and logs["crop_len"] >= 2
            opt.zero_grad()
            loss.backward()
            opt.step()
            epoch.append(loss.detach().item())
        losses.append(sum(epoch) / len(epoch))
    assert losses[-1] < losses[0]


def test_the_method_needs_per_step_outputs(tmp_path):
    from selfsup.errors import ConfigError
    from selfsup.resolve import resolve_config

    with pytest.raises(ConfigError, match="per-step outputs"):
        selfsup.train(
            resolve_config(
                method="ts2vec",
                data="digits",
                backbone="convnet_small",
                epochs=1,
                out=str(tmp_path / "r"),
            )
        )
    assert not (tmp_path / "r").exists()


def test_a_ts2vec_run_resumes_bit_identically(tmp_path, resume_matches_full):
    """Crops and timestamp masks come from torch's generator, which checkpoints carry."""
    data = sines(tmp_path / "s.npz")
    cfg = {
        "method": "ts2vec",
        "data": {"source": str(data)},
        "model": {"width": 0.125},
        "train": {"epochs": 3, "batch_size": 8, "progress": "none"},
        "eval": {"report": False, "baselines": False, "diagnostics": False},
    }
    full, resumed = resume_matches_full(cfg)
    assert "svm_top1" in full.summary["eval"] and resumed.summary["eval"] == full.summary["eval"]


@pytest.mark.parametrize(
    "method", ["simclr", "byol", "vicreg", "barlow", "moco", "simsiam", "nnclr"]
)
def test_existing_methods_train_on_series_unchanged(tmp_path, method):
    data = sines(tmp_path / "s.npz")
    run = selfsup.train(
        method=method,
        data=str(data),
        epochs=1,
        batch_size=8,
        out=str(tmp_path / "r"),
        overrides=[
            "train.progress=none",
            "model.width=0.125",
            "model.proj_hidden=32",
            "model.proj_dim=16",
            "eval.report=false",
            "eval.baselines=false",
            "eval.diagnostics=false",
            "eval.protocols=[svm]",
        ],
    )
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["skipped_steps"] == 0 and 0 <= s["eval"]["svm_top1"] <= 1 and run.summary == s


def test_swa_keeps_the_equal_weight_average_of_every_iterate():
    """As the authors' AveragedModel (yuezhihan/ts2vec ``ts2vec.py``: updated once with the initial
    weights, then after every step): the evaluated encoder is the mean of the initial weights and
    the weights after each step."""
    from selfsup import methods as M
    from selfsup.config import ModelConfig
    from selfsup.models.encoder import Encoder
    from selfsup.models.timeseries import build_series_backbone

    torch.manual_seed(0)
    enc = Encoder(build_series_backbone("fcn", 2, 0.125), torch.zeros(1, 2, 1), torch.ones(1, 2, 1))
    m = M.build("ts2vec", enc, {}, M.Context(model=ModelConfig(), n_samples=8))
    assert m.encoder is not m.online and not any(p.requires_grad for p in m.encoder.parameters())
    seen = [[p.detach().clone() for p in m.online.parameters()]]
    for step in range(4):
        with torch.no_grad():
            for p in m.online.parameters():
                p.add_(torch.randn_like(p))
        seen.append([p.detach().clone() for p in m.online.parameters()])
        m.after_step(step, 4)
    for i, p in enumerate(m.encoder.parameters()):
        assert torch.allclose(p, torch.stack([s[i] for s in seen]).mean(0), atol=1e-6)
