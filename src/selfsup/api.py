"""The public API: ``train``, ``evaluate``, ``load_encoder``. The CLI is a thin layer over it."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import config as C
from . import data as D
from . import methods as M
from . import validate as V
from .data.normal import normal_split
from .data.paired import split_channels
from .data.table import align_categories
from .errors import CheckpointError, ConfigError, DataError, RunDirError, StorageError
from .eval import protocols as EP
from .io import write_json, write_text
from .modalities import Modality, modality_of
from .modalities import get as get_modality
from .modalities.base import fill_unset
from .models import BACKBONES
from .resume import identity as run_identity
from .resume import plan as resume_plan
from .rundir import check_new, default_dir, prepare_new, require_run
from .rundir import lock as lock_run
from .train import Trainer
from .train import distributed as DIST
from .views.generator import GeneratedViews
from .views.style import BatchStyle

#: shortcut keyword (and CLI option) -> config path
OPTIONS = {
    "method": "method",
    "data": "data.source",
    "eval_data": "data.eval_source",
    "backbone": "model.backbone",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "optim.lr",
    "seed": "train.seed",
    "device": "train.device",
    "out": "out",
    "skip_corrupt": "data.skip_corrupt",
    "logger": "train.logger",
    "label_column": "data.label_column",
    "normal_label": "data.normal_label",
    "pair_channels": "data.pair_channels",
    "nproc": "train.nproc",
}
ENCODER_FILE = "encoder.safetensors"


@dataclass
class Run:
    """A finished (or loaded) run: its directory, config and summary."""

    dir: Path
    config: C.Config
    summary: dict = field(default_factory=dict)

    @property
    def encoder(self) -> nn.Module:
        return load_encoder(self.dir)

    def __repr__(self) -> str:
        return (
            f"Run(dir='{self.dir}', method='{self.config.method}', eval={self.summary.get('eval')})"
        )


def resolve_config(
    config: C.Config | dict | str | os.PathLike | None = None,
    overrides: list[str] | None = None,
    **options: Any,
) -> C.Config:
    """Defaults <- recipe (a Config, dict or YAML path) <- keyword options <- ``key=value`` overrides."""
    if isinstance(config, C.Config):
        d = config.to_dict()
    elif isinstance(config, dict):
        d = dict(config)
    elif isinstance(config, (str, os.PathLike)):
        d = C.load_yaml(config)
    elif config is None:
        d = {}
    else:
        raise ConfigError(
            f"config must be a Config, a dict or the path of a YAML recipe, got {type(config).__name__}"
        )
    for k, v in options.items():
        if k not in OPTIONS:
            raise ConfigError(f"unknown option '{k}'; valid: {', '.join(OPTIONS)}")
        if v is not None:
            C.set_path(d, OPTIONS[k], os.fspath(v) if isinstance(v, os.PathLike) else v)
    C.apply_overrides(d, overrides or [])
    cfg = C.validate(d)
    M.validate_params(cfg.method, cfg.loss)
    from .models.graph import GRAPH_BACKBONES
    from .models.tabular import TABLE_BACKBONES
    from .models.timeseries import SERIES_BACKBONES

    known = [
        *BACKBONES,
        *SERIES_BACKBONES,
        *TABLE_BACKBONES,
        *GRAPH_BACKBONES,
    ]  # each modality refuses the others' names
    if cfg.model.backbone != "auto" and cfg.model.backbone not in known:
        raise ConfigError(
            f"unknown backbone '{cfg.model.backbone}'; choose one of: auto, {', '.join(known)}"
        )
    EP.parse(cfg.eval.protocols)
    V.check_config(cfg)  # the one validation pass: numbers, seeds, device, packages, sizes
    return cfg


def pick_device(name: str) -> torch.device:
    """The device ``name`` stands for; one-line :class:`ConfigError` when this build or machine lacks it."""
    return V.device(name)


def load_data(cfg: C.Config) -> tuple[D.Splits, D.Samples | None, D.Samples | None]:
    """The training split and the labelled (bank, query) pair for evaluation."""
    dc = cfg.data
    splits = D.load_source(
        dc.source, dc.image_size, dc.skip_corrupt, dc.cache_dir, label_column=dc.label_column
    )
    if dc.pair_channels:  # two modalities from one multichannel source (selfsup.data.paired)
        splits = split_channels(splits, dc.pair_channels)
    ev = None
    if dc.eval_source:
        size = dc.image_size or getattr(splits.train, "size", None)
        ev = D.load_source(
            dc.eval_source, size, dc.skip_corrupt, dc.cache_dir, label_column=dc.label_column
        )
        ev = align_categories(ev, splits.train)  # tables: codes of the training vocabulary
        if dc.pair_channels:
            ev = split_channels(ev, dc.pair_channels)
    if (
        dc.normal_label is not None
    ):  # anomaly detection: normal training samples, the whole test split
        splits, bank, query = normal_split(
            splits, dc.normal_label, None if ev is None else ev.test or ev.train
        )
    else:
        bank, query = D.eval_splits(splits, ev, seed=0) if _evaluable(splits, ev) else (None, None)
    if dc.limit is not None and dc.limit < len(splits.train):
        keep = np.sort(
            np.random.default_rng(cfg.train.seed).permutation(len(splits.train))[: dc.limit]
        )
        splits = D.Splits(splits.train.subset(keep), splits.test)
    for d in (bank, query):
        if d is not None and (
            d.modality != splits.train.modality or d.channels != splits.train.channels
        ):
            raise DataError(
                f"evaluation data '{d.name}' ({d.modality}, {d.channels} channel(s)) does not match "
                f"the training data ({splits.train.modality}, {splits.train.channels} channel(s)); "
                "give --eval-data of the same kind"
            )
    return splits, bank, query


def _evaluable(splits: D.Splits, ev: D.Splits | None) -> bool:
    s = ev or splits
    return s.train.labelled or (s.test is not None and s.test.labelled)


def build_encoder(
    cfg: C.Config | C.ModelConfig, meta: dict | int, *args: Any, seed: int = 0
) -> nn.Module:
    """The encoder for inputs described by ``meta`` (see :class:`selfsup.modalities.Modality`):
    the modality's backbone behind the input normalisation, initialised under ``seed``.

    ``build_encoder(cfg, meta, seed)``; for images also ``build_encoder(cfg, channels, size, mean,
    std, seed)``.
    """
    if isinstance(meta, dict):
        seed = args[0] if args else seed
    else:
        size, mean, std, seed = args
        meta = {
            "modality": "image",
            "in_channels": meta,
            "image_size": size,
            "mean": list(mean),
            "std": list(std),
        }
    mc = cfg.model if isinstance(cfg, C.Config) else cfg
    mod = get_modality(meta.get("modality", "image"))
    torch.manual_seed(seed)
    return mod.build_encoder(meta, mc)


def encoder_meta(cfg: C.Config, mod: Modality, input_meta: dict) -> dict:
    """What ``encoder.safetensors`` records: enough to rebuild the encoder without the run."""
    backbone = (
        mod.default_backbone(input_meta) if cfg.model.backbone == "auto" else cfg.model.backbone
    )
    return {
        "format": "selfsup-encoder-1",
        "modality": mod.name,
        "backbone": backbone,
        "cifar_stem": cfg.model.cifar_stem,
        "width": cfg.model.width,
        **input_meta,
        "method": cfg.method,
    }


def save_encoder(path: Path, encoder: nn.Module, meta: dict) -> None:
    from safetensors.torch import save_file

    from .io import atomic_path

    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in encoder.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"selfsup": json.dumps(meta)})


def load_encoder(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Load a trained encoder (a run directory or an ``encoder.safetensors``) as a plain module.

    Images: the module takes float images in [0, 1] of shape (N, C, H, W) and returns features
    (N, D); its ``image_size`` attribute is the size it was trained at. Series: float (N, C, T) in
    the data's own units, NaN for missing or padded steps. ``meta`` holds the recorded description
    (``meta["modality"]``, channels, input statistics, ...). Paired runs: a
    :class:`~selfsup.models.two_tower.TwoTower` whose towers ``.a`` and ``.b`` are such encoders
    (each with its own ``meta``, also under ``meta["towers"]``); ``embed_a`` / ``embed_b`` map into
    the shared space and calling it on a pair ``(x_a, x_b)`` returns both towers' features side by side.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    p = V.path_arg(path, "load_encoder's path")
    if p.is_dir():
        p = p / ENCODER_FILE
    if not p.is_file():
        raise RunDirError(
            f"no encoder at '{path}'; give a finished run directory or its {ENCODER_FILE}"
        )
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["selfsup"])
        tensors = load_file(str(p), device="cpu")
        mc = C.ModelConfig(
            backbone=meta["backbone"], cifar_stem=meta["cifar_stem"], width=meta["width"]
        )
        enc = build_encoder(mc, meta, seed=0)
    except (
        SafetensorError,
        OSError,
        ValueError,
        KeyError,
        RuntimeError,
        TypeError,
        RecursionError,
        ConfigError,
    ):  # pydantic's ValidationError is a ValueError
        raise CheckpointError(
            f"'{p}' is not a selfsup encoder file (safetensors with valid metadata)"
        ) from None
    try:
        enc.load_state_dict(tensors)
    except RuntimeError as err:
        raise CheckpointError(
            f"'{p}' does not match its recorded architecture: {str(err).splitlines()[0]}"
        ) from None
    enc.image_size = meta.get("image_size")
    enc.meta = meta
    enc.register_forward_pre_hook(
        V.check_encoder_input
    )  # wrong layout/channels/dtype/range: one line
    return enc.to(device).eval()


def evaluate_encoder(
    encoder: nn.Module,
    bank: D.Samples,
    query: D.Samples,
    meta: dict | int,
    ec: C.EvalConfig,
    device: torch.device,
    protocols: list[str] | None = None,
) -> dict:
    """Run the evaluation protocols on ``encoder``'s features of a labelled (bank, query) pair.

    ``meta``: the encoder's input description (an int is the image size, for images)."""
    if isinstance(meta, int):
        meta = {"image_size": meta}
    return modality_of(bank).evaluate(
        encoder, bank, query, meta, ec, device, protocols or ec.protocols
    )


