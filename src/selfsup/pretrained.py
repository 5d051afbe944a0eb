"""Portable model folders: an encoder (or a fine-tuned classifier) that travels without its run.

A model folder holds, in the layout of Hugging Face's model mixins (so it can be uploaded with a
user's own tools; nothing here talks to a hub):

- ``config.json``: the format and its version, the selfsup version that wrote it, the kind
  (``encoder`` or ``classifier``), the modality, the architecture and the input preprocessing (the
  encoder's whole description, ``meta``), and for a classifier its class names;
- ``model.safetensors``: the encoder's weights with its description in the safetensors metadata
  (the same file as a run's ``encoder.safetensors``, so :func:`selfsup.load_encoder` reads it too);
- ``head.safetensors`` (classifiers only): the linear head;
- ``README.md``: a model card (method, data, recipe, the run's evaluation, how to load it).

A folder is written under a temporary name and renamed into place; an existing folder is replaced
only when asked (``overwrite``) and only when it is a selfsup model folder. Loading refuses a folder
of a newer format version in one line.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .errors import CheckpointError, ConfigError, RunDirError

CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
HEAD_FILE = "head.safetensors"
CARD_FILE = "README.md"
FORMAT = "selfsup-model"
#: the model-folder format this version writes; it reads this one and every earlier one
FORMAT_VERSION = 1


class Classifier(nn.Module):
    """A fine-tuned encoder with a linear head: ``forward(x)`` gives class scores (logits).

    ``classes`` names the outputs; ``encoder.meta`` describes the input, as for
    :func:`selfsup.load_encoder`.
    """

    def __init__(self, encoder: nn.Module, head: nn.Linear, classes: list[str]):
        super().__init__()
        self.encoder, self.head, self.classes = encoder, head, list(classes)
        self.meta: dict = getattr(encoder, "meta", {})

    def forward(self, x: Any) -> Tensor:
        return self.head(self.encoder(x))  # type: ignore[no-any-return]


def _version() -> str:
    """selfsup's version, read from the loaded package (importing it here would be a cycle)."""
    import sys

    return str(getattr(sys.modules.get(__package__ or "selfsup"), "__version__", "unknown"))


# -- writing ---------------------------------------------------------------------------------------
def save_pretrained(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    card: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` (an encoder from :func:`selfsup.load_encoder`, or a :class:`Classifier`) as a
    model folder at ``path`` (see the module docstring); returns the folder.

    ``card``: what the model card says about where the model came from (``method``, ``data``,
    ``recipe``: the run's config as YAML text, ``eval``: the run's evaluation, ``baselines``).

    Examples
    --------
    >>> enc = selfsup.load_encoder("runs/demo")                      # doctest: +SKIP
    >>> selfsup.save_pretrained(enc, "models/digits-simclr")         # doctest: +SKIP
    >>> same = selfsup.from_pretrained("models/digits-simclr")       # doctest: +SKIP
    """

    def write(tmp: Path) -> None:
        write_model_files(tmp, model, card or {})

    return publish_dir(Path(path), write, overwrite)


def write_model_files(folder: Path, model: nn.Module, card: dict) -> None:
    """``config.json``, ``model.safetensors`` (and ``head.safetensors``) and ``README.md`` of
    ``model`` in ``folder`` (which exists)."""
    __version__ = _version()
    from .encoder_io import save_encoder
    from .io import write_json, write_text

    classifier = isinstance(model, Classifier)
    encoder = model.encoder if isinstance(model, Classifier) else model
    meta = getattr(encoder, "meta", None)
    if not isinstance(meta, dict) or "modality" not in meta:
        raise ConfigError(
            "save_pretrained takes an encoder from selfsup.load_encoder (or a fine-tuned "
            "classifier): this module has no selfsup description (.meta)"
        )
    save_encoder(folder / MODEL_FILE, encoder, meta)
    config: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "selfsup_version": __version__,
        "kind": "classifier" if classifier else "encoder",
        "modality": meta["modality"],
        "architecture": {
            "backbone": meta.get("backbone"),
            "width": meta.get("width"),
            "out_dim": int(getattr(encoder, "out_dim", 0)),
            "method": meta.get("method"),
        },
        "preprocessing": preprocessing(meta),
        "meta": meta,
        "files": {"weights": MODEL_FILE},
    }
    if isinstance(model, Classifier):
        from safetensors.torch import save_file

        from .io import atomic_path

        head = {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
        with atomic_path(folder / HEAD_FILE) as tmp:
            save_file(head, str(tmp))
        config["classes"] = list(model.classes)
        config["files"]["head"] = HEAD_FILE
    if card.get("finetune"):
        config["finetune"] = card["finetune"]
    write_json(folder / CONFIG_FILE, config)
    write_text(folder / CARD_FILE, model_card(config, card))


def preprocessing(meta: dict) -> dict:
    """What the model expects, in words and numbers (for the card and for other tools)."""
    inner = {
        k: meta[k]
        for k in ("in_channels", "image_size", "length", "columns", "mean", "std")
        if k in meta
    }
    inner["normalisation"] = "inside the model: (x - mean) / std"
    if "towers" in meta:
        inner["towers"] = {t: preprocessing(m) for t, m in meta["towers"].items()}
    return inner


def model_card(config: dict, card: dict) -> str:
    """The README.md of a model folder."""
    meta = config["meta"]
    kind = config["kind"]
    method = card.get("method") or meta.get("method") or "unknown"
    lines = [
        "---",
        "library_name: selfsup",
        "tags: [self-supervised, selfsup, " + str(config["modality"]) + "]",
        "---",
        "",
        f"# {method} {config['modality']} {kind}",
        "",
        f"{'An' if str(config['modality'])[:1] in 'aeiou' else 'A'} {config['modality']} {kind} "
        f"pretrained with **{method}** by [selfsup](https://selfsup.readthedocs.io/) "
        f"{config['selfsup_version']}.",
        "",
        "| | |",
        "|---|---|",
        f"| backbone | `{meta.get('backbone')}` (width {meta.get('width')}) |",
        f"| features | {config['architecture']['out_dim']} |",
        f"| training data | `{card.get('data', 'unknown')}` |",
    ]
    if kind == "classifier":
        lines.append(f"| classes | {', '.join(config.get('classes', []))} |")
    lines += ["", "## Input", "", _input_words(meta), ""]
    if card.get("eval"):
        lines += ["## Evaluation", "", _eval_table(card["eval"], card.get("baselines") or {}), ""]
    if card.get("finetune"):
        ft = card["finetune"]
        lines += ["## Fine-tuning", ""]
        lines += [f"- {k}: {v}" for k, v in ft.items()] + [""]
    lines += [
        "## How to load it",
        "",
        "```python",
        "import selfsup",
        "",
        'model = selfsup.from_pretrained("PATH/TO/THIS/FOLDER")',
        "features = model(x)  # x: see Input above"
        if kind == "encoder"
        else "scores = model(x)   # logits over model.classes",
        "```",
        "",
        "From the command line: `selfsup embed FOLDER --data SOURCE --out features.parquet`"
        if kind == "encoder"
        else "From the command line: `selfsup predict FOLDER --data SOURCE --out predictions.csv`",
        "",
    ]
    if card.get("recipe"):
        lines += ["## Recipe", "", "```yaml", str(card["recipe"]).rstrip(), "```", ""]
    return "\n".join(lines)


