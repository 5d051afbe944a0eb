"""Evaluation protocols; each works on any encoder that maps images to features."""

from .features import channel_stats, extract, raw_features
from .knn import knn_accuracy, knn_predict
from .linear import fit_logistic, linear_accuracy

__all__ = ["extract", "raw_features", "channel_stats", "knn_accuracy", "knn_predict", "fit_logistic",
           "linear_accuracy"]