def evaluate_features(fb, yb, fq, yq, ec: C.EvalConfig, protocols: list[str]) -> dict:
    """Run the feature-only protocols of :mod:`selfsup.eval.protocols` (fine-tuning ones are skipped)."""
    return EP.run(protocols, EP.EvalInputs(fb, yb, fq, yq, ec), skip_unavailable=True)


def evaluate_anomaly(
    encoder: nn.Module,
    bank: D.Samples,
    query: D.Samples,
    meta: dict,
    ec: C.EvalConfig,
    device: torch.device,
) -> dict:
    """The anomaly job (``--normal-label``): ``bank`` holds the normal training samples, ``query`` the
    test split; every query sample of another class is an anomaly. Scores from the encoder's
    features: the recorded method's own ``anomaly_score(bank, query)`` when it has one, and the kNN
    distance (see :func:`selfsup.eval.anomaly.one_class_eval`)."""
    from .eval import extract
    from .eval.anomaly import one_class_eval

    mod = modality_of(bank)

    def prepare(x):
        return mod.prepare(x, meta)

    fb = extract(encoder, mod.to_tensor(bank), prepare, ec.batch_size, device)
    fq = extract(encoder, mod.to_tensor(query), prepare, ec.batch_size, device)
    own = getattr(M.REGISTRY.get(meta.get("method", "")), "anomaly_score", None)
    return one_class_eval(fb, fq, torch.from_numpy(query.y != bank.y[0]), own)


