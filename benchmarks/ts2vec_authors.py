"""The authors' TS2Vec, unmodified, on the same UCR arrays as ``benchmarks/timeseries.py``: a
check of how far ``selfsup``'s ``ts2vec`` is from the code behind the paper's figures (issue 24).

Needs a checkout of yuezhihan/ts2vec (not shipped, nothing of it is copied here; measured with
commit b0088e1) given as ``--code``; its ``TS2Vec`` class trains (batch 8, lr 1e-3, representation
320, ``max_train_length`` 3000, its 200/600 iteration rule, its seeding through
``utils.init_dl_program``) and its ``tasks/_eval_protocols.fit_svm`` scores the full-series
representations, exactly as its ``train.py --eval`` does for a UCR set. The arrays are sktime's
(``selfsup.data.load_source("ucr:NAME")``), transposed to the authors' (N, T, C); UCR sets such as
ArrowHead are already z-normalised per series, which the authors' ``load_UCR`` keeps. CPU, one
thread, float32.

    python benchmarks/ts2vec_authors.py --code /path/to/ts2vec --sets ArrowHead --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", required=True, help="a checkout of yuezhihan/ts2vec")
    ap.add_argument("--sets", default="ArrowHead")
    ap.add_argument("--seeds", default="0")
    a = ap.parse_args()
    sys.path.insert(0, a.code)
    from ts2vec import TS2Vec  # the authors' module
    from utils import init_dl_program  # the authors' seeding

    # their tasks/__init__.py imports every task (and bottleneck); load the protocols file alone
    spec = importlib.util.spec_from_file_location("protocols", f"{a.code}/tasks/_eval_protocols.py")
    protocols = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(protocols)  # type: ignore[union-attr]

    from selfsup.data import load_source

    for name in a.sets.split(","):
        splits = load_source(f"ucr:{name}")
        xtr = np.asarray(splits.train.x, dtype=np.float64).transpose(0, 2, 1)
        xte = np.asarray(splits.test.x, dtype=np.float64).transpose(0, 2, 1)
        ytr, yte = np.asarray(splits.train.y), np.asarray(splits.test.y)
        for seed in (int(s) for s in a.seeds.split(",")):
            init_dl_program("cpu", seed=seed, max_threads=1)
            t0 = time.process_time()
            model = TS2Vec(
                input_dims=xtr.shape[-1], device="cpu", batch_size=8, lr=0.001,
                output_dims=320, max_train_length=3000,
            )  # fmt: skip
            model.fit(xtr)
            ftr = model.encode(xtr, encoding_window="full_series")
            fte = model.encode(xte, encoding_window="full_series")
            acc = protocols.fit_svm(ftr, ytr).score(fte, yte)
            row = {"set": name, "seed": seed, "authors_svm_top1": round(float(acc), 4)}
            row |= {"iters": model.n_iters, "cpu_s": round(time.process_time() - t0, 1)}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
