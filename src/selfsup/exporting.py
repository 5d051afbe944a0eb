"""Exporting a run's encoder: a portable model folder, or an ONNX file.

``selfsup export RUN_DIR --format folder --out DIR`` writes a model folder
(:mod:`selfsup.pretrained`) whose card carries the run's method, data, recipe (``config.yaml``) and
evaluation table.

``selfsup export RUN_DIR --format onnx --out model.onnx`` (the ``onnx`` extra: onnx and
onnxruntime) exports the encoder with a dynamic batch dimension (and a dynamic length for series);
the input normalisation is inside the graph (it is part of the encoder module), so the ONNX model
takes the same input as :func:`selfsup.load_encoder`'s module: images float (N, C, H, W) in [0, 1]
at the encoder's ``image_size``, series float (N, C, T) in the data's units (NaN for missing
steps), tables float (N, F) with categorical codes. After writing, onnxruntime's output is compared
with PyTorch's on a batch of the run's own data and the largest absolute difference is reported (an
export whose difference exceeds ``tolerance`` is refused and not kept).

Checked to export (one-epoch runs, largest difference at most 2e-6): images ``convnet``,
``convnet_small``, ``convnet_deep``, ``resnet18``, ``vit_tiny_p2``; series ``dilated``, ``fcn``,
``resnet1d``, ``transformer``; tables ``mlp``, ``ft_transformer``.

Encoders that do not export: those whose input is not one tensor. A graph encoder takes a whole
graph (node features plus an edge list, with the batch being a set of node ids), and a paired
encoder takes two inputs, one per tower; both stay PyTorch modules (export a model folder).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import config as conf
from .errors import ConfigError, DataError, RunDirError
from .modalities import modality_of

FORMATS = ("folder", "onnx")
OPSET = 18


@dataclass
class OnnxCheck:
    """The parity check after an ONNX export: the batch it ran on and the largest difference."""

    path: Path
    batch: int
    max_abs_diff: float
    input_shape: tuple[int, ...]


def export(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    format: str = "folder",  # noqa: A002
    *,
    overwrite: bool = False,
    check_batch: int = 64,
    tolerance: float = 1e-4,
) -> Path | OnnxCheck:
    """Export a run's encoder (see the module docstring). ``format``: ``folder`` (returns the
    folder) or ``onnx`` (returns the :class:`OnnxCheck`)."""
    from . import validate as validation

    if format not in FORMATS:
        raise ConfigError(f"unknown export format '{format}'; choose one of: {', '.join(FORMATS)}")
    out_path = validation.path_arg(out, "--out")
    if format == "folder":
        return export_folder(run_dir, out_path, overwrite)
    return export_onnx(run_dir, out_path, overwrite, check_batch, tolerance)


def export_folder(run_dir: str | os.PathLike, out: Path, overwrite: bool = False) -> Path:
    """A model folder of a run's encoder with a model card made from the run's files."""
    from .pretrained import check_out_dir, publish_dir, write_model_files

    enc, rd = _run_encoder(run_dir)
    check_out_dir(out, overwrite)
    card = run_card(rd) if rd is not None else {}

    def write(tmp: Path) -> None:
        write_model_files(tmp, enc, card)

    return publish_dir(out, write, overwrite)


def run_card(run_dir: Path) -> dict:
    """What a run's files say for the model card: method, data, recipe, evaluation."""
    import json

    card: dict[str, Any] = {}
    cfg = run_dir / "config.yaml"
    if cfg.is_file():
        card["recipe"] = cfg.read_text(encoding="utf-8")
    try:
        s = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        s = {}
    if isinstance(s, dict):
        card.update(
            {
                "method": s.get("method"),
                "data": s.get("data"),
                "eval": s.get("eval"),
                "baselines": s.get("baselines"),
            }
        )
    return card


def _run_encoder(run_dir: str | os.PathLike) -> tuple[nn.Module, Path | None]:
    from .pretrained import load_model

    enc, info = load_model(run_dir, "cpu", want="encoder")
    return enc, info["run_dir"]


