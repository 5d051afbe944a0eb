"""The papers' claims, measured with seeds at one small CPU budget on CIFAR-10 subsets (issue 14).

Each claim compares a method with its baseline under the same backbone, views, optimiser, epochs
and batch size; three seeds each, mean +- std of kNN top-1 (k=200, T=0.1, bank-centred) and of the
linear probe (L-BFGS) on the encoder's features. The data are class-balanced subsets of the
CIFAR-10 image folder (``/tmp/cifar10``, see ../shared/data/README), written once as .npz files:

- ``balanced``: ``--train-per-class`` training images a class, ``--test-per-class`` test images
  a class (the kNN bank is the training subset, the queries the test subset);
- ``longtail``: the same classes with an exponential profile from ``--train-per-class`` down to
  ``--train-per-class / --imbalance`` (the iSogCLR claim), balanced test images.

Claims (method vs baseline): DCL vs SimCLR at batch 32/64/128/256 (both T=0.1); HCL vs SimCLR
(both T=0.5); iSogCLR vs SimCLR (T=0.1) on ``longtail``; MoCHi vs MoCo; G-SimCLR vs SimCLR (T=0.1);
DirectPred and DirectCopy vs BYOL with a trained linear predictor.

    mkdir -p /tmp/cifar10 && tar -xzf ../shared/data/cifar10-jpg.tar.gz -C /tmp/cifar10
    nice -n 10 python benchmarks/claims.py --train-per-class 250 --epochs 2 --batches 32,256 \
        --seeds 0,1,2 --json /tmp/claims.jsonl
    python benchmarks/claims.py --table /tmp/claims.jsonl       # the table from finished runs

Runs already in the JSON file are skipped, so the script can be stopped and continued.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def make_npz(
    src: Path,
    out: Path,
    train_per_class: list[int],
    test_per_class: int,
    seed: int = 0,
    size: int | None = None,
    gray: bool = False,
) -> Path:
    """A CIFAR-10 subset as an .npz (x, y, x_test, y_test), written once; ``size``/``gray`` convert
    the images (e.g. 28 px grayscale)."""
    if out.is_file():
        return out
    from PIL import Image

    rng = np.random.default_rng(seed)

    def load(split: str, counts: list[int]):
        xs, ys = [], []
        for c, name in enumerate(CLASSES):
            files = sorted((src / split / name).glob("*.jpg"))
            for f in rng.permutation(len(files))[: counts[c]]:
                im = Image.open(files[f]).convert("L" if gray else "RGB")
                if size:
                    im = im.resize((size, size), Image.BILINEAR)
                xs.append(np.asarray(im, dtype=np.uint8))
                ys.append(c)
        return np.stack(xs), np.asarray(ys, dtype=np.int64)

    x, y = load("train", train_per_class)
    xt, yt = load("test", [test_per_class] * 10)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, x=x, y=y, x_test=xt, y_test=yt)
    tmp.rename(out)
    return out


BATCHES = (32, 64, 128, 256)


def claims(balanced: str, longtail: str) -> list[dict]:
    """(claim, method, batch, data, loss) for every run of the table."""
    runs = []
    for bs in BATCHES:
        for m in ("simclr", "dcl"):
            runs.append(
                {
                    "claim": f"DCL vs SimCLR, batch {bs}",
                    "method": m,
                    "batch": bs,
                    "data": balanced,
                    "loss": {"temperature": 0.1},
                }
            )
    for m, loss in (("simclr", {"temperature": 0.5}), ("hcl", {"temperature": 0.5})):
        runs.append(
            {"claim": "HCL vs SimCLR", "method": m, "batch": 128, "data": balanced, "loss": loss}
        )
    for m, loss in (("simclr", {"temperature": 0.1}), ("isogclr", {})):
        runs.append(
            {
                "claim": "iSogCLR vs SimCLR (long-tailed)",
                "method": m,
                "batch": 128,
                "data": longtail,
                "loss": loss,
            }
        )
    q = {"queue_size": 1024}
    for m, loss in (("moco", q), ("mochi", {**q, "n_hard": 256, "n_mix": 256, "n_mix_query": 64})):
        runs.append(
            {"claim": "MoCHi vs MoCo", "method": m, "batch": 128, "data": balanced, "loss": loss}
        )
    for m in ("simclr", "gsimclr"):
        runs.append(
            {
                "claim": "G-SimCLR vs SimCLR",
                "method": m,
                "batch": 128,
                "data": balanced,
                "loss": {"temperature": 0.1},
            }
        )
    for m, loss in (("byol", {"predictor": "linear"}), ("directpred", {}), ("directcopy", {})):
        runs.append(
            {
                "claim": "DirectPred/DirectCopy vs BYOL (linear predictor)",
                "method": m,
                "batch": 128,
                "data": balanced,
                "loss": loss,
            }
        )
    return runs


def key(r: dict, seed: int) -> str:
    return json.dumps([r["claim"], r["method"], r["batch"], seed], sort_keys=True)


def table(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    groups: dict = {}
    for r in rows:
        groups.setdefault(r["claim"], {}).setdefault(r["method"], []).append(r)
    out = ["| claim | method | seeds | kNN top-1 | linear top-1 |", "|---|---|---:|---:|---:|"]

    def ms(v):
        return f"{statistics.mean(v):.4f} +- {statistics.stdev(v) if len(v) > 1 else 0.0:.4f}"

    for claim, methods in groups.items():
        for m, rs in methods.items():
            out.append(
                f"| {claim} | {m} | {len(rs)} | {ms([r['knn_top1'] for r in rs])} | "
                f"{ms([r['linear_top1'] for r in rs])} |"
            )
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default="/tmp/cifar10")
    ap.add_argument("--work", default="/tmp/selfsup-claims")
    ap.add_argument("--train-per-class", type=int, default=400)
    ap.add_argument("--test-per-class", type=int, default=100)
    ap.add_argument("--imbalance", type=float, default=10.0)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--backbone", default="convnet")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default=None, help="run only claims whose name contains this text")
    ap.add_argument(
        "--batches", default="32,64,128,256", help="batch sizes of the DCL vs SimCLR claim"
    )
    ap.add_argument("--json", default="/tmp/claims.jsonl")
    ap.add_argument(
        "--table", default=None, metavar="JSONL", help="print the table of a results file and exit"
    )
    a = ap.parse_args()
    if a.table:
        print(table(Path(a.table)))
        return
    import selfsup

    global BATCHES
    BATCHES = tuple(int(b) for b in a.batches.split(","))
    torch.set_num_threads(a.threads)
    work = Path(a.work)
    n = a.train_per_class
    bal = make_npz(Path(a.data), work / f"balanced-{n}.npz", [n] * 10, a.test_per_class)
    lt_counts = [int(round(n * a.imbalance ** (-c / 9))) for c in range(10)]
    lt = make_npz(
        Path(a.data),
        work / f"longtail-{n}-{a.imbalance:g}.npz",
        lt_counts,
        a.test_per_class,
        seed=1,
    )
    out = Path(a.json)
    done = set()
    if out.is_file():
        done = {key(r, r["seed"]) for r in map(json.loads, out.read_text().splitlines()) if r}
    seeds = [int(s) for s in a.seeds.split(",")]
    for seed in seeds:  # seed-major: a stopped run still has every claim at some seeds
        for r in claims(str(bal), str(lt)):
            if a.only and a.only not in r["claim"]:
                continue
            if key(r, seed) in done:
                continue
            cfg = {
                "method": r["method"],
                "data": {"source": r["data"]},
                "loss": r["loss"],
                "model": {"backbone": a.backbone},
                "views": {"preset": "cifar"},
                "train": {
                    "epochs": a.epochs,
                    "batch_size": r["batch"],
                    "seed": seed,
                    "progress": "none",
                    "threads": a.threads,
                },
                "eval": {
                    "protocols": ["knn", "linear"],
                    "baselines": False,
                    "report": False,
                    "diagnostics": False,
                },
                "out": f"{work}/runs/{r['method']}-b{r['batch']}-s{seed}-"
                f"{abs(hash(r['claim'])) % 10**6}",
            }
            t0 = time.perf_counter()
            run = selfsup.train(cfg, overwrite=True)
            ev = run.summary["eval"]
            row = {
                **{k: r[k] for k in ("claim", "method", "batch")},
                "seed": seed,
                "epochs": a.epochs,
                "knn_top1": ev["knn_top1"],
                "linear_top1": ev["linear_top1"],
                "wall_s": round(time.perf_counter() - t0, 1),
            }
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    print(table(out))


if __name__ == "__main__":
    main()
