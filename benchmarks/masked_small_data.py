"""Masked vs contrastive pretraining on small data at the same CPU budget (issue: masked branch).

The medical small-data paper's question at CPU scale: with only 5,000 training images (a fixed,
class-balanced CIFAR-10 subset), which pretraining gives the best few-label accuracy when the
encoder is fine-tuned on 1%, 10% and 100% of those images' labels? Each method gets the same
training wall-clock budget (epochs chosen from a short timing run), then the `fewshot` protocol
(encoder + linear head fine-tuned, AdamW, cosine, ``--ft-steps`` steps of 64) on the subset's labels,
evaluated on a fixed class-balanced set of ``--test`` CIFAR-10 test images; kNN (k=200) as well.
Randomly initialised encoders of both backbones are fine-tuned the same way as the reference.

    python benchmarks/masked_small_data.py --data /tmp/cifar10 --budget 300 --json /tmp/masked.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml

import selfsup
from selfsup import config as C
from selfsup.data import load_source

ROOT = Path(__file__).resolve().parents[1]
#: method -> (backbone, views overrides); the loss section comes from configs/<method>-cifar10.yaml
SETUPS = {
    "simclr": ("convnet", {"preset": "cifar"}),
    "spark": ("convnet", {"preset": "cifar", "jitter_p": 0.0, "grayscale_p": 0.0}),
    "mae": ("vit_tiny", {"preset": "cifar", "jitter_p": 0.0, "grayscale_p": 0.0}),
    "cmae": ("vit_tiny", {"preset": "cifar", "jitter_p": 0.0, "grayscale_p": 0.0}),
}


def balanced(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per = n // len(classes)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), per, replace=False) for c in classes]))


def make_subset(data: str, n_train: int, n_test: int, out: Path) -> Path:
    s = load_source(data, None, False, None)
    tr, te = balanced(s.train.y, n_train, 0), balanced(s.test.y, n_test, 1)
    np.savez(out, x=s.train.x[tr], y=s.train.y[tr], x_test=s.test.x[te], y_test=s.test.y[te])
    return out


def loss_of(name: str) -> dict:
    p = ROOT / "configs" / f"{name}-cifar10.yaml"
    return dict((yaml.safe_load(p.read_text()) or {}).get("loss") or {}) if p.is_file() else {}


def config(name: str, npz: Path, epochs: int, a, out: Path) -> dict:
    backbone, views = SETUPS[name]
    return {"method": name, "data": {"source": str(npz)}, "views": views, "loss": loss_of(name),
            "model": {"backbone": backbone},
            "optim": {"name": "adamw", "lr": a.lr, "warmup_epochs": min(2.0, epochs / 10)},
            "train": {"epochs": epochs, "batch_size": a.batch_size, "seed": 0, "precision": a.precision,
                      "progress": "none", "checkpoint_every": 1000},
            "eval": {"protocols": ["knn", "fewshot"], "fewshot_fractions": [0.01, 0.1, 1.0],
                     "fewshot_steps": a.ft_steps, "baselines": False, "report": False, "diagnostics": False},
            "out": str(out / name)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/tmp/cifar10")
    ap.add_argument("--methods", default="simclr,mae,spark,cmae")
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--budget", type=float, default=300, help="training seconds per method")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ft-steps", type=int, default=200)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="/tmp/selfsup-bench/masked")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    npz = make_subset(a.data, a.train, a.test, out / "cifar_subset.npz")
    rows = []
    for name in a.methods.split(","):
        probe = selfsup.train(config(name, npz, 1, a, out / "probe"), overwrite=True,
                              overrides=["eval.protocols=[knn]"])
        per_epoch = probe.summary["train_time_s"]
        epochs = max(1, int(round(a.budget / max(per_epoch, 1e-9))))
        run = selfsup.train(config(name, npz, epochs, a, out), overwrite=True)
        s, e = run.summary, run.summary["eval"]
        row = {"method": name, "backbone": SETUPS[name][0], "epochs": epochs, "train_s": s["train_time_s"],
               "knn": e["knn_top1"], **{k: e[f"fewshot_{k}pct_top1"] for k in ("1", "10", "100")}}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(row) + "\n")
    # randomly initialised encoders, fine-tuned the same way (no pretraining)
    from selfsup.api import build_encoder, evaluate_encoder, load_data, pick_device

    for backbone in sorted({SETUPS[n][0] for n in a.methods.split(",")}):
        cfg = C.validate(config("simclr", npz, 1, a, out) | {"model": {"backbone": backbone}})
        splits, bank, query = load_data(cfg)
        from selfsup.eval import channel_stats

        mean, std = channel_stats(splits.train.x)
        enc = build_encoder(cfg, 3, 32, mean, std, 0)
        e = evaluate_encoder(enc, bank, query, 32, cfg.eval, pick_device("cpu"))
        row = {"method": f"random init ({backbone})", "backbone": backbone, "epochs": 0, "train_s": 0,
               "knn": e["knn_top1"], **{k: e[f"fewshot_{k}pct_top1"] for k in ("1", "10", "100")}}
        print(json.dumps(row), flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