def require_onnx() -> None:
    """One line when the ``onnx`` extra is missing."""
    missing = []
    for name in ("onnx", "onnxruntime", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError(f'ONNX export needs {", ".join(missing)}: pip install "selfsup[onnx]"')


def sample_batch(run_dir: Path, meta: dict, n: int) -> Any:
    """Up to ``n`` samples of the run's own training data as the encoder's input."""
    from .embedding import check_kind
    from .parts import load_data

    cfg = conf.load_yaml(run_dir / "config.yaml")
    splits, _, _ = load_data(conf.validate(cfg))
    d = splits.train
    check_kind(d, meta)
    mod = modality_of(d)
    x = mod.to_tensor(d)
    return mod.prepare(x[: min(n, len(x))], meta)


def export_onnx(
    run_dir: str | os.PathLike,
    out: Path,
    overwrite: bool = False,
    check_batch: int = 64,
    tolerance: float = 1e-4,
) -> OnnxCheck:
    """Export a run's encoder to ONNX and check it against PyTorch on the run's data."""
    from .io import atomic_path

    require_onnx()
    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"--out '{out}' must end in .onnx for --format onnx")
    if out.is_dir():
        raise RunDirError(f"--out '{out}' is a folder; give a file name ending in .onnx")
    if out.exists() and not overwrite:
        raise RunDirError(f"'{out}' already exists; pass --overwrite to replace it")
    enc, rd = _run_encoder(run_dir)
    if rd is None:
        raise RunDirError(
            f"'{run_dir}' is not a run directory; ONNX export checks the result on the run's "
            "own data, so give the run directory"
        )
    meta = enc.meta
    x = sample_batch(rd, meta, check_batch)
    if not isinstance(x, torch.Tensor):
        raise ConfigError(
            f"the {meta.get('modality')} encoder does not export to ONNX: its input is "
            f"a {type(x).__name__}, not one tensor (a graph encoder takes the whole graph, a "
            "paired encoder two towers' inputs); export a model folder instead (--format folder)"
        )
    x = x.float().contiguous()
    module = _Plain(enc).eval()
    with torch.no_grad():
        ref = module(x).numpy()
    with atomic_path(out) as tmp:
        _torch_export(module, x, tmp)
        diff = _onnx_diff(tmp, x.numpy(), ref)
        if not np.isfinite(diff) or diff > tolerance:
            raise DataError(
                f"the ONNX export of '{run_dir}' differs from PyTorch by {diff:.3g} (more than "
                f"{tolerance:g}) on {len(x)} samples of the run's data; it was not written"
            )
    return OnnxCheck(out, len(x), diff, tuple(x.shape))


class _Plain(nn.Module):
    """The encoder without selfsup's input-checking hook (Python-side checks do not export)."""

    def __init__(self, enc: nn.Module):
        super().__init__()
        import copy

        self.enc = copy.deepcopy(enc)
        self.enc._forward_pre_hooks.clear()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x)  # type: ignore[no-any-return]


def _torch_export(module: nn.Module, x: torch.Tensor, path: Path) -> None:
    import contextlib
    import io
    import logging
    import warnings

    dims: dict[int, Any] = {0: torch.export.Dim("batch", min=1)}
    dynamic_axes: dict[int, str] = {0: "batch"}
    if x.dim() == 3:  # series: any length
        dims[2] = torch.export.Dim("length", min=2)
        dynamic_axes[2] = "length"
    buf = io.StringIO()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(buf),
            contextlib.redirect_stderr(buf),
        ):
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(
                    module,
                    (x,),
                    str(path),
                    input_names=["input"],
                    output_names=["features"],
                    opset_version=OPSET,
                    dynamo=True,
                    external_data=False,
                    dynamic_shapes=({i: d for i, d in dims.items()},),
                )
            except Exception:  # noqa: BLE001
                # the dynamo exporter could not trace it; the TorchScript exporter may
                torch.onnx.export(
                    module,
                    (x,),
                    str(path),
                    input_names=["input"],
                    output_names=["features"],
                    opset_version=OPSET,
                    dynamo=False,
                    dynamic_axes={"input": dynamic_axes, "features": {0: "batch"}},
                )
    except Exception as err:  # noqa: BLE001
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ConfigError(
            f"this encoder does not export to ONNX ({type(err).__name__}: {first}); export a "
            "model folder instead (--format folder)"
        ) from None


def _onnx_diff(path: Path, x: np.ndarray, ref: np.ndarray) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    got = sess.run(None, {name: x})[0]
    if got.shape != ref.shape:
        return float("inf")
    return float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max())
