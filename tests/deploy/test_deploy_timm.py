"""--backbone timm:NAME: a one-line error naming the extra when timm is missing; a tiny model when
it is installed (it needs a torchvision matching torch, which this machine's CPU torch lacks)."""

from __future__ import annotations

import importlib.util

import pytest

import selfsup
from selfsup.errors import ConfigError

HAS_TIMM = importlib.util.find_spec("timm") is not None


@pytest.mark.skipif(HAS_TIMM, reason="timm is installed: the missing-package error cannot be shown")
def test_missing_timm_is_one_line(tmp_path, cli):
    with pytest.raises(ConfigError, match=r"pip install \"selfsup\[timm\]\""):
        selfsup.train(backbone="timm:resnet18", epochs=1, out=str(tmp_path / "run"))
    code, _, err = cli("train", "--backbone", "timm:resnet18", "--out", str(tmp_path / "run"))
    assert code == 2 and err.count("\n") == 1 and "selfsup[timm]" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not HAS_TIMM, reason="timm is not installed (pip install selfsup[timm])")
def test_timm_backbone_trains(tmp_path):  # pragma: no cover - needs timm
    run = selfsup.train(
        backbone="timm:resnet10t",
        epochs=1,
        out=str(tmp_path / "run"),
        overrides=["data.limit=64", "eval.report=false", "eval.baselines=false"],
    )
    enc = selfsup.load_encoder(run.dir)
    assert enc.meta["backbone"] == "timm:resnet10t"


def test_timm_path_with_a_stand_in_module(monkeypatch, tmp_path):
    """The whole path (config check, build, train, save, load_encoder, model folder) with a stand-in
    for timm's create_model: what selfsup asks of timm, without timm."""
    import sys
    import types

    import torch
    from torch import nn

    made = []

    def create_model(name, pretrained=False, num_classes=0, in_chans=3, **kw):
        made.append((name, pretrained, num_classes, in_chans))
        net = nn.Sequential(
            nn.Conv2d(in_chans, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        net.num_features = 8
        return net

    monkeypatch.setitem(sys.modules, "timm", types.SimpleNamespace(create_model=create_model))
    run = selfsup.train(
        backbone="timm:tiny_stand_in",
        epochs=1,
        batch_size=64,
        out=str(tmp_path / "run"),
        overrides=["data.limit=128", "eval.report=false", "eval.baselines=false"],
    )
    assert made[0] == ("tiny_stand_in", False, 0, 1)
    enc = selfsup.load_encoder(run.dir)
    assert enc.meta["backbone"] == "timm:tiny_stand_in" and enc.out_dim == 8
    back = selfsup.from_pretrained(selfsup.save_pretrained(enc, tmp_path / "model"))
    x = torch.rand(2, 1, 16, 16)
    assert torch.equal(enc(x), back(x))
