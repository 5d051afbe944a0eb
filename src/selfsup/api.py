"""The public API: ``train``, ``evaluate``, ``load_encoder``. The CLI is a thin layer over it.

Building a run's parts lives in :mod:`selfsup.parts`, the encoder file in
:mod:`selfsup.encoder_io`, evaluating a run in :mod:`selfsup.evaluation` and resolving a config in
:mod:`selfsup.resolve`."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import config as conf
from . import evaluation
from . import validate as validation
from .encoder_io import ENCODER_FILE, load_encoder, save_encoder
from .errors import ConfigError, DataError, StorageError
from .io import write_json, write_text
from .modalities import modality_of
from .modalities.base import modality_for
from .parts import Parts, assemble, load_data, with_defaults
from .resolve import OPTIONS, absolute_paths, protected_paths, resolve_config
from .resume import identity as run_identity
from .resume import plan as resume_plan
from .rundir import check_new, default_dir, prepare_new, require_run
from .rundir import lock as lock_run
from .train import Trainer
from .train import distributed as DIST

__all__ = ["Run", "train", "evaluate", "load_encoder"]


@dataclass
class Run:
    """A finished (or loaded) run: its directory, config and summary."""

    dir: Path
    config: conf.Config
    summary: dict = field(default_factory=dict)

    @property
    def encoder(self) -> nn.Module:
        return load_encoder(self.dir)

    def __repr__(self) -> str:
        return (
            f"Run(dir='{self.dir}', method='{self.config.method}', eval={self.summary.get('eval')})"
        )


def train(
    config: conf.Config | dict | str | os.PathLike | None = None,
    *,
    overrides: list[str] | None = None,
    resume: str | os.PathLike | None = None,
    overwrite: bool = False,
    console=None,
    on_epoch_end=None,
    allow_changes: bool = False,
    method: str | None = None,
    data: str | os.PathLike | None = None,
    eval_data: str | os.PathLike | None = None,
    backbone: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int | None = None,
    device: str | None = None,
    out: str | os.PathLike | None = None,
    skip_corrupt: bool | None = None,
    logger: str | list[str] | None = None,
    label_column: str | None = None,
    normal_label: str | int | None = None,
    pair_channels: str | None = None,
    nproc: int | None = None,
    plugins: list[str] | None = None,
    data_options: dict[str, Any] | None = None,
    **unknown: Any,
) -> Run:
    """Pretrain an encoder, evaluate it beside the baselines, and write a run directory.

    The keyword options are the CLI's (each a config field, see :data:`selfsup.resolve.OPTIONS`);
    ``config`` is a recipe (a Config, a dict or a YAML path) and ``overrides`` its ``key=value``
    changes. ``resume``: continue that run from its newest good checkpoint; it is refused when its
    data or ``config.yaml`` changed since that checkpoint, unless ``allow_changes`` (recorded in
    ``summary.json``). ``epochs`` may then raise (or keep) the run's total number of epochs.

    Examples
    --------
    >>> run = selfsup.train(method="simclr", data="digits", epochs=2)   # doctest: +SKIP
    >>> run.summary["eval"]["knn_top1"]                                  # doctest: +SKIP
    """
    if unknown:
        raise ConfigError(
            f"unknown option '{next(iter(unknown))}'; valid: {', '.join(OPTIONS)} (and config, "
            "overrides, resume, overwrite, allow_changes)"
        )
    options: dict[str, Any] = dict(
        method=method, data=data, eval_data=eval_data, backbone=backbone, epochs=epochs,
        batch_size=batch_size, lr=lr, seed=seed, device=device, out=out, skip_corrupt=skip_corrupt,
        logger=logger, label_column=label_column, normal_label=normal_label,
        pair_channels=pair_channels, nproc=nproc, plugins=plugins, data_options=data_options,
    )  # fmt: skip
    if allow_changes and resume is None:
        raise ConfigError(
            "--allow-changes only applies to --resume RUN_DIR (it lets a changed run continue)"
        )
    if resume is not None:
        run_dir = require_run(validation.path_arg(resume, "resume"))
        stored = conf.load_yaml(run_dir / "config.yaml")
        extra = {k: v for k, v in options.items() if v is not None}
        bad = [k for k in extra if k not in ("epochs", "device", "nproc")]
        if bad or overrides or config is not None:
            raise ConfigError(
                "--resume continues a run with its own config; only --epochs, --device and "
                f"--nproc may be given with it (got: {', '.join(bad) or 'config/overrides'})"
            )
        cfg = resolve_config(stored, **extra)
        distributed = _join_processes(cfg)
        lk = lock_run(run_dir) if DIST.is_main() else None
    else:
        cfg = absolute_paths(
            resolve_config(config, overrides, **options)
        )  # `selfsup eval RUN` from anywhere
        distributed = _join_processes(cfg)
        run_dir = Path(cfg.out) if cfg.out else default_dir(cfg.method, cfg.data.source)
        run_dir = Path(DIST.broadcast_object(str(run_dir)))  # one timestamped name for every rank
        cfg = cfg.model_copy(update={"out": str(run_dir)})
        if DIST.is_main():
            check_new(
                run_dir, overwrite, protected_paths(cfg)
            )  # before any data is decoded or model built
        lk = None
    try:
        rplan = resume_plan(run_dir, cfg, allow_changes) if resume is not None else None
        device = DIST.local_device(validation.device(cfg.train.device))
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        splits, bank, query = load_data(cfg)  # validate data before touching the run directory
        tr = splits.train
        cfg = with_defaults(cfg, tr)  # the modality's and the method's defaults, where unset
        if len(tr) < 2:
            raise DataError(
                f"'{tr.name}' has {len(tr)} training sample(s); pretraining compares samples of a "
                "batch and needs at least 2 (tens at the least to learn anything): give more data"
            )
        if cfg.train.batch_size > len(tr):
            raise ConfigError(
                f"batch size {cfg.train.batch_size} is larger than the {len(tr)} training samples; "
                f"use --batch-size {max(2, len(tr) // 4)} or less"
            )
        validation.check_data(cfg, tr, bank, modality_of(tr))
        parts = assemble(
            cfg, tr, device
        )  # views, encoder and method built before the run directory
        validation.check_training(cfg, parts.method, device)
        if resume is None and DIST.is_main():
            lk = prepare_new(run_dir, overwrite, protected_paths(cfg))
            write_text(run_dir / "config.yaml", cfg.to_yaml())
        elif (
            resume is not None
            and DIST.is_main()
            and (options.get("epochs") or options.get("nproc"))
        ):
            write_text(run_dir / "config.yaml", cfg.to_yaml())
        DIST.barrier("the start")  # the run directory exists before any rank goes on
        try:
            return _train_in(
                run_dir, cfg, splits, bank, query, parts, device, rplan, console, on_epoch_end
            )
        except StorageError as err:  # say --resume only when a good checkpoint exists
            if "--resume" not in str(err):
                raise
            from .train.checkpoint import advice

            raise StorageError(
                f"{str(err).split('; ')[0]}; free some space, then: {advice(run_dir)}"
            ) from err
    finally:
        if lk is not None:
            lk.release()
        if distributed:
            DIST.shutdown()


def _join_processes(cfg: conf.Config) -> bool:
    """Under torchrun: join the process group (True). ``train.nproc > 1`` without it is refused:
    the processes are started by ``selfsup train --nproc N`` or by torchrun, not from Python."""
    if DIST.launched():
        return DIST.init(validation.device(cfg.train.device), cfg.train.dist_timeout)
    if cfg.train.nproc > 1:
        raise ConfigError(
            f"train.nproc={cfg.train.nproc} starts processes from the command line "
            f"(selfsup train --nproc {cfg.train.nproc}); from Python, run the script under "
            f"torchrun --nproc-per-node {cfg.train.nproc}"
        )
    return False


def _train_in(
    run_dir, cfg, splits, bank, query, parts: Parts, device, resuming, console, on_epoch_end
) -> Run:
    tr = splits.train
    mod, preset, meta, method, views, x, labels = (
        parts.modality,
        parts.preset,
        parts.meta,
        parts.method,
        parts.views,
        parts.x,
        parts.labels,
    )

    callback = on_epoch_end
    if callback is None and cfg.eval.knn_every and bank is not None:

        def callback(epoch, m):
            if epoch % cfg.eval.knn_every == 0:
                return evaluation.evaluate_encoder(
                    m.encoder, bank, query, meta, cfg.eval, device, ["knn"]
                )
            return None

    monitor = evaluation.diagnostics_monitor(cfg, method, views, tr, query, mod, device)
    if monitor is not None:
        every = conf.every_epochs(cfg.eval.diagnostics_every, cfg.train.epochs)
        callback = evaluation.with_diagnostics(monitor, callback, every, cfg.train.epochs)

    torch.manual_seed(cfg.train.seed)
    loggers = []
    if cfg.train.logger and DIST.is_main():
        from .train.loggers import build_loggers

        loggers = build_loggers(cfg.train.logger, run_dir, cfg.to_dict())
    trainer = Trainer(
        method, views, x, cfg, run_dir, device, labels, callback, console,
        loggers=loggers, identity=run_identity(cfg),  # checkpoints record the config and data
    )  # fmt: skip
    if resuming:
        trainer.load_checkpoint(resuming.checkpoint)
        trainer.log({"step": trainer.state.step, "resume": resuming.record})
    t0 = time.perf_counter()
    try:
        st = trainer.fit()
    finally:
        from .train.loggers import close_all

        close_all(trainer.loggers)
    if not DIST.is_main():  # rank 0 writes the encoder, evaluates and reports
        return Run(run_dir, cfg, {})
    save_encoder(run_dir / ENCODER_FILE, method.encoder, meta)

    summary: dict[str, Any] = {
        "method": cfg.method,
        "data": cfg.data.source,
        "epochs": st.epoch,
        "steps": st.step,
        "skipped_steps": st.skipped_steps,
        "view_preset": preset,
        "skipped_corrupt": int(tr.info.get("skipped", 0)),
        "train_time_s": round(st.train_time, 2),
        "timing_s": {k: round(v, 3) for k, v in trainer.timing.items()},
        "setup": trainer.setup,
    }
    if bank is not None and cfg.data.normal_label is not None:
        summary["eval"] = evaluation.evaluate_anomaly(
            method.encoder, bank, query, meta, cfg.eval, device
        )
        summary["anomaly"] = {
            "normal_label": cfg.data.normal_label,
            "train_normal": len(bank),
            "test_normal": int((query.y == bank.y[0]).sum()),
            "test_anomalies": int((query.y != bank.y[0]).sum()),
            "score": "method" if "anomaly_method_auroc" in summary["eval"] else "knn",
        }
        if cfg.eval.baselines:
            summary["baselines"] = evaluation.anomaly_baselines(cfg, bank, query, meta, device)
        summary["eval_data"] = {
            "bank": bank.name,
            "bank_size": len(bank),
            "query": query.name,
            "query_size": len(query),
        }
    elif bank is not None:
        summary["eval"] = evaluation.evaluate_encoder(
            method.encoder, bank, query, meta, cfg.eval, device
        )
        if cfg.eval.baselines:
            summary["baselines"] = evaluation.baselines(cfg, bank, query, meta, device)
        summary["eval_data"] = {
            "bank": bank.name,
            "bank_size": len(bank),
            "query": query.name,
            "query_size": len(query),
        }
    if monitor is not None:
        summary["diagnostics"] = monitor.full(method)
    summary["wall_time_s"] = round(time.perf_counter() - t0, 2)
    resumes = _resume_records(trainer.metrics_path)
    if resumes:
        summary["resumes"] = resumes
    write_json(run_dir / "summary.json", summary)
    if cfg.eval.report:
        evaluation.write_own_report(run_dir, console)
    return Run(run_dir, cfg, summary)


def _resume_records(metrics: Path) -> list[dict]:
    """What each ``--resume`` of the run recorded in metrics.jsonl (checkpoint, epochs, allowed
    changes)."""
    out = []
    if metrics.is_file():
        for line in metrics.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("resume"), dict):
                out.append(rec["resume"])
    return out


def evaluate(
    target: str | os.PathLike | nn.Module,
    data: str | None = None,
    protocols: list[str] | None = None,
    device: str = "auto",
    write: bool = True,
    **eval_options: Any,
) -> dict:
    """Evaluate a run directory (or an encoder module) on labelled data.

    With a run directory, ``data`` defaults to the run's own evaluation data and the result is also
    written to ``RUN_DIR/eval.json``.
    """
    from .eval.protocols import parse as parse_protocols

    if protocols is not None:  # an empty or unknown list is refused before anything loads
        protocols = parse_protocols(protocols)
    dev = validation.device(device)
    if isinstance(target, nn.Module):
        if data is None:
            raise ConfigError("evaluating a module needs data=SOURCE with labels")
        cfg = conf.validate({"data": {"source": data}, "eval": eval_options})
        enc, run_dir = target, None
    else:
        run_dir = require_run(
            validation.path_arg(target, "evaluate's target (a run directory or an nn.Module)")
        )
        d = conf.load_yaml(run_dir / "config.yaml")
        if data is not None:
            d = conf.merge(d, {"data": {"source": data, "eval_source": None, "limit": None}})
        d = conf.merge(d, {"eval": eval_options})
        cfg = conf.validate(d)
        enc = load_encoder(run_dir, dev)
    meta = getattr(enc, "meta", None)
    splits, bank, query = load_data(cfg)
    if bank is None:
        raise DataError(
            f"'{cfg.data.eval_source or cfg.data.source}' has no labels to evaluate with; give "
            "labelled data with --data"
        )
    if meta is None:  # a plain module: images at the data's own size
        meta = {
            "modality": bank.modality,
            "image_size": getattr(enc, "image_size", None) or getattr(bank, "size", None),
        }
    else:
        modality_for(meta).check_eval_data(bank, meta)
    enc = enc.to(dev)
    result = {
        "data": cfg.data.eval_source or cfg.data.source,
        "bank_size": len(bank),
        "query_size": len(query),
        "eval": (
            evaluation.evaluate_anomaly(enc, bank, query, meta, cfg.eval, dev)
            if cfg.data.normal_label is not None
            else evaluation.evaluate_encoder(enc, bank, query, meta, cfg.eval, dev, protocols)
        ),
    }
    if write and run_dir is not None:
        write_json(run_dir / "eval.json", result)
    return result
