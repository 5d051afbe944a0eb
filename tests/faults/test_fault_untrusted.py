"""Untrusted files: checkpoints and encoders load only through safetensors and JSON. A pickle
renamed to .safetensors, and safetensors files whose metadata tries tricks, are refused with
CheckpointError; a payload in them never runs (it would create a marker file). Configs and CIFAR
batches are parsed without running anything either."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import selfsup
from selfsup.data.cifar import load_cifar
from selfsup.errors import CheckpointError, ConfigError, DataError
from selfsup.train import checkpoint as ckpt


class Payload:
    """Unpickling this runs ``open(marker, 'w')``: the marker file proves the payload ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickle_files(tmp_path: Path, marker: Path) -> dict[str, Path]:
    files = {}
    p = tmp_path / "torch_save.safetensors"
    torch.save({"model": {"w": torch.zeros(2)}, "evil": Payload(marker)}, p)  # zip + pickle
    files["torch.save"] = p
    p = tmp_path / "legacy.safetensors"
    torch.save({"evil": Payload(marker)}, p, _use_new_zipfile_serialization=False)
    files["torch.save legacy"] = p
    p = tmp_path / "pickle.safetensors"
    p.write_bytes(pickle.dumps(Payload(marker)))
    files["pickle"] = p
    return files


def _safetensors(path: Path, meta: str | None, tensors=None) -> Path:
    save_file(
        tensors if tensors is not None else {"s.w": torch.zeros(2)},
        str(path),
        metadata=None if meta is None else {ckpt.META_KEY: meta},
    )
    return path


def _tricks(tmp_path: Path, marker: Path) -> dict[str, Path]:
    deep = "[" * 100_000 + "]" * 100_000
    files = {
        "no metadata": _safetensors(tmp_path / "a.safetensors", None),
        "metadata not JSON": _safetensors(tmp_path / "b.safetensors", "{not json"),
        "metadata a list": _safetensors(tmp_path / "c.safetensors", "[1, 2]"),
        "missing tensor": _safetensors(
            tmp_path / "d.safetensors", json.dumps({"__tensor__": "s.nope"})
        ),
        "bad __dict__": _safetensors(
            tmp_path / "e.safetensors", json.dumps({"__dict__": [1, 2, 3]})
        ),
        "deep nesting": _safetensors(tmp_path / "f.safetensors", deep),
    }
    # a header whose length points far past the end of the file, and one that lies about offsets
    p = tmp_path / "h.safetensors"
    p.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    files["huge header length"] = p
    hdr = json.dumps(
        {
            "s.w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]},
            "__metadata__": {ckpt.META_KEY: "{}"},
        }
    ).encode()
    p = tmp_path / "i.safetensors"
    p.write_bytes(struct.pack("<Q", len(hdr)) + hdr + b"\0" * 8)
    files["offsets past the end"] = p
    return files


def test_pickles_and_metadata_tricks_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "PAYLOAD_RAN"
    pickles = _pickle_files(tmp_path, marker)
    for what, p in {**pickles, **_tricks(tmp_path, marker)}.items():
        with pytest.raises(CheckpointError) as e:
            ckpt.load(p)
        assert "\n" not in str(e.value) and str(p) in str(e.value), what
    for p in pickles.values():
        with pytest.raises(CheckpointError):
            selfsup.load_encoder(p)
    # pickle bytes hidden in the JSON metadata stay what they are: a string, never unpickled
    evil = pickle.dumps(Payload(marker)).hex()
    p = _safetensors(
        tmp_path / "g.safetensors", json.dumps({"__dict__": [["progress", {"__reduce__": evil}]]})
    )
    assert ckpt.load(p) == {"progress": {"__reduce__": evil}}
    assert not marker.exists()


def test_encoder_metadata_tricks_are_refused(tmp_path):
    marker = tmp_path / "PAYLOAD_RAN"
    for p in _tricks(tmp_path, marker).values():
        with pytest.raises(CheckpointError):
            selfsup.load_encoder(p)
    assert not marker.exists()


def test_resume_skips_a_planted_pickle_checkpoint(tiny_config, tmp_path):
    """A pickle planted as the newest checkpoint is passed over: the run resumes from the last
    real one and ends like an uninterrupted run; a crafted checkpoint that does not fit is
    refused."""
    cfg = tiny_config(eval={"protocols": ["knn"], "diagnostics": False, "report": False})
    ref = selfsup.train(cfg)
    ref_enc = (ref.dir / "encoder.safetensors").read_bytes()
    good = ckpt.checkpoints(ref.dir)
    good[-1].unlink()  # as if killed before the last checkpoint: resume trains the last epoch again
    marker = tmp_path / "PAYLOAD_RAN"
    for i, p in enumerate(_pickle_files(tmp_path, marker).values()):
        os.replace(p, ref.dir / "checkpoints" / f"step-{99990 + i:08d}.safetensors")
    assert ckpt.latest(ref.dir) == good[0]
    run = selfsup.train(resume=ref.dir)
    assert (run.dir / "encoder.safetensors").read_bytes() == ref_enc
    assert not marker.exists()
    # a well-formed safetensors checkpoint with crafted contents: refused, not half-loaded
    for p in ckpt.checkpoints(ref.dir):
        p.unlink()
    state = {
        "progress": {"step": 3, "__class__": "os.system"},
        "model": {"x": torch.zeros(1)},
        "optimizer": {},
        "rng": {"torch": torch.zeros(3)},
    }
    ckpt.save(ref.dir / "checkpoints" / "step-00000003.safetensors", state)
    with pytest.raises(CheckpointError, match="does not fit this run"):
        selfsup.train(resume=ref.dir)


def test_yaml_config_cannot_construct_objects(tmp_path):
    marker = tmp_path / "PAYLOAD_RAN"
    p = tmp_path / "evil.yaml"
    p.write_text(f"method: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        selfsup.train(str(p))
    assert not marker.exists()


def test_cifar_batch_with_payload_is_refused(tmp_path):
    marker = tmp_path / "PAYLOAD_RAN"
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (root / name).write_bytes(pickle.dumps({"data": Payload(marker), "labels": [0]}))
    with pytest.raises(DataError, match="refusing to load"):
        load_cifar(root)
    assert not marker.exists()
