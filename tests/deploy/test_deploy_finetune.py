"""selfsup finetune / predict: the few-label protocol's accuracy on digits, bit-identical resume,
every modality, and the error paths."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

import selfsup
from selfsup.eval.fewshot import few_label_eval
from selfsup.modalities import modality_of

QUICK_RUN = [
    "eval.report=false",
    "eval.baselines=false",
    "eval.diagnostics=false",
    "eval.protocols=[knn]",
    "train.precision=fp32",
]


def test_finetune_then_predict_reaches_fewshot_on_digits(runs, tmp_path):
    """The few-label protocol fine-tunes on 10% of digits' labels (130) and scores the test split;
    finetune at 12.5% keeps as many labels for fitting (the rest is its validation part) and must
    reach that accuracy (within 2 points: one early-stopped run against one fixed schedule)."""
    enc = selfsup.load_encoder(runs["image"])
    s = selfsup.data.load_source("digits")
    mod = modality_of(s.train)

    def prepare(b):
        return mod.prepare(b, enc.meta)

    protocol = few_label_eval(
        enc, mod.to_tensor(s.train), s.train.y, mod.to_tensor(s.test), s.test.y, prepare, (0.1,)
    )["fewshot_10pct_top1"]
    r = selfsup.finetune(runs["image"], "digits", tmp_path / "clf", label_fraction=0.125, epochs=50)
    assert r.summary["train_samples"] >= protocol_labels(s.train.y)
    assert r.summary["test_top1"] >= protocol - 0.02, (r.summary["test_top1"], protocol)
    p = selfsup.predict(tmp_path / "clf", "digits", tmp_path / "p.csv")
    test_rows = [i for i, ident in enumerate(p.ids) if str(ident).startswith("test/")]
    pred = p.probabilities[test_rows].argmax(1)
    assert np.isclose((pred == s.test.y).mean(), r.summary["test_top1"])
    with open(tmp_path / "p.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:3] == ["id", "class", "p_0"] and len(header) == 12


def protocol_labels(y) -> int:
    from selfsup.eval.fewshot import few_label_indices

    return len(few_label_indices(y, 0.1, 0))


def _weights(folder):
    clf = selfsup.from_pretrained(folder)
    return {
        **clf.encoder.state_dict(),
        **{f"head.{k}": v for k, v in clf.head.state_dict().items()},
    }


def test_finetune_resume_is_bit_identical(runs, tmp_path):
    opts = dict(label_fraction=0.05, epochs=4, patience=10, batch_size=16)
    selfsup.finetune(runs["image"], "digits", tmp_path / "whole", **opts)

    def stop_after_two(epoch, rec):
        return epoch == 2

    r = selfsup.finetune(
        runs["image"], "digits", tmp_path / "cut", on_epoch_end=stop_after_two, **opts
    )
    assert r.summary == {"stopped": True} and not (tmp_path / "cut" / "config.json").exists()
    selfsup.finetune(None, None, tmp_path / "cut", resume=True)
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("modality", ["table", "timeseries", "graph", "paired"])
def test_finetune_predict_every_modality(runs, sources, modality, tmp_path):
    r = selfsup.finetune(runs[modality], sources[modality], tmp_path / "clf", epochs=2)
    assert r.summary["epochs_run"] == 2
    p = selfsup.predict(tmp_path / "clf", sources[modality], tmp_path / "p.npy")
    assert np.allclose(np.load(tmp_path / "p.npy").sum(1), 1, atol=1e-5)
    assert len(p.labels) == len(p.ids)


def test_finetune_and_predict_cli(runs, tmp_path, cli):
    clf = tmp_path / "clf"
    code, out, err = cli(
        "finetune", str(runs["table"]), "--data", "wine", "--epochs", "3", "--out", str(clf)
    )
    assert code == 0, err
    assert "classifier:" in out and "test top-1" in out
    code, out, err = cli("finetune", "--resume", str(clf), "--epochs", "4")
    assert code == 0, err
    code, out, err = cli("predict", str(clf), "--data", "wine", "--out", str(tmp_path / "p.csv"))
    assert code == 0, err
    assert "178 samples, 3 classes" in out


def _one_line_error(cli, *argv):
    code, _, err = cli(*argv)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_finetune_errors_write_nothing(runs, tmp_path, cli):
    from PIL import Image

    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    digits = selfsup.data.load_source("digits").test
    for i in range(6):
        Image.fromarray(digits.x[i, :, :, 0]).save(unlabelled / f"{i}.png")
    out = tmp_path / "clf"
    err = _one_line_error(
        cli, "finetune", str(runs["image"]), "--data", str(unlabelled), "--out", str(out)
    )
    assert "no labels" in err
    err = _one_line_error(cli, "finetune", str(runs["image"]), "--data", "wine", "--out", str(out))
    assert "table data but the encoder takes image data" in err
    err = _one_line_error(
        cli, "finetune", str(tmp_path / "missing"), "--data", "digits", "--out", str(out)
    )
    assert "does not exist" in err
    err = _one_line_error(cli, "finetune", "--resume", str(tmp_path / "missing"))
    assert "not a fine-tuning folder" in err
    err = _one_line_error(
        cli, "predict", str(runs["image"]), "--data", "digits", "--out", str(tmp_path / "p.csv")
    )
    assert "not a classifier folder" in err
    assert not out.exists() and not (tmp_path / "p.csv").exists()


def test_pair_channels_and_label_column_default_to_the_runs(data_dir, tmp_path):
    """A run trained with --pair-channels (and a CSV run with --label-column) is embedded,
    fine-tuned and applied on its own source without repeating the option."""
    paired = selfsup.train(
        method="clip",
        data=str(data_dir / "series.npz"),
        pair_channels="0:1",
        epochs=1,
        batch_size=16,
        out=str(tmp_path / "paired"),
        overrides=QUICK_RUN,
    )
    e = selfsup.embed(paired.dir, str(data_dir / "series.npz"))
    assert len(e.ids) == 48
    r = selfsup.finetune(paired.dir, str(data_dir / "series.npz"), tmp_path / "clf", epochs=1)
    assert r.classifier.meta["modality"] == "paired"
    assert len(selfsup.predict(tmp_path / "clf", str(data_dir / "series.npz")).ids) == 48

    wine = selfsup.data.load_source("wine").train
    path = tmp_path / "wine.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*wine.columns, "cultivar"])
        for row, lab in zip(wine.x, wine.y):
            w.writerow([*(repr(float(v)) for v in row), f"c{lab}"])
    table = selfsup.train(
        data=str(path),
        label_column="cultivar",
        epochs=1,
        batch_size=32,
        out=str(tmp_path / "table"),
        overrides=QUICK_RUN,
    )
    assert selfsup.embed(table.dir, str(path)).ids == list(range(len(wine)))
