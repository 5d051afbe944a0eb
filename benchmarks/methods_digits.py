"""Every method of the momentum / queue / predictor / redundancy family (and SimCLR) on the built-in
digits with the same small CPU budget: kNN and linear top-1 on the held-out split, and training
samples/s (steps x batch / training time, views included).

    python benchmarks/methods_digits.py --epochs 10 --threads 1

Each run uses its recipe configs/<method>-digits.yaml with the epochs, threads and seed replaced,
so the methods differ only in what their recipes say. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import selfsup
from selfsup.config import load_yaml, merge

METHODS = [
    "simclr",
    "moco",
    "mochi",
    "mocov3",
    "byol",
    "simsiam",
    "directpred",
    "directcopy",
    "nnclr",
    "barlow",
    "vicreg",
    "gsimclr",
]
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", nargs="*", default=METHODS)
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for m in a.methods:
            cfg = merge(
                load_yaml(ROOT / "configs" / f"{m}-digits.yaml"),
                {
                    "train": {
                        "epochs": a.epochs,
                        "threads": a.threads,
                        "seed": a.seed,
                        "progress": "none",
                    },
                    "eval": {"baselines": False, "diagnostics": False, "report": False},
                    "out": str(Path(tmp) / m),
                },
            )
            t0 = time.perf_counter()
            run = selfsup.train(cfg)
            wall = time.perf_counter() - t0
            s = run.summary
            sps = s["steps"] * run.config.train.batch_size / max(s["train_time_s"], 1e-9)
            ev = s.get("eval", {})
            rows.append(
                (
                    m,
                    ev.get("knn_top1", float("nan")),
                    ev.get("linear_top1", float("nan")),
                    sps,
                    wall,
                )
            )
            print(
                f"{m}: knn {rows[-1][1]:.3f} linear {rows[-1][2]:.3f} {sps:.0f} "
                f"samples/s {wall:.0f}s",
                flush=True,
            )
    print(
        f"\ndigits, {a.epochs} epochs, batch 128, ConvNet, {a.threads} thread(s), seed {a.seed}\n"
    )
    print("| method | kNN top-1 | linear top-1 | train samples/s | wall s |")
    print("|---|---|---|---|---|")
    for m, knn, lin, sps, wall in rows:
        print(f"| {m} | {knn:.3f} | {lin:.3f} | {sps:.0f} | {wall:.0f} |")


if __name__ == "__main__":
    main()
