"""Batch style standardisation (BSS) under a style shift at test time (issue: masked branch /
views).

SimCLR is trained on a class-balanced CIFAR-10 subset in colour, with and without ``views.bss``, at
the same number of epochs; kNN (k=200, T=0.1; bank: the clean training subset) is measured on three
copies of a fixed test subset: unchanged, grayscale, and colour-jittered (brightness, contrast,
saturation 0.6, hue 0.2, every image, a fixed seed).

    python benchmarks/bss_style_shift.py --data /tmp/cifar10 --epochs 15 --json /tmp/bss.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import selfsup
from selfsup.data import load_source
from selfsup.views.image import color_jitter


def balanced(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    return np.sort(
        np.concatenate(
            [rng.choice(np.flatnonzero(y == c), n // len(classes), replace=False) for c in classes]
        )
    )


def shifted(x: np.ndarray, kind: str) -> np.ndarray:
    """uint8 (N, H, W, 3) -> the same images in grayscale or colour-jittered (seeded)."""
    t = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255
    if kind == "gray":
        g = (0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]).unsqueeze(1)
        t = g.expand(-1, 3, -1, -1)
    elif kind == "jitter":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1234)
            t = color_jitter(t, (0.6, 0.6, 0.6, 0.2), 1.0)
    return (t.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default="/tmp/cifar10")
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--ratio", type=float, nargs=2, default=(0.01, 0.5), metavar=("R_MIN", "R_MAX"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--placement",
        default="views",
        choices=["views", "batch"],
        help="BSS on each view batch (the paper's) or on the raw batch once",
    )
    ap.add_argument("--out", default="/tmp/selfsup-bench/bss")
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--variants", default="plain,bss", help="plain, bss or both (run separately in parallel)"
    )
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    s = load_source(a.data, None, False, None)
    tr, te = balanced(s.train.y, a.train, 0), balanced(s.test.y, a.test, 1)
    xtr, ytr, xte, yte = s.train.x[tr], s.train.y[tr], s.test.x[te], s.test.y[te]
    np.savez(out / "train.npz", x=xtr, y=ytr, x_test=xte, y_test=yte)
    evals = {}
    for kind in ("clean", "gray", "jitter"):
        p = out / f"eval_{kind}.npz"
        np.savez(p, x=xtr, y=ytr, x_test=xte if kind == "clean" else shifted(xte, kind), y_test=yte)
        evals[kind] = p
    for bss in [v == "bss" for v in a.variants.split(",")]:
        cfg = {
            "method": "simclr",
            "data": {"source": str(out / "train.npz")},
            "views": {
                "preset": "cifar",
                "image": {"bss": bss, "bss_ratio": list(a.ratio), "bss_placement": a.placement},
            },
            "model": {"backbone": "convnet"},
            "params": {"temperature": 0.2},
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
                "baselines": False,
                "report": False,
                "diagnostics": False,
            },
            "out": str(out / (f"bss-{a.placement}" if bss else "plain")),
        }
        run = selfsup.train(cfg, overwrite=True)
        row = {
            "bss": bss,
            "ratio": list(a.ratio) if bss else None,
            "placement": a.placement if bss else None,
            "epochs": a.epochs,
            "train_s": run.summary["train_time_s"],
        }
        for kind, p in evals.items():
            row[kind] = selfsup.evaluate(
                run.dir, data=str(p), protocols=["knn"], device="cpu", write=False
            )["eval"]["knn_top1"]
        print(json.dumps(row), flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