def _input_words(meta: dict) -> str:
    if "towers" in meta:
        return "Two towers (paired modalities); each takes its own input:\n\n" + "\n".join(
            f"- tower {t}: {_input_words(m)}" for t, m in meta["towers"].items()
        )
    parts = [f"modality `{meta.get('modality')}`", f"{meta.get('in_channels')} channel(s)"]
    for k in ("image_size", "length"):
        if k in meta:
            parts.append(f"{k} {meta[k]}")
    if "columns" in meta:
        parts.append("columns " + ", ".join(meta["columns"][:12]))
    return (
        ", ".join(parts) + "; the input normalisation (mean, std) is part of the model. "
        "See `selfsup.load_encoder` for the layout of `x`."
    )


def _eval_table(ev: dict, baselines: dict) -> str:
    keys = [k for k, v in ev.items() if isinstance(v, (int, float))][:8]
    rows = {"pretrained": ev, **{k.replace("_", " "): v for k, v in baselines.items()}}
    out = ["| encoder | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, res in rows.items():
        cells = [f"{res[k]:.4f}" if isinstance(res.get(k), (int, float)) else "-" for k in keys]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def publish_dir(out: Path, write: Callable[[Path], None], overwrite: bool) -> Path:
    """Build a folder under a temporary name beside ``out`` with ``write(tmp)``, then rename it to
    ``out``. An existing ``out`` is refused unless ``overwrite`` and it is a selfsup model folder:
    then it is moved aside, and removed only once the new folder is in place."""
    from .io import storage_error

    check_out_dir(out, overwrite)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}-{time.time_ns()}")
    try:
        tmp.mkdir(parents=True)
        write(tmp)
        aside = None
        if out.exists():
            aside = out.with_name(f".{out.name}.replaced-{os.getpid()}-{time.time_ns()}")
            os.rename(out, aside)
        os.rename(tmp, out)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            se = storage_error(err, out)
            if se is not None:
                raise se from err
        raise
    return out


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Every check :func:`publish_dir` makes before writing anything."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise RunDirError(f"--out '{out}' exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not is_model_dir(out):
            raise RunDirError(
                f"--out '{out}' exists and is not a selfsup model folder; selfsup only replaces "
                "its own folders, so choose another --out"
            )
        if not overwrite:
            raise RunDirError(
                f"model folder '{out}' already exists; pass --overwrite to replace it, or choose "
                "another --out"
            )