def anomaly_baselines(
    cfg: C.Config, bank: D.Samples, query: D.Samples, meta: dict, device: torch.device
) -> dict:
    """The anomaly job's baselines: a random-init encoder (the same scores), and on the raw
    standardised input the kNN distances (cosine, Euclidean), IsolationForest, LocalOutlierFactor and
    the distance to the mean."""
    from .eval.anomaly import anomaly_scores, classical_scores, one_class_eval

    mod = modality_of(bank)
    is_anomaly = query.y != bank.y[0]
    out = {
        "random_init": evaluate_anomaly(
            build_encoder(cfg, meta, cfg.train.seed).to(device), bank, query, meta, cfg.eval, device
        )
    }
    rb, rq = mod.raw_features(bank, meta), mod.raw_features(query, meta)
    raw = one_class_eval(rb, rq, torch.from_numpy(is_anomaly))
    out["raw_knn"] = {
        "anomaly_auroc": raw["anomaly_knn_auroc"],
        "anomaly_auprc": raw["anomaly_knn_auprc"],
    }
    out["raw_knn_l2"] = {
        "anomaly_auroc": raw["anomaly_knn_l2_auroc"],
        "anomaly_auprc": raw["anomaly_knn_l2_auprc"],
    }
    for name, score in classical_scores(rb, rq, cfg.train.seed).items():
        r = anomaly_scores(score, is_anomaly)
        out[name] = {"anomaly_auroc": r["auroc"], "anomaly_auprc": r["auprc"]}
    return out


