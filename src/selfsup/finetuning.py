"""Fine-tuning a pretrained encoder into a classifier, and applying the classifier.

``selfsup finetune RUN_DIR --data SOURCE --out CLASSIFIER_DIR`` trains the encoder and a new linear
head end to end with the recipe of the few-label protocol (:class:`selfsup.eval.fewshot.FineTuner`:
AdamW, the encoder at a tenth of the head's learning rate, a cosine schedule, deterministic model
inputs). What differs from the protocol: whole epochs over the labelled training samples (a
class-balanced ``label_fraction`` of them, chosen as the protocol chooses them), and early stopping
on a held-out, stratified ``val_fraction`` of those samples: after ``patience`` epochs without a
lower validation loss (cross-entropy) training stops and the best epoch's weights are kept. The test
split of the source, when labelled, is scored once at the end.

The classifier folder is a model folder (:mod:`selfsup.pretrained`) of kind ``classifier`` plus,
while training, ``finetune.json`` (the settings) and ``checkpoints/epoch-*.safetensors`` (everything
needed to continue exactly: weights, optimiser, generators, the best epoch so far). ``resume=True``
(``selfsup finetune --resume CLASSIFIER_DIR``) continues from the newest checkpoint, bit for bit as
if it had not stopped; ``epochs`` may then raise the number of epochs (this changes the schedule).

``selfsup predict CLASSIFIER_DIR --data SOURCE --out FILE`` writes, per sample in input order, the
predicted class name and each class's probability.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import data as sources
from .embedding import (
    Inputs,
    check_kind,
    check_out_file,
    load_inputs,
    load_splits,
    run_model,
    source_options,
    write_table,
)
from .errors import ConfigError, DataError, RunDirError
from .eval.fewshot import FineTuner, few_label_indices
from .modalities import modality_of
from .pretrained import CONFIG_FILE, Classifier, is_model_dir, load_model, write_model_files

SETTINGS_FILE = "finetune.json"
#: the most epochs a fine-tuning runs when --epochs is not given (early stopping ends most sooner)
DEFAULT_EPOCHS = 100
CKPT_DIR = "checkpoints"
#: settings that a resumed fine-tuning takes from its folder (``epochs`` and ``device`` may change)
FIXED = (
    "model",
    "data",
    "label_fraction",
    "val_fraction",
    "batch_size",
    "lr",
    "encoder_lr_ratio",
    "patience",
    "seed",
    "label_column",
    "pair_channels",
)


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns: the classifier folder, the classifier and its scores."""

    dir: Path
    classifier: Classifier
    summary: dict = field(default_factory=dict)


@dataclass
class Predictions:
    """What :func:`predict` returns, in input order."""

    ids: list[Any]
    classes: list[str]
    probabilities: np.ndarray
    path: Path | None = None

    @property
    def labels(self) -> list[str]:
        return [self.classes[i] for i in self.probabilities.argmax(1)]


