"""TS2Vec's classification protocol: an RBF-kernel SVM on frozen instance representations.

Yue et al., AAAI 2022; the authors' ``tasks/_eval_protocols.py`` (``fit_svm``): ``SVC(kernel="rbf",
gamma="scale")`` on the features as they are (no standardisation). ``C`` is chosen by 5-fold
cross-validated accuracy on the training (bank) split over {1e-4, 1e-3, ..., 1e4, inf} when there
are enough samples (at least 50, and at least 5 per class on average); otherwise ``C = inf`` (a
hard margin), as the authors do. Above 10,000 bank samples the search runs on a stratified subset of
10,000 (seed 0) and, as the authors' ``grid_search.best_estimator_``, the SVM kept is the one fitted
on that subset (not refitted on the whole bank).

A hard margin never converges on a bank that holds one feature vector under two labels (duplicate
or constant inputs, a collapsed encoder), so libsvm's iterations are capped (:data:`MAX_ITER`): the
fit then stops where it is, as any soft-margin solver would, instead of running forever.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

#: libsvm's iteration cap (a converging fit on 10,000 samples needs far fewer)
MAX_ITER = 1_000_000

C_GRID = [1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000, 10000, np.inf]


def fit_svm(x: np.ndarray, y: np.ndarray, max_samples: int = 10000) -> Any:
    """The fitted ``SVC`` of TS2Vec's protocol: ``C = inf`` on (x, y) when there are fewer than 50
    samples or 5 per class, else the best of :data:`C_GRID` by 5-fold cross-validation, refitted on
    the samples searched: all of them, or a stratified subset of ``max_samples`` (seed 0) when there
    are more (the authors' ``fit_svm`` returns that subset's ``best_estimator_``)."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
    from sklearn.svm import SVC

    n, k = len(y), len(np.unique(y))
    if n // k < 5 or n < 50:
        return SVC(kernel="rbf", gamma="scale", C=np.inf, max_iter=MAX_ITER).fit(x, y)
    if n > max_samples:
        x, _, y, _ = train_test_split(x, y, train_size=max_samples, random_state=0, stratify=y)
    grid = GridSearchCV(
        SVC(kernel="rbf", gamma="scale", max_iter=MAX_ITER),
        {"C": C_GRID},
        cv=StratifiedKFold(5),
        n_jobs=1,
    )
    grid.fit(x, y)
    return grid.best_estimator_


def choose_c(x: np.ndarray, y: np.ndarray, max_samples: int = 10000) -> float:
    """``C`` of the SVM that :func:`fit_svm` keeps for (x, y)."""
    return float(fit_svm(x, y, max_samples).C)


def svm_accuracy(
    fb: torch.Tensor, yb: torch.Tensor, fq: torch.Tensor, yq: torch.Tensor, max_samples: int = 10000
) -> dict:
    """``{"svm_top1": accuracy}`` of the RBF SVM fitted on the bank (:func:`fit_svm`), scored on
    the query."""
    import warnings

    xb, xq = fb.double().numpy(), fq.double().numpy()
    ybn, yqn = yb.numpy(), yq.numpy()
    if len(np.unique(ybn)) < 2:
        return {"svm_top1": float(np.mean(yqn == ybn[0]))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes with fewer members than folds; convergence notes
        clf = fit_svm(xb, ybn, max_samples)
    return {"svm_top1": float(np.mean(clf.predict(xq) == yqn))}
