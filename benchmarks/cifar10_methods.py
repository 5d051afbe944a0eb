"""Every method on CIFAR-10 at the same CPU budget: kNN top-1 and training samples/s.

Each method trains with the same backbone, views, optimiser, precision, batch size and number of
epochs; only its own hyperparameters (the ``loss`` section of ``configs/<method>-cifar10.yaml``,
when that recipe exists, else the method's defaults) differ. kNN (k=200, T=0.1) uses the full
50,000-image training set as the bank and the 10,000 test images as queries.

    python benchmarks/cifar10_methods.py --data /tmp/cifar10 --epochs 1 --batch-size 256
    python benchmarks/cifar10_methods.py --methods simclr,dcl,dclw,hcl,isogclr --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml

import selfsup
from selfsup.methods import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
SUPERVISED = {"supcon"}


def method_loss(name: str) -> dict:
    p = ROOT / "configs" / f"{name}-cifar10.yaml"
    if p.is_file():
        return dict((yaml.safe_load(p.read_text()) or {}).get("loss") or {})
    return {}


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default="/tmp/cifar10")
    ap.add_argument(
        "--methods", default=None, help="comma-separated; default: every self-supervised method"
    )
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument(
        "--limit", type=int, default=None, help="train on this many images (seeded subset)"
    )
    ap.add_argument("--backbone", default="convnet")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="/tmp/selfsup-bench/methods")
    ap.add_argument("--json", default=None, help="also append each result as a JSON line here")
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override applied to every method, e.g. params.warmup_epochs=0.1",
    )
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    names = (
        a.methods.split(",") if a.methods else sorted(n for n in REGISTRY if n not in SUPERVISED)
    )
    rows = []
    print(
        "| method | batch | epochs | train images | kNN top-1 | train samples/s | train s |",
        flush=True,
    )
    print("|---|---:|---:|---:|---:|---:|---:|", flush=True)
    for name in names:
        cfg = {
            "method": name,
            "data": {"source": a.data, "limit": a.limit},
            "loss": method_loss(name),
            "model": {"backbone": a.backbone},
            "train": {
                "epochs": a.epochs,
                "batch_size": a.batch_size,
                "seed": 0,
                "precision": a.precision,
                "progress": "none",
            },
            "eval": {
                "protocols": ["knn"],
                "baselines": False,
                "report": False,
                "diagnostics": False,
            },
            "out": f"{a.out}/{name}-b{a.batch_size}",
        }
        t0 = time.perf_counter()
        run = selfsup.train(cfg, overrides=a.overrides, overwrite=True)
        s = run.summary
        rate = s["steps"] * a.batch_size / max(s["train_time_s"], 1e-9)
        row = {
            "method": name,
            "batch_size": a.batch_size,
            "epochs": a.epochs,
            "knn_top1": s["eval"]["knn_top1"],
            "samples_per_s": rate,
            "train_time_s": s["train_time_s"],
            "wall_s": time.perf_counter() - t0,
        }
        rows.append(row)
        print(
            f"| {name} | {a.batch_size} | {a.epochs} | {a.limit or 'all'} | {row['knn_top1']:.4f} "
            f"| {rate:.0f} | {s['train_time_s']:.0f} |",
            flush=True,
        )
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
