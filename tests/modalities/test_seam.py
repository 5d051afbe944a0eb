"""The modality seam: one data path for every kind of data; methods never ask which one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import selfsup
from selfsup import modalities
from selfsup.data.base import ImageData, SeriesData
from selfsup.errors import DataError


def series_npz(path, n=48, c=2, t=24, ragged=False, seed=0):
    """Three classes of noisy sines at different frequencies; with ``ragged``, a third of the
    series are shorter (NaN-padded), as unequal-length archives are."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3)
    steps = np.arange(t)
    x = (
        np.stack(
            [
                np.sin(steps * (0.3 + 0.4 * k) + rng.uniform(0, 6)) + 0.1 * rng.standard_normal(t)
                for k in y
                for _ in range(c)
            ]
        )
        .reshape(n, c, t)
        .astype(np.float32)
    )
    if ragged:
        for i in range(0, n, 3):
            x[i, :, t - 5 :] = np.nan
    np.savez(path, x=x, y=y, x_test=x[::2], y_test=y[::2])
    return path


def test_every_container_has_a_registered_modality():
    assert modalities.modality_of(ImageData(np.zeros((2, 4, 4, 1), np.uint8))).name == "image"
    assert modalities.modality_of(SeriesData(np.zeros((2, 1, 5), np.float32))).name == "timeseries"
    assert set(modalities.REGISTRY) >= {"image", "timeseries"}


def test_subset_slices_per_sample_fields_only():
    x = np.random.default_rng(0).standard_normal((4, 2, 6)).astype(np.float32)
    x[1, :, 4:] = np.nan
    d = SeriesData(x, np.arange(4))
    s = d.subset(np.array([1, 3]))
    assert isinstance(s, SeriesData) and s.lengths.tolist() == [4, 6] and s.y.tolist() == [1, 3]


@pytest.mark.parametrize(
    "bad, needle",
    [
        (np.zeros((3, 4), np.float32), "(N, C, T)"),
        (np.full((2, 1, 4), np.inf, np.float32), "infinite"),
        (np.full((2, 1, 4), np.nan, np.float32), "all-NaN"),
    ],
)
def test_bad_series_are_refused_in_one_line(bad, needle):
    with pytest.raises(DataError) as e:
        SeriesData(bad)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_series_run_goes_through_the_same_path(tmp_path):
    """A series .npz trains with an existing method unchanged, is evaluated beside its baselines,
    and its saved encoder loads and gives the run's features."""
    data = series_npz(tmp_path / "s.npz", ragged=True)
    run = selfsup.train(
        method="simclr",
        data=str(data),
        epochs=2,
        batch_size=16,
        out=str(tmp_path / "run"),
        overrides=[
            "train.progress=none",
            "model.proj_hidden=32",
            "model.proj_dim=16",
            "model.width=0.125",
            "eval.knn_k=5",
            "eval.report=false",
        ],
    )
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(s["eval"]) >= {"knn_top1", "linear_top1"}
    assert set(s["baselines"]) == {"random_init", "raw_input"}
    enc = selfsup.load_encoder(tmp_path / "run")
    assert enc.meta["modality"] == "timeseries" and enc.meta["backbone"] == "dilated"
    x = torch.from_numpy(np.load(data)["x"][:4])
    f = enc(x)
    assert f.shape == (4, enc.out_dim) and torch.isfinite(f).all()
    again = selfsup.evaluate(tmp_path / "run", protocols=["knn"], write=False)
    assert again["eval"]["knn_top1"] == pytest.approx(run.summary["eval"]["knn_top1"])


def test_padding_does_not_change_a_series_representation():
    from selfsup.models.timeseries import FCN

    torch.manual_seed(0)
    enc = FCN(2, width=0.125).eval()
    x = torch.randn(3, 2, 17)
    padded = torch.cat([x, torch.full((3, 2, 9), float("nan"))], dim=2)
    assert torch.allclose(enc(x), enc(padded), atol=1e-6)


def test_image_evaluation_refuses_series_data(tmp_path, tiny_npz):
    run = tmp_path / "img"
    selfsup.train(
        data=str(tiny_npz),
        epochs=1,
        batch_size=16,
        backbone="convnet_small",
        out=str(run),
        overrides=["train.progress=none", "eval.report=false", "eval.baselines=false"],
    )
    with pytest.raises(DataError, match="timeseries data but the encoder takes image"):
        selfsup.evaluate(run, data=str(series_npz(tmp_path / "s.npz")), write=False)


def test_every_modality_declares_the_fields_of_its_encoder_meta():
    from selfsup.modalities.base import EncoderMeta, meta_problem

    shared = set(EncoderMeta.__annotations__)
    for name, mod in modalities.REGISTRY.items():
        own = set(mod.meta_type.__annotations__)
        assert mod.meta_type is EncoderMeta or own > shared, name
        assert "Field required" in (meta_problem(mod.meta_type, {}) or ""), name


def test_an_encoder_file_with_a_wrong_meta_field_is_refused_naming_the_field(tmp_path):
    from safetensors.torch import load_file, save_file

    from selfsup.errors import CheckpointError

    src = "tests/fixtures/encoders/image-7142eaa.safetensors"
    from safetensors import safe_open

    with safe_open(src, framework="pt") as f:
        meta = json.loads(f.metadata()["selfsup"])
    selfsup.load_encoder(src)  # the file as written loads
    for field, value in [("image_size", "big"), ("mean", None), ("backbone", 3)]:
        bad = tmp_path / f"bad-{field}.safetensors"
        save_file(
            load_file(src), str(bad), metadata={"selfsup": json.dumps({**meta, field: value})}
        )
        with pytest.raises(CheckpointError, match=f"field '{field}'") as err:
            selfsup.load_encoder(bad)
        assert "\n" not in str(err.value)
    missing = {k: v for k, v in meta.items() if k != "image_size"}
    bad = tmp_path / "missing.safetensors"
    save_file(load_file(src), str(bad), metadata={"selfsup": json.dumps(missing)})
    with pytest.raises(CheckpointError, match="field 'image_size': Field required"):
        selfsup.load_encoder(bad)
