"""ONNX export: parity with PyTorch below 1e-4 for every exportable default encoder, dynamic
batch, and a one-line refusal for the encoders that do not export (graph, paired)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import selfsup
from selfsup.errors import ConfigError

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")


@pytest.mark.parametrize("modality", ["image", "table", "timeseries"])
def test_onnx_parity(runs, modality, tmp_path):
    from selfsup.exporting import sample_batch

    out = tmp_path / "m.onnx"
    r = selfsup.export(runs[modality], out, "onnx")
    assert r.max_abs_diff < 1e-4
    enc = selfsup.load_encoder(runs[modality])
    x = sample_batch(runs[modality], enc.meta, 5).float()  # another batch size than the export's
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        ref = enc(x).numpy()
    assert np.abs(got - ref).max() < 1e-4


@pytest.mark.parametrize("modality", ["graph", "paired"])
def test_onnx_refused_for_non_tensor_inputs(runs, modality, tmp_path):
    out = tmp_path / "m.onnx"
    with pytest.raises(ConfigError, match="does not export to ONNX"):
        selfsup.export(runs[modality], out, "onnx")
    assert not out.exists()


def test_onnx_cli(runs, tmp_path, cli):
    out = tmp_path / "digits.onnx"
    code, stdout, err = cli("export", str(runs["image"]), "--format", "onnx", "--out", str(out))
    assert code == 0, err
    assert "max abs difference" in stdout and out.is_file()