def finetune(
    model: str | os.PathLike | None,
    data: str | None,
    out: str | os.PathLike,
    *,
    label_fraction: float = 1.0,
    epochs: int | None = None,
    batch_size: int = 64,
    lr: float = 1e-3,
    encoder_lr_ratio: float = 0.1,
    patience: int = 20,
    val_fraction: float = 0.2,
    seed: int = 0,
    device: str = "cpu",
    label_column: str | None = None,
    pair_channels: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    console: Any = None,
    on_epoch_end: Callable[[int, dict], bool | None] | None = None,
) -> FinetuneResult:
    """Fine-tune an encoder (a run directory, an encoder file or a model folder) and a linear head
    on the labelled training split of ``data``; write the classifier folder ``out``.

    ``resume=True`` continues the fine-tuning in ``out`` (``model`` and ``data`` may be None: they
    come from its ``finetune.json``); only ``epochs`` and ``device`` may differ.
    ``on_epoch_end(epoch, record)`` is called after each epoch's checkpoint; returning True stops
    there (as an interruption would). Returns the folder, the classifier and a summary (validation
    and test accuracy, the epoch kept).

    Examples
    --------
    >>> r = selfsup.finetune(  # doctest: +SKIP
    ...     "runs/demo", "digits", "models/digits-clf", label_fraction=0.1
    ... )
    >>> r.summary["test_top1"]  # doctest: +SKIP
    """
    from . import validate as validation
    from .io import write_json
    from .rundir import lock

    dev = validation.device(device)
    out_dir = validation.path_arg(out, "--out")
    given = {
        "model": None if model is None else str(model),
        "data": data,
        "label_fraction": label_fraction,
        "val_fraction": val_fraction,
        "batch_size": batch_size,
        "lr": lr,
        "encoder_lr_ratio": encoder_lr_ratio,
        "patience": patience,
        "seed": seed,
        "label_column": label_column,
        "pair_channels": pair_channels,
    }
    if resume:
        settings = _resume_settings(out_dir, given, epochs)
    else:
        if model is None or data is None:
            raise ConfigError("finetune needs the pretrained model (RUN_DIR) and --data SOURCE")
        _check_new_out(out_dir, overwrite)
        settings = {**given, "epochs": DEFAULT_EPOCHS if epochs is None else epochs}
    _check_settings(settings)
    enc, info = load_model(settings["model"], "cpu", want="encoder")
    meta = enc.meta
    if not resume:  # the run's own --label-column (its source) and --pair-channels, unless given
        settings["label_column"], settings["pair_channels"] = source_options(
            info, settings["data"], settings["label_column"], settings["pair_channels"]
        )
    train_d, val_d, test_d, classes, n_labelled = _finetune_data(settings, meta)

    if not resume:
        if out_dir.exists() and overwrite:
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / SETTINGS_FILE, settings)  # a resume may have raised the epochs
    lk = lock(out_dir)
    try:
        return _fit(
            out_dir,
            settings,
            enc,
            meta,
            train_d,
            val_d,
            test_d,
            classes,
            n_labelled,
            dev,
            console,
            on_epoch_end,
        )
    finally:
        lk.release()


def _check_settings(s: dict) -> None:
    checks = [
        ("--label-fraction", s["label_fraction"], 0 < s["label_fraction"] <= 1, "in (0, 1]"),
        ("val_fraction", s["val_fraction"], 0 <= s["val_fraction"] < 1, "in [0, 1)"),
        ("--epochs", s["epochs"], s["epochs"] >= 1, "at least 1"),
        ("--batch-size", s["batch_size"], s["batch_size"] >= 1, "at least 1"),
        ("--lr", s["lr"], s["lr"] > 0, "positive"),
        ("encoder_lr_ratio", s["encoder_lr_ratio"], s["encoder_lr_ratio"] >= 0, "at least 0"),
        ("--patience", s["patience"], s["patience"] >= 1, "at least 1"),
    ]
    for name, v, ok, what in checks:
        if not ok:
            raise ConfigError(f"{name} must be {what}, got {v}")


