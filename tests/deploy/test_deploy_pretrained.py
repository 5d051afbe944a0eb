"""Model folders: save -> load -> identical outputs for every modality's default encoder; the first
format version still loads; a newer one is refused in one line; export --format folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import selfsup
from selfsup.embedding import load_inputs, run_model
from selfsup.errors import CheckpointError
from selfsup.pretrained import FORMAT_VERSION

DATA = Path(__file__).parent / "data"
MODALITIES = ["image", "table", "timeseries", "graph", "paired"]


def _outputs(model, source: str) -> torch.Tensor:
    inputs = load_inputs(source, model.meta)
    return run_model(model, inputs, model.meta, batch_size=64)


@pytest.mark.parametrize("modality", MODALITIES)
def test_save_load_identical_outputs(runs, sources, modality, tmp_path):
    enc = selfsup.load_encoder(runs[modality])
    folder = selfsup.save_pretrained(enc, tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["format_version"] == FORMAT_VERSION and cfg["modality"] == enc.meta["modality"]
    assert cfg["kind"] == "encoder" and cfg["selfsup_version"] == selfsup.__version__
    back = selfsup.from_pretrained(folder)
    assert back.meta == enc.meta
    a, b = _outputs(enc, sources[modality]), _outputs(back, sources[modality])
    assert torch.equal(a, b)
    # the folder's weights are an encoder file too
    assert torch.equal(
        _outputs(selfsup.load_encoder(folder / "model.safetensors"), sources[modality]), a
    )


def test_first_format_version_still_loads():
    """tests/deploy/data/model-v1 was written by format version 1 (selfsup 0.1.0) and is never
    regenerated: every later version must load it and give the same features."""
    enc = selfsup.from_pretrained(DATA / "model-v1")
    x = torch.from_numpy(selfsup.data.load_source("wine").test.x[:4])
    with torch.no_grad():
        f = enc(x).numpy()
    np.testing.assert_allclose(f, np.load(DATA / "model-v1-wine-test4.npy"), rtol=0, atol=1e-6)


def test_newer_format_version_refused(tmp_path, cli):
    folder = tmp_path / "future"
    shutil.copytree(DATA / "model-v1", folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["format_version"] = FORMAT_VERSION + 1
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="newer than this selfsup"):
        selfsup.from_pretrained(folder)
    out = tmp_path / "e.csv"
    code, _, err = cli("embed", str(folder), "--data", "wine", "--out", str(out))
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert "format version" in err and not out.exists()


def test_export_folder_cli(runs, tmp_path, cli):
    out = tmp_path / "digits-model"
    code, stdout, err = cli("export", str(runs["image"]), "--format", "folder", "--out", str(out))
    assert code == 0, err
    card = (out / "README.md").read_text()
    assert "simclr" in card and "knn_top1" in card and "from_pretrained" in card
    assert "method: simclr" in card  # the recipe
    # an existing folder is kept unless --overwrite
    before = (out / "model.safetensors").read_bytes()
    code, _, err = cli("export", str(runs["image"]), "--format", "folder", "--out", str(out))
    assert code == 2 and "--overwrite" in err
    assert (out / "model.safetensors").read_bytes() == before
    code, _, err = cli(
        "export", str(runs["image"]), "--format", "folder", "--out", str(out), "--overwrite"
    )
    assert code == 0, err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_export_refuses_a_foreign_folder(runs, tmp_path, cli):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, _, err = cli(
        "export", str(runs["image"]), "--format", "folder", "--out", str(out), "--overwrite"
    )
    assert code == 2 and "not a selfsup model folder" in err
    assert (out / "notes.txt").read_text() == "keep me"