def baselines(
    cfg: C.Config, bank: D.Samples, query: D.Samples, meta: dict, device: torch.device
) -> dict:
    """The same protocols on a randomly initialised encoder and on the raw input."""
    mod = modality_of(bank)
    enc = build_encoder(cfg, meta, cfg.train.seed).to(device)
    rnd = evaluate_encoder(enc, bank, query, meta, cfg.eval, device)
    raw = mod.raw_baseline(bank, query, meta, cfg.eval, cfg.eval.protocols)
    return {"random_init": rnd, "raw_input": raw}


def train(
    config: C.Config | dict | str | os.PathLike | None = None,
    *,
    overrides: list[str] | None = None,
    resume: str | os.PathLike | None = None,
    overwrite: bool = False,
    console=None,
    on_epoch_end=None,
    allow_changes: bool = False,
    **options: Any,
) -> Run:
    """Pretrain an encoder, evaluate it beside the baselines, and write a run directory.

    ``resume``: continue that run from its newest good checkpoint; it is refused when its data or
    ``config.yaml`` changed since that checkpoint, unless ``allow_changes`` (recorded in
    ``summary.json``). ``epochs`` may then raise (or keep) the run's total number of epochs.

    Examples
    --------
    >>> run = selfsup.train(method="simclr", data="digits", epochs=2)   # doctest: +SKIP
    >>> run.summary["eval"]["knn_top1"]                                  # doctest: +SKIP
    """
    if allow_changes and resume is None:
        raise ConfigError(
            "--allow-changes only applies to --resume RUN_DIR (it lets a changed run continue)"
        )
    if resume is not None:
        run_dir = require_run(V.path_arg(resume, "resume"))
        stored = C.load_yaml(run_dir / "config.yaml")
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
        cfg = _absolute_paths(
            resolve_config(config, overrides, **options)
        )  # `selfsup eval RUN` from anywhere
        distributed = _join_processes(cfg)
        run_dir = Path(cfg.out) if cfg.out else default_dir(cfg.method, cfg.data.source)
        run_dir = Path(DIST.broadcast_object(str(run_dir)))  # one timestamped name for every rank
        cfg = cfg.model_copy(update={"out": str(run_dir)})
        if DIST.is_main():
            check_new(
                run_dir, overwrite, _protected(cfg)
            )  # before any data is decoded or model built
        lk = None
    try:
        rplan = resume_plan(run_dir, cfg, allow_changes) if resume is not None else None
        device = DIST.local_device(pick_device(cfg.train.device))
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        splits, bank, query = load_data(cfg)  # validate data before touching the run directory
        tr = splits.train
        cfg = fill_unset(
            cfg, modality_of(tr).config_defaults(cfg, tr)
        )  # the modality's defaults, where unset
        if cfg.train.batch_size > len(tr):
            raise ConfigError(
                f"batch size {cfg.train.batch_size} is larger than the {len(tr)} training samples; "
                f"use --batch-size {max(2, len(tr) // 4)} or less"
            )
        V.check_data(cfg, tr, bank)
        parts = assemble(
            cfg, tr, device
        )  # views, encoder and method built before the run directory
        V.check_training(cfg, parts.method, device)
        if resume is None and DIST.is_main():
            lk = prepare_new(run_dir, overwrite, _protected(cfg))
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


def _join_processes(cfg: C.Config) -> bool:
    """Under torchrun: join the process group (True). ``train.nproc > 1`` without it is refused:
    the processes are started by ``selfsup train --nproc N`` or by torchrun, not from Python."""
    if DIST.launched():
        return DIST.init(pick_device(cfg.train.device), cfg.train.dist_timeout)
    if cfg.train.nproc > 1:
        raise ConfigError(
            f"train.nproc={cfg.train.nproc} starts processes from the command line "
            f"(selfsup train --nproc {cfg.train.nproc}); from Python, run the script under "
            f"torchrun --nproc-per-node {cfg.train.nproc}"
        )
    return False


