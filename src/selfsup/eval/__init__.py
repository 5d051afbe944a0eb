"""Evaluation protocols; each works on any encoder that maps images to features."""

from .anomaly import anomaly_scores, one_class_auroc
from .cluster import cluster_scores
from .features import channel_stats, extract, raw_features
from .fewshot import few_label_eval, few_label_indices, finetune
from .knn import knn_accuracy, knn_predict, knn_sweep
from .linear import fit_logistic, linear_accuracy
from .linear_sgd import linear_probe_sgd
from .protocols import PROTOCOLS, EvalInputs
from .protocols import run as run_protocols
from .retrieval import label_recall, paired_recall

__all__ = [
    "extract",
    "raw_features",
    "channel_stats",
    "knn_accuracy",
    "knn_predict",
    "knn_sweep",
    "fit_logistic",
    "linear_accuracy",
    "linear_probe_sgd",
    "few_label_indices",
    "few_label_eval",
    "finetune",
    "cluster_scores",
    "paired_recall",
    "label_recall",
    "anomaly_scores",
    "one_class_auroc",
    "PROTOCOLS",
    "EvalInputs",
    "run_protocols",
]
