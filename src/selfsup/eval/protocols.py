"""The protocol registry: ``selfsup eval RUN --protocol knn,linear,fewshot,cluster``.

A protocol is a function of an :class:`EvalInputs` returning flat ``{metric: number}``. Protocols
that fine-tune need the encoder and the images; on features alone (the raw-pixel baseline) they are
skipped. ``knn`` and ``linear`` keep their historical keys (``knn_top1``, ``linear_top1``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError


@dataclass
class EvalInputs:
    """Frozen features of a labelled (bank, query) pair, and optionally the encoder and the raw
    samples (``bank_x``/``query_x``, as the modality's ``to_tensor`` gives them) with ``prepare``,
    which maps a raw batch to the encoder's input (an int: the image size, for images), and
    optionally a labelled validation set's features (``val``/``val_y``: where the data names one,
    as a graph's val mask) for protocols that choose an epoch on it."""

    bank: torch.Tensor
    bank_y: torch.Tensor
    query: torch.Tensor
    query_y: torch.Tensor
    ec: Any  # selfsup.config.EvalConfig
    encoder: nn.Module | None = None
    bank_x: np.ndarray | torch.Tensor | None = None
    query_x: np.ndarray | torch.Tensor | None = None
    prepare: Callable[[torch.Tensor], torch.Tensor] | int | None = None
    device: str | torch.device = "cpu"
    val: torch.Tensor | None = None
    val_y: torch.Tensor | None = None


@dataclass(frozen=True)
class Protocol:
    name: str
    fn: Callable[[EvalInputs], dict]
    needs_encoder: bool = False
    help: str = ""


PROTOCOLS: dict[str, Protocol] = {}


def register(name: str, needs_encoder: bool = False, help: str = ""):
    def deco(fn):
        PROTOCOLS[name] = Protocol(name, fn, needs_encoder, help)
        return fn

    return deco


def parse(names: str | list[str]) -> list[str]:
    """Validate a comma-separated string (or list) of protocol names."""
    items = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    items = [n for n in items if n]
    if not items:
        raise ConfigError(
            f"no evaluation protocol given ({names!r}); name at least one of: "
            f"{', '.join(PROTOCOLS)}"
        )
    bad = [n for n in items if n not in PROTOCOLS]
    if bad:
        raise ConfigError(
            f"unknown evaluation protocol '{','.join(bad)}'; choose from: {', '.join(PROTOCOLS)}"
        )
    return items


def run(names: list[str], inputs: EvalInputs, skip_unavailable: bool = False) -> dict[str, float]:
    """Run the named protocols; those needing an encoder are skipped (if asked) when there is
    none."""
    out: dict[str, float] = {}
    for name in parse(names):
        p = PROTOCOLS[name]
        if p.needs_encoder and (inputs.encoder is None or inputs.bank_x is None):
            if skip_unavailable:
                continue
            raise ConfigError(
                f"protocol '{name}' fine-tunes the encoder, so it needs the encoder and the "
                "raw samples, not only features"
            )
        out.update(p.fn(inputs))
    return out


@register("knn", help="weighted kNN at eval.knn_k / eval.knn_t: knn_top1")
def _knn(i: EvalInputs) -> dict:
    from .knn import knn_accuracy

    return knn_accuracy(
        i.bank,
        i.bank_y,
        i.query,
        i.query_y,
        i.ec.knn_k,
        i.ec.knn_t,
        center=getattr(i.ec, "knn_center", True),
    )


@register(
    "knn_sweep",
    help="weighted kNN, (k, t) of eval.knn_sweep_k x eval.knn_sweep_t chosen by "
    "leave-one-out on the bank, then the query scored once: top-1, top-5",
)
def _knn_sweep(i: EvalInputs) -> dict:
    from .knn import knn_sweep

    r = knn_sweep(
        i.bank,
        i.bank_y,
        i.query,
        i.query_y,
        i.ec.knn_sweep_k,
        i.ec.knn_sweep_t,
        center=getattr(i.ec, "knn_center", True),
    )
    return {
        "knn_sweep_top1": r["top1"],
        "knn_sweep_top5": r["top5"],
        "knn_sweep_k": r["k"],
        "knn_sweep_t": r["t"],
        "knn_sweep_bank_loo_top1": r["bank_top1"],
    }


@register("linear", help="L-BFGS logistic regression on standardised features: linear_top1")
def _linear(i: EvalInputs) -> dict:
    from .linear import linear_accuracy

    return linear_accuracy(
        i.bank, i.bank_y, i.query, i.query_y, i.ec.linear_l2, i.ec.linear_max_iter
    )


@register(
    "node",
    help="graphs: the linear probe (as linear) fitted on the bank (train-mask nodes), scored on "
    "the query (test-mask nodes): node_top1",
)
def _node(i: EvalInputs) -> dict:
    from .linear import linear_accuracy

    r = linear_accuracy(i.bank, i.bank_y, i.query, i.query_y, i.ec.linear_l2, i.ec.linear_max_iter)
    return {"node_top1": r["linear_top1"]}


@register(
    "node_grace",
    help="graphs: GRACE's probe (features L2-normalised per node, one-vs-rest liblinear logistic "
    "regression, C from 2^-10..2^9 by 5-fold cross-validation on the bank), scored on the query: "
    "node_grace_top1",
)
def _node_grace(i: EvalInputs) -> dict:
    from .graph import grace_probe

    n = len(i.bank)
    f = torch.cat([i.bank, i.query])
    y = torch.cat([i.bank_y, i.query_y])
    tr, te = torch.arange(n), torch.arange(n, len(f))
    return grace_probe(f, y, tr, te, seed=getattr(i.ec, "seed", 0))


@register(
    "node_adam",
    help="graphs: GraphMAE's probe (one linear layer on the features as they are, Adam lr 0.01, "
    "weight decay 1e-4, 300 full-batch epochs on the bank), the query's accuracy at the last epoch "
    "of best accuracy on the validation nodes (a val mask; without one, the final epoch): "
    "node_adam_top1",
)
def _node_adam(i: EvalInputs) -> dict:
    from .graph import adam_probe

    f, y = [i.bank, i.query], [i.bank_y, i.query_y]
    nb, nq = len(i.bank), len(i.query)
    tr, te, va = torch.arange(nb), torch.arange(nb, nb + nq), None
    if i.val is not None and i.val_y is not None:  # an empty one counts as none in the probe
        f, y, va = f + [i.val], y + [i.val_y], torch.arange(nb + nq, nb + nq + len(i.val))
    return adam_probe(torch.cat(f), torch.cat(y), tr, va, te, seed=getattr(i.ec, "seed", 0))


@register("linear_sgd", help="SGD linear probe (standard protocol), with and without normalisation")
def _linear_sgd(i: EvalInputs) -> dict:
    from .linear_sgd import linear_probe_sgd

    out = {}
    for norm, key in ((True, "linear_sgd"), (False, "linear_sgd_raw")):
        r = linear_probe_sgd(
            i.bank,
            i.bank_y,
            i.query,
            i.query_y,
            normalize=norm,
            epochs=i.ec.sgd_epochs,
            lr=i.ec.sgd_lr,
            seed=i.ec.seed,
        )
        out[f"{key}_top1"], out[f"{key}_top5"] = r["top1"], r["top5"]
    return out


@register(
    "svm", help="TS2Vec's protocol: RBF SVM, C cross-validated on the bank (else inf): svm_top1"
)
def _svm(i: EvalInputs) -> dict:
    from .svm import svm_accuracy

    return svm_accuracy(i.bank, i.bank_y, i.query, i.query_y)


@register(
    "fewshot", needs_encoder=True, help="fine-tune encoder + head on 1% and 10% of the labels"
)
def _fewshot(i: EvalInputs) -> dict:
    from .fewshot import few_label_eval

    return few_label_eval(
        i.encoder,
        i.bank_x,
        i.bank_y.numpy(),
        i.query_x,
        i.query_y.numpy(),
        i.prepare,
        i.ec.fewshot_fractions,
        i.ec.fewshot_steps,
        i.ec.seed,
        i.device,
    )


@register("cluster", help="k-means on query embeddings: cluster_nmi, cluster_ari")
def _cluster(i: EvalInputs) -> dict:
    from .cluster import cluster_scores

    r = cluster_scores(i.query, i.query_y, seed=i.ec.seed)
    return {"cluster_nmi": r["nmi"], "cluster_ari": r["ari"]}


@register(
    "retrieval", help="query -> bank, hit if a top-k neighbour shares the label: recall@1/5/10"
)
def _retrieval(i: EvalInputs) -> dict:
    from .retrieval import label_recall

    return {
        f"retrieval_{k}": v for k, v in label_recall(i.query, i.query_y, i.bank, i.bank_y).items()
    }


@register("anomaly", help="one-class: each class normal in turn, kNN distance score: AUROC, AUPRC")
def _anomaly(i: EvalInputs) -> dict:
    from .anomaly import one_class_auroc

    r = one_class_auroc(i.bank, i.bank_y, i.query, i.query_y)
    return {"anomaly_auroc": r["auroc"], "anomaly_auprc": r["auprc"]}