def _absolute_paths(cfg: C.Config) -> C.Config:
    """The config with its data paths made absolute (built-in names stay as they are)."""
    dc = cfg.data
    fix = {
        k: str(Path(v).expanduser().absolute())
        for k, v in (
            ("source", dc.source),
            ("eval_source", dc.eval_source),
            ("cache_dir", dc.cache_dir),
        )
        if v and v not in D.BUILTIN and os.path.exists(os.path.expanduser(v))
    }
    return cfg.model_copy(update={"data": dc.model_copy(update=fix)}) if fix else cfg


def _protected(cfg: C.Config) -> list[str]:
    """Paths a run directory may never be, contain or lie inside: the data and its cache."""
    from .data.cache import cache_root

    return [
        p for p in (cfg.data.source, cfg.data.eval_source, str(cache_root(cfg.data.cache_dir))) if p
    ]


@dataclass
class Parts:
    """Everything a run trains, built (and so validated) before its run directory is created."""

    modality: Modality
    preset: str
    meta: dict
    method: M.Method
    views: nn.Module
    x: Any
    labels: torch.Tensor | None


def assemble(cfg: C.Config, train: D.Samples, device: torch.device) -> Parts:
    """The training split's modality, views, encoder and method, on ``device``."""
    vc = cfg.views
    mod = modality_of(train)
    preset, input_meta = mod.input_meta(cfg, train)
    meta = encoder_meta(cfg, mod, input_meta)
    encoder = build_encoder(cfg, meta, cfg.train.seed)
    x = mod.to_tensor(train)
    # images: the training view size (image_size is the evaluation size, views.eval_size)
    view_size = (meta.get("view_spec") or {}).get("size") or meta.get("image_size")
    ctx = M.Context(
        model=cfg.model,
        n_samples=len(train),
        n_views=vc.n_views,
        extra={
            "batch_size": cfg.train.batch_size,
            "local_crops": vc.local_crops,
            "input_shape": tuple(getattr(x, "shape", (0,))[1:]),
            "image_size": view_size,
        },
    )
    method = M.build(cfg.method, encoder, cfg.loss, ctx).to(device)
    views = mod.build_views(cfg, meta)
    if vc.generator:  # a user's plug-in makes the views instead (checked on two samples below)
        views = GeneratedViews(vc.generator, view_size, vc.n_views)
    if vc.bss:  # one style per batch, applied to the raw batch before any view maker
        views = BatchStyle(views, vc.bss_ratio)
    views = views.to(device)
    x = x.to(device)
    if vc.generator:
        views.check(x[:2])
    if callable(
        getattr(views, "fit", None)
    ):  # views drawing from the training split (tables' marginals)
        views.fit(x)
    labels = None
    if method.uses_labels:
        if train.y is None:
            raise DataError(f"method '{cfg.method}' needs labels but '{train.name}' has none")
        labels = torch.from_numpy(train.y).to(device)
    return Parts(mod, preset, meta, method, views, x, labels)


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
                return evaluate_encoder(m.encoder, bank, query, meta, cfg.eval, device, ["knn"])
            return None

    monitor = _diagnostics_monitor(cfg, method, views, tr, query, mod, device)
    if monitor is not None:
        callback = _with_diagnostics(monitor, callback)

    torch.manual_seed(cfg.train.seed)
    trainer = Trainer(method, views, x, cfg, run_dir, device, labels, callback, console)
    if cfg.train.logger and DIST.is_main():
        from .train.loggers import build_loggers

        trainer.loggers = build_loggers(cfg.train.logger, run_dir, cfg.to_dict())
    trainer.identity = run_identity(
        cfg
    )  # each checkpoint records the config and data it was trained on
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
        summary["eval"] = evaluate_anomaly(method.encoder, bank, query, meta, cfg.eval, device)
        summary["anomaly"] = {
            "normal_label": cfg.data.normal_label,
            "train_normal": len(bank),
            "test_normal": int((query.y == bank.y[0]).sum()),
            "test_anomalies": int((query.y != bank.y[0]).sum()),
            "score": "method" if "anomaly_method_auroc" in summary["eval"] else "knn",
        }
        if cfg.eval.baselines:
            summary["baselines"] = anomaly_baselines(cfg, bank, query, meta, device)
        summary["eval_data"] = {
            "bank": bank.name,
            "bank_size": len(bank),
            "query": query.name,
            "query_size": len(query),
        }
    elif bank is not None:
        summary["eval"] = evaluate_encoder(method.encoder, bank, query, meta, cfg.eval, device)
        if cfg.eval.baselines:
            summary["baselines"] = baselines(cfg, bank, query, meta, device)
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
        _write_own_report(run_dir, console)
    return Run(run_dir, cfg, summary)


