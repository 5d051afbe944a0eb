"""The defaults a new user meets first (issue 14): ``selfsup train`` with no recipe, on the built-in
digits and on another small grayscale set (CIFAR-10 converted to 28 px grayscale), against the two
baselines every run prints (the same encoder at random initialisation, and the raw input).

Nothing is tuned per data set: both use the defaults (SimCLR, the ``digits`` view preset chosen
automatically for small single-channel images, the default optimiser and evaluation); only the
data, the number of epochs and the seed are given.

    # digits, 50 epochs (the default)
    python benchmarks/default_recipe.py --seeds 0,1,2
    python benchmarks/default_recipe.py --data cifar-gray --epochs 5 --seeds 0,1,2

``cifar-gray`` is written once from the CIFAR-10 image folder (``--cifar /tmp/cifar10``): 800
training images a class (8,000) and 200 test images a class, converted to 28 px grayscale.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from claims import make_npz  # noqa: E402


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default="digits", help="digits or cifar-gray")
    ap.add_argument("--cifar", default="/tmp/cifar10")
    ap.add_argument("--work", default="/tmp/selfsup-default")
    ap.add_argument("--epochs", type=int, default=None, help="default: the config's default (50)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    import selfsup

    torch.set_num_threads(a.threads)
    source = "digits"
    if a.data == "cifar-gray":
        source = str(
            make_npz(
                Path(a.cifar),
                Path(a.work) / "cifar-gray28-8000.npz",
                [800] * 10,
                200,
                size=28,
                gray=True,
            )
        )
    rows = []
    for seed in (int(s) for s in a.seeds.split(",")):
        cfg = {
            "data": {"source": source},
            "train": {"seed": seed, "progress": "none", "threads": a.threads},
            "eval": {"report": False},
            "out": f"{a.work}/{a.data}-s{seed}",
        }
        if a.epochs:
            cfg["train"]["epochs"] = a.epochs
        t0 = time.perf_counter()
        run = selfsup.train(cfg, overrides=a.overrides, overwrite=True)
        s = run.summary
        row = {
            "data": a.data,
            "seed": seed,
            "epochs": s["epochs"],
            "wall_s": round(time.perf_counter() - t0, 1),
            "pretrained": s["eval"],
            "random_init": s["baselines"]["random_init"],
            "raw_input": s["baselines"]["raw_input"],
            "overrides": a.overrides,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(row) + "\n")
    print(f"\n{a.data}, {rows[0]['epochs']} epochs, seeds {a.seeds}\n")
    print("| encoder | kNN top-1 | linear top-1 |\n|---|---:|---:|")
    for enc in ("pretrained", "random_init", "raw_input"):
        cells = []
        for metric in ("knn_top1", "linear_top1"):
            v = [r[enc][metric] for r in rows]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            cells.append(f"{statistics.mean(v):.4f} +- {sd:.4f}" if len(v) > 1 else f"{v[0]:.4f}")
        print(f"| {enc.replace('_', ' ')} | {cells[0]} | {cells[1]} |")
    print(f"\nwall time per run: {', '.join(str(r['wall_s']) for r in rows)} s")


if __name__ == "__main__":
    main()
