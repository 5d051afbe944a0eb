"""Few-label splits, fine-tuning, the training-time diagnostics monitor, and the tracking
loggers."""

import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from selfsup.errors import ConfigError
from selfsup.eval import diagnostics as dg
from selfsup.eval.fewshot import few_label_indices, finetune


def test_few_label_split_is_class_balanced_and_reproducible():
    y = np.repeat(np.arange(10), [100, 120, 90, 100, 110, 100, 95, 105, 100, 80])
    for frac, per in ((0.01, 1), (0.1, 10)):  # of 1000 labels in 10 classes
        idx = few_label_indices(y, frac, seed=0)
        counts = np.bincount(y[idx], minlength=10)
        assert (
            counts == np.minimum(per, np.bincount(y))
        ).all()  # same count per class (capped by size)
        assert len(np.unique(idx)) == len(idx)
        assert (few_label_indices(y, frac, seed=0) == idx).all()  # fixed seed: same subset
    assert not (few_label_indices(y, 0.01, seed=1) == few_label_indices(y, 0.01, seed=0)).all()
    tiny = np.repeat(np.arange(3), 16)
    assert np.bincount(tiny[few_label_indices(tiny, 0.01)]).tolist() == [
        1,
        1,
        1,
    ]  # at least one each
    with pytest.raises(ValueError):
        few_label_indices(y, 0.0)


def test_finetune_leaves_encoder_untouched(tiny_images):
    from selfsup.models import build_backbone
    from selfsup.models.encoder import Encoder

    x, y = tiny_images
    torch.manual_seed(0)
    enc = Encoder(build_backbone("convnet_small", 1, 8, True, 1.0), [0.3], [0.3])
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    idx = few_label_indices(y, 0.25, seed=0)
    r1 = finetune(enc, x[idx], y[idx], x, y, 8, steps=20, batch_size=8, lr=1e-2)
    r2 = finetune(enc, x[idx], y[idx], x, y, 8, steps=20, batch_size=8, lr=1e-2)
    assert r1 == r2 and 0 <= r1["top1"] <= r1["top5"] <= 1
    assert r1["top1"] > 0.5  # the stripes are easy
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())


