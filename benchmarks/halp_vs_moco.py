"""HaLP vs its base method (MoCo v2) at the same number of steps (issue: masked branch / views).

Both train the small ConvNet with the same views, optimiser, queue and epochs on a class-balanced
CIFAR-10 subset (or on the built-in digits with ``--data digits``); HaLP adds its synthetic latent
positives (prototypes refreshed every ``--update-every`` steps once the queue is full). kNN top-1
(k=200, T=0.1; k=20 on digits) on a fixed test subset, and training samples/s.

    python benchmarks/halp_vs_moco.py --data /tmp/cifar10 --epochs 15 --json /tmp/halp.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import selfsup
from selfsup.data import load_source


def balanced(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    return np.sort(
        np.concatenate(
            [rng.choice(np.flatnonzero(y == c), n // len(classes), replace=False) for c in classes]
        )
    )


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default="/tmp/cifar10")
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--queue", type=int, default=2048)
    ap.add_argument("--update-every", type=int, default=40)
    ap.add_argument("--mu", type=float, default=1.0)
    ap.add_argument("--hardness", type=float, default=0.8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="/tmp/selfsup-bench/halp")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.data == "digits":
        source, knn_k = "digits", 20
    else:
        s = load_source(a.data, None, False, None)
        tr, te = balanced(s.train.y, a.train, 0), balanced(s.test.y, a.test, 1)
        source, knn_k = str(out / "subset.npz"), 200
        np.savez(source, x=s.train.x[tr], y=s.train.y[tr], x_test=s.test.x[te], y_test=s.test.y[te])
    base = {"temperature": 0.2, "queue_size": a.queue, "momentum": 0.99, "bn_splits": 4}
    for name in ("moco", "halp"):
        loss = dict(base)
        if name == "halp":
            loss.update(
                {
                    "mu": a.mu,
                    "hardness": a.hardness,
                    "update_every": a.update_every,
                    "n_positives": 16,
                }
            )
        cfg = {
            "method": name,
            "data": {"source": source},
            "loss": loss,
            "model": {"backbone": "convnet"},
            "optim": {"name": "adamw", "lr": 0.001, "warmup_epochs": 1},
            "train": {
                "epochs": a.epochs,
                "batch_size": a.batch_size,
                "seed": 0,
                "progress": "none",
                "checkpoint_every": 1000,
            },
            "eval": {
                "protocols": ["knn"],
                "knn_k": knn_k,
                "baselines": False,
                "report": False,
                "diagnostics": False,
            },
            "out": str(out / name),
        }
        run = selfsup.train(cfg, overwrite=True)
        s_ = run.summary
        row = {
            "method": name,
            "data": a.data if a.data == "digits" else f"cifar10[{a.train}]",
            "epochs": a.epochs,
            "knn_top1": s_["eval"]["knn_top1"],
            "samples_per_s": round(s_["steps"] * a.batch_size / max(s_["train_time_s"], 1e-9), 1),
            "train_s": s_["train_time_s"],
        }
        print(json.dumps(row), flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
