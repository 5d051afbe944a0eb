"""Series runs pick their own defaults where the user set nothing, and svm sits beside
kNN/linear."""

import importlib.util

import pytest
import torch
import yaml

from selfsup.cli import main
from selfsup.data import load_source
from selfsup.eval.svm import choose_c, fit_svm, svm_accuracy
from selfsup.modalities import modality_of
from selfsup.modalities.base import fill_unset
from selfsup.resolve import resolve_config


def test_defaults_fill_only_what_the_user_left_unset(ts_folder):
    train = load_source(str(ts_folder)).train
    mod = modality_of(train)
    plain = fill_unset(resolve_config(data=str(ts_folder)), mod.config_defaults(None, train))
    assert plain.train.batch_size == 12 and plain.optim.lr == 1e-3 and plain.train.epochs == 150
    assert plain.eval.protocols == ["knn", "linear", "svm"] and plain.eval.knn_k == 5
    mine = resolve_config(
        data=str(ts_folder), epochs=3, lr=0.01, overrides=["eval.protocols=[knn]"]
    )
    mine = fill_unset(mine, mod.config_defaults(None, train))
    assert mine.train.epochs == 3 and mine.optim.lr == 0.01 and mine.eval.protocols == ["knn"]
    assert mine.train.batch_size == 12  # unset: the series default
    assert fill_unset(mine, {}) is mine


def test_image_defaults_only_size_the_batch_of_a_small_set():
    """The series defaults never reach images; images choose only a batch with about 20 steps an
    epoch on a small set (digits: 64) and keep the configured one on a large set."""
    import numpy as np

    from selfsup.data.base import ImageData

    cfg = resolve_config(data="digits")
    digits = load_source("digits").train
    assert modality_of(digits).config_defaults(cfg, digits) == {"train": {"batch_size": 64}}
    big = ImageData(np.zeros((50_000, 8, 8, 1), np.uint8), None, None, "big")
    assert fill_unset(cfg, modality_of(big).config_defaults(cfg, big)) is cfg
    mine = resolve_config(data="digits", batch_size=256)
    assert fill_unset(mine, modality_of(digits).config_defaults(mine, digits)) is mine


@pytest.mark.skipif(
    importlib.util.find_spec("sktime") is None, reason="the timeseries extra is not installed"
)
def test_train_on_a_ucr_set_prints_the_usual_table(capsys, tmp_path):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--data",
            "ucr:ItalyPowerDemand",
            "--epochs",
            "1",
            "--out",
            str(out),
            "--set",
            "train.progress=none",
            "--set",
            "eval.report=false",
            "--set",
            "model.width=0.125",
            "--set",
            "eval.diagnostics=false",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and "svm_top1" in text and "raw input" in text and "random init" in text
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert (
        cfg["train"]["batch_size"] == 16
        and cfg["optim"]["lr"] == 1e-3
        and "svm" in cfg["eval"]["protocols"]
    )
    import selfsup

    assert selfsup.load_encoder(out).meta["backbone"] == "dilated"


def test_svm_follows_the_authors_choice_of_c():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(120) % 3
    f = torch.randn(120, 4, generator=g) + 2 * torch.nn.functional.one_hot(y, 4).float()
    assert choose_c(f[:30].double().numpy(), y[:30].numpy()) == float(
        "inf"
    )  # < 50 samples: hard margin
    c = choose_c(f[:90].double().numpy(), y[:90].numpy())
    assert c in {1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000, 10000, float("inf")}
    acc = svm_accuracy(f[:90], y[:90], f[90:], y[90:])["svm_top1"]
    assert 0.8 <= acc <= 1.0


def test_above_max_samples_the_svm_is_the_one_fitted_on_the_searched_subset():
    """The authors' ``fit_svm`` (yuezhihan/ts2vec ``tasks/_eval_protocols.py``) returns the grid
    search's ``best_estimator_``, fitted on the stratified subset of ``MAX_SAMPLES`` (seed 0): no
    refit on the whole training set (here 60 of 100 stand for 10,000 of more)."""
    g = torch.Generator().manual_seed(0)
    y = (torch.arange(100) % 2).numpy()
    x = (torch.randn(100, 3, generator=g).double() + torch.from_numpy(y)[:, None]).numpy()
    clf = fit_svm(x, y, max_samples=60)
    assert clf.shape_fit_[0] == 60 and clf.C in {1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000, 1e4}
    assert fit_svm(x, y).shape_fit_[0] == 100  # under the cap: all of them
    assert fit_svm(x[:40], y[:40]).C == float("inf")  # under 50 samples: the hard margin


def test_the_ts2vec_recipe_loads():
    from pathlib import Path

    cfg = resolve_config(Path(__file__).resolve().parents[2] / "configs" / "ts2vec-ucr.yaml")
    assert cfg.method == "ts2vec" and cfg.train.batch_size == 8 and cfg.params["temporal_unit"] == 0