class _ToyMethod(nn.Module):
    """An encoder, a square linear predictor and a per-sample temperature buffer."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 6))
        self.predictor = nn.Linear(6, 6)
        self.register_buffer("tau", torch.linspace(0.05, 0.5, 48))

    def forward(self, v):
        return self.predictor(self.encoder(v))

    def embed(self, views):
        return [self.encoder(v) for v in views]


def test_monitor_reports_all_diagnostics(tiny_images):
    from selfsup.views import ImageViews, resolve_spec

    x, _ = tiny_images
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    views = ImageViews(resolve_spec("digits", 1, 8, size=8)[1], 1)
    m = _ToyMethod()
    mon = dg.Monitor(m, views, xt[:16], seed=0)
    m(torch.rand(5, 1, 8, 8))  # a training forward: the predictor's input is captured
    rng_before = torch.random.get_rng_state()
    a = mon(m)
    assert torch.equal(
        rng_before, torch.random.get_rng_state()
    )  # the global generator is untouched
    assert a == mon(m)  # fixed batch and views: the same numbers
    for k in (
        "alignment",
        "uniformity",
        "rankme",
        "std_mean",
        "pos_sim",
        "neg_sim",
        "directpred_align",
        "tau_mean",
        "tau_min",
        "tau_max",
    ):
        assert np.isfinite(a["diag_" + k])
    assert a["diag_tau_min"] == pytest.approx(0.05) and a["diag_tau_max"] == pytest.approx(0.5)
    full = mon.full(m)
    assert sum(full["pos_hist"]["counts"]) == 16 and sum(full["neg_hist"]["counts"]) == 16 * 15
    assert len(full["spectrum"]) == 6 and "tau_hist" in full
    assert m.training  # the monitor restores the mode


def test_logger_config_and_missing_package(tmp_path, monkeypatch):
    from selfsup.config import validate
    from selfsup.train.loggers import build_loggers

    assert validate({"train": {"logger": "tensorboard,mlflow"}}).train.logger == [
        "tensorboard",
        "mlflow",
    ]
    with pytest.raises(ConfigError, match="train.logger"):
        validate({"train": {"logger": "wandb"}})
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.entities", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(ConfigError, match=r"pip install selfsup\[tensorboard\]"):
        build_loggers(["tensorboard"], tmp_path)
    with pytest.raises(ConfigError, match=r"pip install selfsup\[mlflow\]"):
        build_loggers(["mlflow"], tmp_path)


def test_loggers_with_fake_backends(tmp_path, monkeypatch):
    """The loggers' calls, against stand-ins for SummaryWriter and MlflowClient (no heavy
    installs)."""
    from selfsup.train.loggers import build_loggers, close_all

    calls = []

    class Writer:
        def __init__(self, log_dir):
            calls.append(("tb_dir", log_dir))

        def add_scalar(self, k, v, step):
            calls.append(("scalar", k, v, step))

        def add_text(self, *a):
            calls.append(("text",))

        def flush(self):
            pass

        def close(self):
            calls.append(("tb_close",))

    class Client:
        def __init__(self, tracking_uri):
            calls.append(("uri", tracking_uri))

        def get_experiment_by_name(self, name):
            return None

        def create_experiment(self, name):
            return "1"

        def create_run(self, exp_id, run_name):
            return types.SimpleNamespace(info=types.SimpleNamespace(run_id="r"))

        def log_batch(self, run_id, metrics=(), params=()):
            calls.append(("batch", [(m.key, m.value, m.step) for m in metrics], len(params)))

        def set_terminated(self, run_id):
            calls.append(("ml_close",))

    tb = types.ModuleType("torch.utils.tensorboard")
    tb.SummaryWriter = Writer
    ent = types.ModuleType("mlflow.entities")
    ent.Metric = lambda key, value, timestamp, step: types.SimpleNamespace(
        key=key, value=value, step=step
    )
    ent.Param = lambda key, value: (key, value)
    trk = types.ModuleType("mlflow.tracking")
    trk.MlflowClient = Client
    for name, mod in (
        ("torch.utils.tensorboard", tb),
        ("mlflow", types.ModuleType("mlflow")),
        ("mlflow.entities", ent),
        ("mlflow.tracking", trk),
    ):
        monkeypatch.setitem(sys.modules, name, mod)
    lgs = build_loggers(["tensorboard", "mlflow"], tmp_path, {"train": {"epochs": 2}})
    for lg in lgs:
        lg.log({"step": 10, "loss": 1.5, "lr": 0.1, "note": "x", "bad": float("nan")})
    close_all(lgs)
    assert ("scalar", "loss", 1.5, 10) in calls and ("scalar", "lr", 0.1, 10) in calls
    assert not any(c[0] == "scalar" and c[1] in ("note", "bad") for c in calls)
    assert ("batch", [("loss", 1.5, 10), ("lr", 0.1, 10)], 0) in calls
    assert ("batch", [], 1) in calls  # the config as params
    assert ("tb_close",) in calls and ("ml_close",) in calls
    assert any(
        c[0] == "uri" and c[1].startswith("file:") and c[1].endswith("mlruns") for c in calls
    )


def test_mlflow_real_if_installed(tmp_path):
    pytest.importorskip("mlflow")
    from selfsup.train.loggers import MLflowLogger

    lg = MLflowLogger(tmp_path, {"a": 1})
    lg.log({"step": 1, "loss": 0.5})
    lg.close()
    assert (tmp_path / "mlruns").is_dir()


def test_tensorboard_real_if_installed(tmp_path):
    pytest.importorskip("tensorboard")
    from selfsup.train.loggers import TensorBoardLogger

    lg = TensorBoardLogger(tmp_path)
    lg.log({"step": 1, "loss": 0.5})
    lg.close()
    assert any((tmp_path / "tensorboard").iterdir())
