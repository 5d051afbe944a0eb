"""Masked vs contrastive pretraining on small data at the same CPU budget (issue: masked branch).

The medical small-data paper's question at CPU scale: with only 5,000 training images (a fixed,
class-balanced CIFAR-10 subset), which pretraining gives the best few-label accuracy when the
encoder is fine-tuned on 1%, 10% and 100% of those images' labels? Each method gets the same
training budget in CPU seconds (the machine is shared, so process CPU time is fairer than wall
time): a probe run of 2 epochs over ``--probe`` images measures the CPU cost of one training sample,
and the epochs are set so that ``epochs * 5,000 * cost`` is about ``--budget``. Then the `fewshot`
protocol (encoder + linear head fine-tuned, AdamW, cosine, ``--ft-steps`` steps of 64) on the
subset's labels, evaluated on a fixed class-balanced set of ``--test`` CIFAR-10 test images; kNN
(k=200) as well. Randomly initialised encoders of both backbones are fine-tuned the same way as the
reference.

    python benchmarks/masked_small_data.py --data /tmp/cifar10 --budget 300 --threads 1 \\
        --json /tmp/masked.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

import selfsup
from selfsup import config as conf
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
    return np.sort(
        np.concatenate([rng.choice(np.flatnonzero(y == c), per, replace=False) for c in classes])
    )


def make_subset(data: str, n_train: int, n_test: int, out: Path) -> Path:
    s = load_source(data, None, False, None)
    tr, te = balanced(s.train.y, n_train, 0), balanced(s.test.y, n_test, 1)
    np.savez(out, x=s.train.x[tr], y=s.train.y[tr], x_test=s.test.x[te], y_test=s.test.y[te])
    return out


def recorder(store: list, start: float):
    """An on_epoch_end callback appending the process CPU time (minus ``start``) at each epoch
    end."""

    def cb(epoch, method):
        store.append(time.process_time() - start)

    return cb


def loss_of(name: str) -> dict:
    p = ROOT / "configs" / f"{name}-cifar10.yaml"
    return dict((yaml.safe_load(p.read_text()) or {}).get("loss") or {}) if p.is_file() else {}


def config(name: str, npz: Path, epochs: int, a, out: Path) -> dict:
    backbone, views = SETUPS[name]
    return {
        "method": name,
        "data": {"source": str(npz)},
        "views": views,
        "loss": loss_of(name),
        "model": {"backbone": backbone},
        "optim": {"name": "adamw", "lr": a.lr, "warmup_epochs": min(2.0, epochs / 10)},
        "train": {
            "epochs": epochs,
            "batch_size": a.batch_size,
            "seed": 0,
            "precision": a.precision,
            "progress": "none",
            "checkpoint_every": 1000,
        },
        "eval": {
            "protocols": ["knn", "fewshot"],
            "fewshot_fractions": [0.01, 0.1, 1.0],
            "fewshot_steps": a.ft_steps,
            "baselines": False,
            "report": False,
            "diagnostics": False,
        },
        "out": str(out / name),
    }


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default="/tmp/cifar10")
    ap.add_argument("--methods", default="simclr,mae,spark,cmae")
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--budget", type=float, default=300, help="training CPU seconds per method")
    ap.add_argument("--probe", type=int, default=1024, help="images of the timing run")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ft-steps", type=int, default=100)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="/tmp/selfsup-bench/masked")
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--random-init",
        choices=["yes", "no", "only"],
        default="yes",
        help="also fine-tune randomly initialised encoders (only: nothing else)",
    )
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    npz = make_subset(a.data, a.train, a.test, out / "cifar_subset.npz")
    rows = []
    for name in a.methods.split(",") if a.random_init != "only" else []:
        marks: list[float] = []
        selfsup.train(
            config(name, npz, 2, a, out / "probe"),
            overwrite=True,
            overrides=["eval.protocols=[knn]", f"data.limit={a.probe}"],
            on_epoch_end=recorder(marks, 0.0),
        )
        cost = (marks[1] - marks[0]) / (
            a.probe // a.batch_size * a.batch_size
        )  # CPU s per training sample
        epochs = max(1, int(round(a.budget / (cost * a.train))))
        c0 = time.process_time()
        cpu: list[float] = []
        run = selfsup.train(
            config(name, npz, epochs, a, out), overwrite=True, on_epoch_end=recorder(cpu, c0)
        )
        s, e = run.summary, run.summary["eval"]
        row = {
            "method": name,
            "backbone": SETUPS[name][0],
            "epochs": epochs,
            "train_s": s["train_time_s"],
            "train_cpu_s": round(cpu[-1], 1),
            "knn": e["knn_top1"],
            **{k: e[f"fewshot_{k}pct_top1"] for k in ("1", "10", "100")},
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(row) + "\n")
    # randomly initialised encoders, fine-tuned the same way (no pretraining)
    from selfsup.evaluation import evaluate_encoder
    from selfsup.parts import build_encoder, load_data
    from selfsup.validate import device as pick_device

    for backbone in (
        sorted({SETUPS[n][0] for n in a.methods.split(",")}) if a.random_init != "no" else []
    ):
        cfg = conf.validate(config("simclr", npz, 1, a, out) | {"model": {"backbone": backbone}})
        splits, bank, query = load_data(cfg)
        from selfsup.eval import channel_stats

        mean, std = channel_stats(splits.train.x)
        meta = {"modality": "image", "in_channels": 3, "image_size": 32}
        meta.update(mean=list(mean), std=list(std))
        enc = build_encoder(cfg, meta, 0)
        e = evaluate_encoder(enc, bank, query, meta, cfg.eval, pick_device("cpu"))
        row = {
            "method": f"random init ({backbone})",
            "backbone": backbone,
            "epochs": 0,
            "train_s": 0,
            "train_cpu_s": 0,
            "knn": e["knn_top1"],
            **{k: e[f"fewshot_{k}pct_top1"] for k in ("1", "10", "100")},
        }
        print(json.dumps(row), flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