def is_model_dir(path: Path) -> bool:
    """True for a folder holding a selfsup ``config.json``."""
    try:
        cfg = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and cfg.get("format") == FORMAT


# -- reading ---------------------------------------------------------------------------------------
def read_config(path: Path) -> dict:
    """A model folder's ``config.json``, checked: a selfsup model folder of a version this selfsup
    reads. Anything else is a one-line error."""
    __version__ = _version()

    p = path / CONFIG_FILE
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except OSError:
        raise RunDirError(f"'{path}' is not a selfsup model folder (no {CONFIG_FILE})") from None
    except ValueError:
        raise CheckpointError(f"'{p}' is not valid JSON; the model folder is damaged") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise CheckpointError(
            f"'{p}' is not a selfsup model folder's config (format '{FORMAT}' expected)"
        )
    version = cfg.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"'{p}' has no valid format_version; the model folder is damaged")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"'{path}' is a model folder of format version {version} (written by selfsup "
            f"{cfg.get('selfsup_version', '?')}), newer than this selfsup {__version__} reads "
            f"(up to {FORMAT_VERSION}); upgrade selfsup: pip install -U selfsup"
        )
    if cfg.get("kind") not in ("encoder", "classifier"):
        raise CheckpointError(f"'{p}' has an unknown kind '{cfg.get('kind')}'")
    return cfg


def from_pretrained(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Load a model folder written by :func:`save_pretrained` (or ``selfsup export --format
    folder``, or ``selfsup finetune``): an encoder as :func:`selfsup.load_encoder` gives it, or a
    :class:`Classifier` for a fine-tuned classifier folder. A folder of a newer format version is
    refused in one line.
    """
    from . import validate as validation

    p = validation.path_arg(path, "from_pretrained's path")
    if not p.is_dir():
        raise RunDirError(f"model folder '{path}' does not exist; give a folder with {CONFIG_FILE}")
    cfg = read_config(p)
    return _load(p, cfg, device)


def _load(p: Path, cfg: dict, device: str | torch.device) -> nn.Module:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .encoder_io import load_encoder

    enc = load_encoder(p / cfg.get("files", {}).get("weights", MODEL_FILE), device)
    if cfg["kind"] == "encoder":
        return enc
    classes = [str(c) for c in cfg.get("classes", [])]
    hp = p / cfg.get("files", {}).get("head", HEAD_FILE)
    try:
        state = load_file(str(hp), device="cpu")
        head = nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
        head.load_state_dict(state)
    except (SafetensorError, OSError, KeyError, RuntimeError, IndexError):
        raise CheckpointError(
            f"'{hp}' is missing or is not the classifier's head (safetensors with weight, bias)"
        ) from None
    if len(classes) != head.out_features:
        raise CheckpointError(
            f"'{p / CONFIG_FILE}' names {len(classes)} classes but the head has "
            f"{head.out_features} outputs; the folder is damaged"
        )
    return Classifier(enc, head, classes).to(device).eval()


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu", want: str = "encoder"
) -> tuple[nn.Module, dict]:
    """``(module, info)`` for a run directory, an ``encoder.safetensors`` or a model folder;
    ``want`` is ``encoder`` (refuses a classifier folder) or ``classifier`` (refuses the others).
    ``info``: ``kind``, ``run_dir`` (None for a model folder) and the folder's config."""
    from . import validate as validation
    from .encoder_io import ENCODER_FILE, load_encoder

    p = validation.path_arg(path, "the model path")
    if not p.exists():
        raise RunDirError(
            f"'{path}' does not exist; give a run directory, a model folder or an encoder file"
        )
    if p.is_dir() and (p / CONFIG_FILE).is_file():
        cfg = read_config(p)
        if cfg["kind"] != want:
            if want == "encoder":
                raise RunDirError(
                    f"'{path}' is a fine-tuned classifier folder; use `selfsup predict {path}` "
                    "for its predictions, or give the run (or model folder) it was fine-tuned from"
                )
            raise RunDirError(
                f"'{path}' is an encoder model folder, not a classifier; fine-tune it first "
                "(selfsup finetune RUN_DIR --data SOURCE --out CLASSIFIER_DIR)"
            )
        return _load(p, cfg, device), {"kind": cfg["kind"], "run_dir": None, "config": cfg}
    if want == "classifier":
        raise RunDirError(
            f"'{path}' is not a classifier folder (no {CONFIG_FILE}); give the --out folder of "
            "selfsup finetune"
        )
    if p.is_dir() and not (p / ENCODER_FILE).is_file():
        raise RunDirError(
            f"'{path}' has no encoder ({ENCODER_FILE}) and is not a model folder ({CONFIG_FILE}): "
            "give a finished run directory (training may still be running, or it stopped before "
            "the end: continue it with selfsup train --resume)"
        )
    enc = load_encoder(p, device)
    run_dir = p if p.is_dir() else None
    return enc, {"kind": "encoder", "run_dir": run_dir, "config": None}
