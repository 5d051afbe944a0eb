"""Checkpoints that load without unpickling anything.

One checkpoint is one safetensors file: every tensor (model parameters and buffers, optimiser
state, RNG states) is a named tensor, and everything else (epoch, step, optimiser hyper-parameters,
method state) is JSON in the file's metadata. Files are written to a temporary name and renamed.

Every checkpoint carries a checksum (``CHECKSUM_KEY``: sha256 over the JSON metadata and each
tensor's name, dtype, shape and bytes), so a flipped byte anywhere in its data is found on load
(:class:`~selfsup.errors.CheckpointError` naming the file) instead of training on silently. A
state may also carry ``"run"``: the config and data fingerprint it was trained under, which
``--resume`` compares with the run as it is now. Files written before checksums still load.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError
from ..io import atomic_path

META_KEY = "selfsup"
CHECKSUM_KEY = "checksum"


def flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Turn nested dicts/lists of tensors and scalars into JSON, moving tensors into ``tensors``."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().clone().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[k, flatten(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix} in a checkpoint")


def unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`flatten`. Metadata is untrusted: anything malformed raises
    KeyError/TypeError/ValueError (turned into :class:`CheckpointError` by :func:`load`)."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {k: unflatten(v, tensors) for k, v in obj["__dict__"]}
        return {k: unflatten(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten(v, tensors) for v in obj]
    return obj


def save(path: str | Path, state: dict) -> None:
    """Save a nested ``state`` (tensors anywhere inside) as one safetensors file, atomically."""
    tensors: dict[str, torch.Tensor] = {}
    tree = flatten(state, "s", tensors)
    meta = json.dumps(tree)
    with atomic_path(path) as tmp:
        save_file(
            tensors,
            str(tmp),
            metadata={
                META_KEY: meta,
                "format": "selfsup-checkpoint-1",
                CHECKSUM_KEY: checksum(tensors, meta),
            },
        )


def checksum(tensors: dict[str, torch.Tensor], meta: str) -> str:
    """sha256 of the metadata JSON and every tensor (name, dtype, shape, bytes), in name order."""
    h = hashlib.sha256(meta.encode("utf-8", "surrogatepass"))
    for name in sorted(tensors):
        t = tensors[name].detach()
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode("utf-8", "surrogatepass"))
        if t.numel():
            h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return "sha256:" + h.hexdigest()


def load(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save`. Pickle-based files are refused."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint '{p}' does not exist")
    try:
        from safetensors import safe_open

        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(p), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(
            f"'{p}' is not a valid safetensors checkpoint ({str(err).splitlines()[0][:120]}); "
            "selfsup only loads safetensors files, never pickles"
        ) from None
    if META_KEY not in meta:
        raise CheckpointError(
            f"'{p}' is a safetensors file but not a selfsup checkpoint (no metadata)"
        )
    if CHECKSUM_KEY in meta and checksum(tensors, meta[META_KEY]) != meta[CHECKSUM_KEY]:
        raise CheckpointError(
            f"checkpoint '{p}' is corrupt: its data does not match its checksum (a damaged "
            "file or disk); it cannot be used"
        )
    if str(device) != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    try:
        state = unflatten(json.loads(meta[META_KEY]), tensors)
    except (ValueError, KeyError, TypeError, RecursionError):  # JSONDecodeError is a ValueError
        raise CheckpointError(
            f"checkpoint '{p}' has corrupt metadata; resume from an earlier "
            "checkpoint or start a new run"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint '{p}' has corrupt metadata (not a mapping)")
    return state


def rng_state() -> dict:
    s = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"].cpu())
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([t.cpu() for t in s["cuda"]])


def checkpoints(run_dir: Path) -> list[Path]:
    d = run_dir / "checkpoints"
    return sorted(d.glob("step-*.safetensors")) if d.is_dir() else []


def latest(
    run_dir: Path, verify: bool = True, on_skip: Callable[[Path, str], None] | None = None
) -> Path | None:
    """The newest good checkpoint: it loads and (``verify``) its checksum matches. A damaged newer
    file is passed over for the one before; ``on_skip(path, reason)`` is told about each one (by
    default a :class:`~selfsup.errors.CheckpointWarning` naming it)."""
    for p in reversed(checkpoints(run_dir)):
        try:
            if verify:
                load(p)
                return p
            from safetensors import safe_open

            with safe_open(str(p), framework="pt") as f:
                if META_KEY in (f.metadata() or {}):
                    return p
            raise CheckpointError(
                f"'{p}' is a safetensors file but not a selfsup checkpoint (no metadata)"
            )
        except (CheckpointError, SafetensorError, OSError, ValueError, RuntimeError) as err:
            (on_skip or _warn_skip)(p, str(err))
    return None


def _warn_skip(path: Path, reason: str) -> None:
    from ..errors import CheckpointWarning

    warnings.warn(
        f"passing over checkpoint '{path.name}': {reason}", CheckpointWarning, stacklevel=3
    )


def advice(run_dir: Path) -> str:
    """What a message about a stopped run should say: resume when a good checkpoint exists (named),
    otherwise start again."""
    good = latest(Path(run_dir), on_skip=lambda p, r: None)
    if good is not None:
        return f"the last good checkpoint ({good}) was kept: continue with --resume {run_dir}"
    return (
        f"there is no good checkpoint to resume from: start again with --out {run_dir} --overwrite"
    )