def _check_new_out(out: Path, overwrite: bool) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise RunDirError(f"--out '{out}' exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        ours = is_model_dir(out) or (out / SETTINGS_FILE).is_file()
        if not ours:
            raise RunDirError(
                f"--out '{out}' exists and is not a selfsup classifier folder; selfsup only "
                "replaces its own folders, so choose another --out"
            )
        if not overwrite:
            raise RunDirError(
                f"classifier folder '{out}' already exists; pass --resume to continue it, "
                "--overwrite to replace it, or choose another --out"
            )


def _resume_settings(out: Path, given: dict, epochs: int | None) -> dict:
    p = out / SETTINGS_FILE
    if not p.is_file():
        raise RunDirError(
            f"'{out}' is not a fine-tuning folder (no {SETTINGS_FILE}); give the --out folder of "
            "an earlier selfsup finetune"
        )
    try:
        stored = json.loads(p.read_text(encoding="utf-8"))
        assert isinstance(stored, dict) and all(k in stored for k in FIXED[:-1] + ("epochs",))
        stored.setdefault("pair_channels", None)
    except (ValueError, AssertionError):
        raise RunDirError(f"'{p}' is damaged; start again with --overwrite") from None
    defaults = {
        "label_fraction": 1.0,
        "val_fraction": 0.2,
        "batch_size": 64,
        "lr": 1e-3,
        "encoder_lr_ratio": 0.1,
        "patience": 20,
        "seed": 0,
    }
    changed = [
        k
        for k in FIXED
        if given.get(k) is not None
        and given[k] != stored[k]
        and not (k in defaults and given[k] == defaults[k])
    ]
    if changed:
        raise ConfigError(
            "--resume continues a fine-tuning with its own settings; only --epochs and --device "
            f"may be given with it (got a different {', '.join(changed)})"
        )
    if epochs is not None:
        if epochs < stored["epochs"]:
            raise ConfigError(
                f"--epochs {epochs} is fewer than the {stored['epochs']} this fine-tuning was "
                "started with; --epochs may only raise it"
            )
        stored["epochs"] = epochs
    return stored


def _finetune_data(s: dict, meta: dict):
    """``(train, val, test, classes, labelled)``: the fine-tuning samples (a class-balanced
    ``label_fraction`` of the labelled training split), the held-out part of them, the labelled
    test split (or None), the class names, and how many labelled training samples there were."""
    from .data.base import stratified_split

    splits = load_splits(s["data"], meta, s["label_column"], pair_channels=s.get("pair_channels"))
    check_kind(splits.train, meta)
    tr = splits.train
    if not tr.labelled:
        raise DataError(
            f"'{tr.name}' has no labels, so there is nothing to fine-tune on; give labelled data "
            "(class folders, an .npz with y, a table with --label-column NAME)"
        )
    pool_idx = np.flatnonzero(tr.y >= 0)  # type: ignore[operator]
    pool = tr.subset(pool_idx)
    y = pool.y
    idx = (
        few_label_indices(y, s["label_fraction"], s["seed"])
        if s["label_fraction"] < 1
        else np.arange(len(pool))
    )
    if len(idx) < 2:
        raise DataError(
            f"only {len(idx)} labelled sample(s) at --label-fraction {s['label_fraction']}; "
            "give a larger fraction or more labelled data"
        )
    chosen = pool.subset(idx)
    val = None
    if s["val_fraction"] > 0:
        a, b = stratified_split(chosen.y, s["val_fraction"], s["seed"])
        if len(b) and len(a) >= 2:
            val = chosen.subset(b, f"{chosen.name}[val]")
            chosen = chosen.subset(a, f"{chosen.name}[fit]")
    test = splits.test if splits.test is not None and splits.test.labelled else None
    if test is not None:
        check_kind(test, meta)
        test = test.subset(np.flatnonzero(test.y >= 0))  # type: ignore[operator]
    top_test = -1 if test is None else int(test.y.max())
    k = int(max(int(tr.y.max()), top_test)) + 1  # type: ignore[union-attr]
    classes = (
        list(tr.classes) if tr.classes and len(tr.classes) >= k else [str(i) for i in range(k)]
    )
    return chosen, val, test, classes, len(pool)


def _scored(
    ft: FineTuner, d: sources.Samples, meta: dict, bs: int, dev: torch.device
) -> tuple[float, float]:
    """``(top-1 accuracy, mean cross-entropy)`` on labelled samples ``d``."""
    mod = modality_of(d)
    scores = ft.scores(mod.to_tensor(d), lambda b: mod.prepare(b, meta), bs, dev)
    y = torch.from_numpy(d.y).long()  # type: ignore[arg-type]
    acc = float((scores.argmax(1) == y).float().mean())
    return acc, float(torch.nn.functional.cross_entropy(scores.float(), y))


def _accuracy(ft: FineTuner, d: sources.Samples, meta: dict, bs: int, dev: torch.device) -> float:
    return _scored(ft, d, meta, bs, dev)[0]


def _fit(
    out: Path,
    s: dict,
    enc: nn.Module,
    meta: dict,
    train_d: sources.Samples,
    val_d: sources.Samples | None,
    test_d: sources.Samples | None,
    classes: list[str],
    n_labelled: int,
    dev: torch.device,
    console: Any,
    on_epoch_end: Callable[[int, dict], bool | None] | None,
) -> FinetuneResult:
    from .train import checkpoint as CK

    mod = modality_of(train_d)
    x = mod.to_tensor(train_d)
    yt = torch.from_numpy(train_d.y).long()  # type: ignore[arg-type]
    bs = min(s["batch_size"], len(train_d))
    per_epoch = -(-len(train_d) // bs)

    def prepare(b):
        return mod.prepare(b, meta)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s["seed"])
        enc = copy.deepcopy(enc).to(dev)
        dim = int(getattr(enc, "out_dim", 0)) or int(run_dim(enc, x, prepare, dev))
        ft = FineTuner(
            enc,
            dim,
            len(classes),
            s["epochs"] * per_epoch,
            s["lr"],
            s["encoder_lr_ratio"],
            device=dev,
        )
        g = torch.Generator().manual_seed(s["seed"])
        state: dict[str, Any] = {"epoch": 0, "best": None, "bad": 0, "history": []}
        ckpts = sorted((out / CKPT_DIR).glob("epoch-*.safetensors"))
        if ckpts:
            st = CK.load(ckpts[-1])
            ft.load_state(st["tuner"])
            ft.total_steps = s["epochs"] * per_epoch
            g.set_state(st["generator"])
            CK.set_rng_state(st["rng"])
            state = {k: st[k] for k in ("epoch", "best", "bad", "history")}
        stopped = state["bad"] >= s["patience"]
        while state["epoch"] < s["epochs"] and not stopped:
            epoch = state["epoch"]
            order = torch.randperm(len(train_d), generator=g)
            losses = []
            for i in range(0, len(order), bs):
                idx = order[i : i + bs]
                losses.append(ft.step(prepare(x[idx].to(dev)), yt[idx].to(dev)))
            rec: dict[str, Any] = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
            if val_d is not None:
                rec["val_top1"], rec["val_loss"] = _scored(ft, val_d, meta, 512, dev)
                best = state["best"]
                # better: a lower validation loss (its accuracy, on a small part, is too coarse)
                if best is None or rec["val_loss"] < best["val_loss"]:
                    state["best"] = {
                        "val_top1": rec["val_top1"],
                        "val_loss": rec["val_loss"],
                        "epoch": epoch + 1,
                        "encoder": {k: v.clone() for k, v in enc.state_dict().items()},
                        "head": {k: v.clone() for k, v in ft.head.state_dict().items()},
                    }
                    state["bad"] = 0
                else:
                    state["bad"] += 1
                stopped = state["bad"] >= s["patience"]
            state["epoch"] = epoch + 1
            state["history"].append(rec)
            _checkpoint(out, ft, g, state)
            if console is not None:
                console.print(
                    f"epoch {epoch + 1}/{s['epochs']}: loss {rec['loss']:.4f}"
                    + (f", val top-1 {rec['val_top1']:.4f}" if "val_top1" in rec else ""),
                    highlight=False,
                )
            if on_epoch_end is not None and on_epoch_end(epoch + 1, rec):
                return FinetuneResult(out, Classifier(enc, ft.head, classes), {"stopped": True})
    best = state["best"]
    if best is not None:
        enc.load_state_dict(best["encoder"])
        ft.head.load_state_dict(best["head"])
    enc.eval()
    summary: dict[str, Any] = {
        "epochs_run": state["epoch"],
        "epoch_kept": best["epoch"] if best is not None else state["epoch"],
        "early_stopped": bool(stopped and state["epoch"] < s["epochs"]),
        "train_samples": len(train_d),
        "val_samples": 0 if val_d is None else len(val_d),
        "labelled_pool": n_labelled,
        "history": state["history"],
    }
    if best is not None:
        summary["val_top1"] = best["val_top1"]
    if test_d is not None:
        summary["test_top1"] = _accuracy(ft, test_d, meta, 512, dev)
        summary["test_samples"] = len(test_d)
    clf = Classifier(enc.cpu(), ft.head.cpu(), classes).eval()
    card = {
        "method": meta.get("method"),
        "data": s["data"],
        "finetune": {
            **{
                k: s[k]
                for k in (
                    "model",
                    "data",
                    "label_column",
                    "pair_channels",
                    "label_fraction",
                    "epochs",
                    "lr",
                    "seed",
                )
            },
            **{k: v for k, v in summary.items() if k != "history"},
        },
    }
    write_model_files(out, clf, card)
    from .io import write_json

    write_json(out / "summary.json", summary)
    return FinetuneResult(out, clf, summary)


def run_dim(enc: nn.Module, x, prepare, dev: torch.device) -> int:
    with torch.no_grad():
        was = enc.training
        enc.eval()
        d = enc(prepare(x[:2].to(dev))).shape[1]
        enc.train(was)
    return int(d)


def _checkpoint(out: Path, ft: FineTuner, g: torch.Generator, state: dict) -> None:
    from .train import checkpoint as CK

    d = out / CKPT_DIR
    d.mkdir(exist_ok=True)
    path = d / f"epoch-{state['epoch']:04d}.safetensors"
    CK.save(path, {**state, "tuner": ft.state(), "generator": g.get_state(), "rng": CK.rng_state()})
    for old in d.glob("epoch-*.safetensors"):  # the newest is enough to continue
        if old != path:
            old.unlink(missing_ok=True)


def predict(
    classifier: str | os.PathLike | Classifier,
    data: str,
    out: str | os.PathLike | None = None,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    label_column: str | None = None,
    pair_channels: str | None = None,
    skip_corrupt: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> Predictions:
    """Class probabilities of a fine-tuned classifier (its folder, or the module) for every sample
        of ``data``, in input order (``label_column`` and ``pair_channels`` default to those it was
    fine-tuned with, the label column only for that source). ``out``: ``.csv`` / ``.parquet``
    (``id``, ``class``, then one
        probability column ``p_<class>`` per class) or ``.npy`` (the probabilities, N x K).

        Examples
        --------
        >>> p = selfsup.predict(  # doctest: +SKIP
        ...     "models/digits-clf", "digits", out="predictions.csv"
        ... )
        >>> p.labels[:3]  # doctest: +SKIP
    """
    from . import validate as validation

    dev = validation.device(device)
    path = None if out is None else check_out_file(out, overwrite)
    info: dict = {}
    if isinstance(classifier, Classifier):
        clf = classifier
    else:
        loaded, info = load_model(classifier, "cpu", want="classifier")
        assert isinstance(loaded, Classifier)
        clf = loaded
    meta = clf.meta
    label_column, pair_channels = source_options(info, data, label_column, pair_channels)
    inputs: Inputs = load_inputs(
        data, meta, label_column, skip_corrupt, pair_channels=pair_channels
    )
    clf = clf.to(dev)
    scores = run_model(clf, inputs, meta, batch_size, dev, progress, "predicting")
    probs = torch.softmax(scores, 1).numpy().astype(np.float32)
    ids = inputs.ordered_ids()
    if path is not None:
        cols: dict[str, np.ndarray] = {
            "class": np.array([clf.classes[i] for i in probs.argmax(1)], dtype=object)
        }
        cols.update({f"p_{c}": probs[:, j] for j, c in enumerate(clf.classes)})
        if path.suffix.lower() == ".npy":
            write_table(path, ids, probs)
        else:
            write_table(path, ids, cols)
    return Predictions(ids, list(clf.classes), probs, path)


__all__ = ["finetune", "predict", "FinetuneResult", "Predictions", "CONFIG_FILE"]