def _resume_records(metrics: Path) -> list[dict]:
    """What each ``--resume`` of the run recorded in metrics.jsonl (checkpoint, epochs, allowed changes)."""
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


def _diagnostics_monitor(cfg, method, views, tr, query, mod, device):
    """The end-of-epoch diagnostics on a fixed held-out batch (eval query set, else training data)."""
    if not cfg.eval.diagnostics:
        return None
    from .eval.diagnostics import Monitor

    src = query if query is not None else tr
    n = min(cfg.eval.diagnostics_batch, len(src))
    keep = np.sort(np.random.default_rng(cfg.train.seed).permutation(len(src))[:n])
    xh = mod.to_tensor(src.subset(keep)).to(device)
    return Monitor(method, views, xh, seed=cfg.train.seed)


def _with_diagnostics(monitor, callback):
    def both(epoch, m):
        rec = monitor(m)
        extra = callback(epoch, m) if callback is not None else None
        rec.update(extra or {})
        return rec

    return both


def _write_own_report(run_dir: Path, console) -> None:
    """report.html for a finished run; a missing matplotlib (a core dependency) only skips it, with a note."""
    from .report import ReportError

    try:
        write_run_report([run_dir], run_dir / "report.html")
    except ReportError as err:
        if console is not None:
            console.print(f"report.html skipped: {err}", highlight=False)


def write_run_report(
    run_dirs: list[str | os.PathLike] | list[Path],
    out: str | os.PathLike | None = None,
    embedding: bool = True,
) -> Path:
    """Write ``report.html`` for finished runs (``selfsup report``); returns its path.

    Loads what the report draws (each run's files, and for the embedding map its encoder and
    labelled evaluation data) and hands it to :func:`selfsup.report.write_report`.
    """
    from . import report as R

    R.require_plotting()
    runs = R.load_runs(list(run_dirs))
    maps = []
    for r in runs if embedding else []:
        if not (r["dir"] / ENCODER_FILE).is_file():
            continue
        _, _, query = load_data(C.validate(r["config"]))
        if query is None:
            continue
        enc = load_encoder(r["dir"], "cpu")
        mod, meta = modality_of(query), enc.meta
        maps.append(
            R.embedding_points(
                r["label"],
                enc,
                mod.to_tensor(query),
                query.y,
                lambda x, mod=mod, meta=meta: mod.prepare(x, meta),
            )
        )
    return R.write_report(runs, out, maps)


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
    dev = pick_device(device)
    if isinstance(target, nn.Module):
        if data is None:
            raise ConfigError("evaluating a module needs data=SOURCE with labels")
        cfg = C.validate({"data": {"source": data}, "eval": eval_options})
        enc, run_dir = target, None
    else:
        run_dir = require_run(
            V.path_arg(target, "evaluate's target (a run directory or an nn.Module)")
        )
        d = C.load_yaml(run_dir / "config.yaml")
        if data is not None:
            d = C.merge(d, {"data": {"source": data, "eval_source": None, "limit": None}})
        d = C.merge(d, {"eval": eval_options})
        cfg = C.validate(d)
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
        get_modality(meta.get("modality", "image")).check_eval_data(bank, meta)
    enc = enc.to(dev)
    result = {
        "data": cfg.data.eval_source or cfg.data.source,
        "bank_size": len(bank),
        "query_size": len(query),
        "eval": (
            evaluate_anomaly(enc, bank, query, meta, cfg.eval, dev)
            if cfg.data.normal_label is not None
            else evaluate_encoder(enc, bank, query, meta, cfg.eval, dev, protocols)
        ),
    }
    if write and run_dir is not None:
        write_json(run_dir / "eval.json", result)
    return result
