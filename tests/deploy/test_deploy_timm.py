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
