"""views.eval_size: train on small views, evaluate and save the encoder at a larger size
(FixRes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import selfsup
from selfsup.errors import ConfigError
from selfsup.modalities import image as image_modality
from selfsup.parts import assemble, load_data

BASE = [
    "train.progress=none",
    "eval.report=false",
    "eval.baselines=false",
    "eval.protocols=[knn]",
    "eval.knn_k=5",
    "model.proj_hidden=16",
    "model.proj_dim=8",
]


def test_training_views_are_small_and_evaluation_is_at_eval_size(tmp_path, tiny_npz, monkeypatch):
    seen = {"train": set(), "eval": set()}
    real_prepare = image_modality.ImageModality.prepare

    def prepare(self, x, meta):
        out = real_prepare(self, x, meta)
        seen["eval"].add(tuple(out.shape[-2:]))
        return out

    monkeypatch.setattr(image_modality.ImageModality, "prepare", prepare)
    run = selfsup.train(
        data=str(tiny_npz),
        epochs=1,
        batch_size=16,
        backbone="convnet_small",
        out=str(tmp_path / "run"),
        overrides=BASE + ["views.size=6", "views.eval_size=8"],
        on_epoch_end=None,
    )
    parts = assemble(run.config, load_data(run.config)[0].train, torch.device("cpu"))
    views = parts.views(torch.zeros(4, 1, 8, 8, dtype=torch.uint8))
    seen["train"] = {tuple(v.shape[-2:]) for v in views}
    assert seen == {"train": {(6, 6)}, "eval": {(8, 8)}}
    enc = selfsup.load_encoder(tmp_path / "run")
    assert enc.image_size == 8 and enc.meta["view_spec"]["size"] == 6
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    again = selfsup.evaluate(tmp_path / "run", protocols=["knn"], write=False)
    assert again["eval"]["knn_top1"] == pytest.approx(summary["eval"]["knn_top1"])


def test_without_eval_size_evaluation_is_at_the_view_size(tmp_path, tiny_npz):
    selfsup.train(
        data=str(tiny_npz),
        epochs=1,
        batch_size=16,
        backbone="convnet_small",
        out=str(tmp_path / "run"),
        overrides=BASE + ["views.size=6"],
    )
    assert selfsup.load_encoder(tmp_path / "run").image_size == 6


def test_eval_size_on_series_is_refused_in_one_line(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "s.npz",
        x=rng.standard_normal((24, 1, 16)).astype(np.float32),
        y=np.arange(24) % 2,
    )
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="views.image.eval_size does not apply to time") as e:
        selfsup.train(
            data=str(tmp_path / "s.npz"),
            epochs=1,
            batch_size=8,
            out=str(out),
            overrides=BASE + ["views.eval_size=8"],
        )
    assert "\n" not in str(e.value) and not out.exists()


def test_a_vit_needs_its_patch_to_divide_the_training_size_too(tmp_path, tiny_npz):
    with pytest.raises(ConfigError, match="patch size 4 does not divide the image size 6x6"):
        selfsup.train(
            data=str(tiny_npz),
            epochs=1,
            batch_size=16,
            backbone="vit_tiny",
            out=str(tmp_path / "run"),
            overrides=BASE + ["views.size=6", "views.eval_size=8"],
        )
