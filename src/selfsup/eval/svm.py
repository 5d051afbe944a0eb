"""TS2Vec's classification protocol: an RBF-kernel SVM on frozen instance representations.

Yue et al., AAAI 2022; the authors' ``tasks/_eval_protocols.py`` (``fit_svm``): ``SVC(kernel="rbf",
gamma="scale")`` on the features as they are (no standardisation). ``C`` is chosen by 5-fold
cross-validated accuracy on the training (bank) split over {1e-4, 1e-3, ..., 1e4, inf} when there
are enough samples (at least 50, and at least 5 per class on average); otherwise ``C = inf`` (a
hard margin), as the authors do. Above 10,000 bank samples the search runs on a stratified subset of
10,000 (seed 0) and the chosen SVM is refitted on the whole bank.

A hard margin never converges on a bank that holds one feature vector under two labels (duplicate
or constant inputs, a collapsed encoder), so libsvm's iterations are capped (:data:`MAX_ITER`): the
fit then stops where it is, as any soft-margin solver would, instead of running forever.
"""

from __future__ import annotations

import numpy as np
import torch

#: libsvm's iteration cap (a converging fit on 10,000 samples needs far fewer)
MAX_ITER = 1_000_000

C_GRID = [1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000, 10000, np.inf]


def choose_c(x: np.ndarray, y: np.ndarray, max_samples: int = 10000) -> float:
    """``C`` of the SVM: cross-validated on (x, y) when there are enough samples, else inf."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
    from sklearn.svm import SVC

    n, k = len(y), len(np.unique(y))
    if n // k < 5 or n < 50:
        return float("inf")
    if n > max_samples:
        x, _, y, _ = train_test_split(x, y, train_size=max_samples, random_state=0, stratify=y)
    grid = GridSearchCV(
        SVC(kernel="rbf", gamma="scale", max_iter=MAX_ITER),
        {"C": C_GRID},
        cv=StratifiedKFold(5),
        n_jobs=1,
    )
    grid.fit(x, y)
    return float(grid.best_params_["C"])


def svm_accuracy(fb: torch.Tensor, yb: torch.Tensor, fq: torch.Tensor, yq: torch.Tensor) -> dict:
    """``{"svm_top1": accuracy}`` of the RBF SVM fitted on the bank, scored on the query."""
    import warnings

    from sklearn.svm import SVC

    xb, xq = fb.double().numpy(), fq.double().numpy()
    ybn, yqn = yb.numpy(), yq.numpy()
    if len(np.unique(ybn)) < 2:
        return {"svm_top1": float(np.mean(yqn == ybn[0]))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes with fewer members than folds; convergence notes
        c = choose_c(xb, ybn)
        clf = SVC(kernel="rbf", gamma="scale", C=c, max_iter=MAX_ITER).fit(xb, ybn)
    return {"svm_top1": float(np.mean(clf.predict(xq) == yqn))}
