"""Evaluating an encoder of a run: the protocols on its features, the anomaly job, the baselines
(random init, raw input), the end-of-epoch diagnostics and the run's report. Each works on any
modality through :class:`selfsup.modalities.Modality`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import config as conf
from . import data as sources
from . import methods
from .encoder_io import ENCODER_FILE, load_encoder
from .eval import protocols as EP
from .modalities import modality_of
from .parts import build_encoder, load_data


def evaluate_encoder(
    encoder: nn.Module,
    bank: sources.Samples,
    query: sources.Samples,
    meta: dict,
    ec: conf.EvalConfig,
    device: torch.device,
    protocols: list[str] | None = None,
) -> dict:
    """Run the evaluation protocols on ``encoder``'s features of a labelled (bank, query) pair;
    ``meta`` is the encoder's input description."""
    return modality_of(bank).evaluate(
        encoder, bank, query, meta, ec, device, protocols or ec.protocols
    )


def evaluate_features(fb, yb, fq, yq, ec: conf.EvalConfig, protocols: list[str]) -> dict:
    """Run the feature-only protocols of :mod:`selfsup.eval.protocols` (fine-tuning ones are
    skipped)."""
    return EP.run(protocols, EP.EvalInputs(fb, yb, fq, yq, ec), skip_unavailable=True)


def evaluate_anomaly(
    encoder: nn.Module,
    bank: sources.Samples,
    query: sources.Samples,
    meta: dict,
    ec: conf.EvalConfig,
    device: torch.device,
) -> dict:
    """The anomaly job (``--normal-label``): ``bank`` holds the normal training samples, ``query``
    the test split; every query sample of another class is an anomaly. Scores from the encoder's
    features: the recorded method's own ``anomaly_score(bank, query)`` when it has one, and the kNN
    distance (see :func:`selfsup.eval.anomaly.one_class_eval`)."""
    from .eval import extract
    from .eval.anomaly import one_class_eval

    mod = modality_of(bank)

    def prepare(x):
        return mod.prepare(x, meta)

    fb = extract(encoder, mod.to_tensor(bank), prepare, ec.batch_size, device)
    fq = extract(encoder, mod.to_tensor(query), prepare, ec.batch_size, device)
    own = getattr(methods.REGISTRY.get(meta.get("method", "")), "anomaly_score", None)
    return one_class_eval(fb, fq, torch.from_numpy(query.y != bank.y[0]), own)


def anomaly_baselines(
    cfg: conf.Config,
    bank: sources.Samples,
    query: sources.Samples,
    meta: dict,
    device: torch.device,
) -> dict:
    """The anomaly job's baselines: a random-init encoder (the same scores), and on the raw
    standardised input the kNN distances (cosine, Euclidean), IsolationForest, LocalOutlierFactor
    and the distance to the mean."""
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
    cfg: conf.Config,
    bank: sources.Samples,
    query: sources.Samples,
    meta: dict,
    device: torch.device,
) -> dict:
    """The same protocols on a randomly initialised encoder and on the raw input."""
    mod = modality_of(bank)
    enc = build_encoder(cfg, meta, cfg.train.seed).to(device)
    rnd = evaluate_encoder(enc, bank, query, meta, cfg.eval, device)
    raw = mod.raw_baseline(bank, query, meta, cfg.eval, cfg.eval.protocols)
    return {"random_init": rnd, "raw_input": raw}


def diagnostics_monitor(cfg, method, views, tr, query, mod, device):
    """The end-of-epoch diagnostics on a fixed held-out batch (eval query set, else training
    data)."""
    if not cfg.eval.diagnostics:
        return None
    from .eval.diagnostics import Monitor

    src = query if query is not None else tr
    n = min(cfg.eval.diagnostics_batch, len(src))
    keep = np.sort(np.random.default_rng(cfg.train.seed).permutation(len(src))[:n])
    xh = mod.to_tensor(src.subset(keep)).to(device)
    return Monitor(method, views, xh, seed=cfg.train.seed)


def with_diagnostics(monitor, callback, every: int = 1, epochs: int = 0):
    """``callback`` with the diagnostics ``monitor``'s record added every ``every`` epochs and at
    epoch ``epochs`` (the last)."""

    def both(epoch, m):
        rec = monitor(m) if epoch % every == 0 or epoch == epochs else {}
        extra = callback(epoch, m) if callback is not None else None
        rec.update(extra or {})
        return rec

    return both


def write_own_report(run_dir: Path, console) -> None:
    """report.html for a finished run; a missing matplotlib (a core dependency) only skips it, with
    a note."""
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
    from . import report

    report.require_plotting()
    runs = report.load_runs(list(run_dirs))
    maps = []
    for r in runs if embedding else []:
        if not (r["dir"] / ENCODER_FILE).is_file():
            continue
        _, _, query = load_data(conf.validate(r["config"]))
        if query is None or not query.labelled:  # the map is coloured by class
            continue
        enc = load_encoder(r["dir"], "cpu")
        mod, meta = modality_of(query), enc.meta
        maps.append(
            report.embedding_points(
                r["label"],
                enc,
                mod.to_tensor(query),
                query.y,
                lambda x, mod=mod, meta=meta: mod.prepare(x, meta),
            )
        )
    return report.write_report(runs, out, maps)
