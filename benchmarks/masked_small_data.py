"""Masked vs contrastive pretraining on small data at the same CPU budget (issue: masked branch).

The medical small-data paper's question at CPU scale: with only 5,000 training images (a fixed,
class-balanced CIFAR-10 subset), which pretraining gives the best few-label accuracy when the
encoder is fine-tuned on 1%, 10% and 100% of those images' labels? Each method gets the same
training budget in CPU seconds (the machine is shared, so process CPU time is fairer than wall
time): a probe run of 2 epochs over ``--probe`` images measures the CPU cost of one training sample,
and the epochs are set so that ``epochs * samples per epoch * cost`` is about ``--budget`` (an epoch
trains ``n // batch * batch`` samples: 896 of 1,000 at batch 128). The cost per sample rises with
the machine's load, so a run can use more or less than the budget: every row records the training
CPU seconds it actually used (``train_cpu_s``: process CPU from the start of ``selfsup.train`` to
the last epoch's end, setup included, evaluation not), its epochs and steps, and the cost per sample
it met (``run_cost_ms``, epochs 2 on), and ``--summary`` shows the CPU used beside the budget. Then
the `fewshot` protocol (encoder + linear head fine-tuned, AdamW, cosine, ``--ft-steps`` steps of
64) on the subset's labels, evaluated on a fixed class-balanced set of ``--test`` CIFAR-10 test
images; kNN (k=200) as well. Randomly initialised encoders of both backbones are fine-tuned the same
way as the reference.

    python benchmarks/masked_small_data.py --data /tmp/cifar10 --budget 300 --threads 1 \\
        --json /tmp/masked.jsonl

Several unlabelled-set sizes and seeds in one run (``--sizes 1000,5000 --seeds 0,1,2``): for each
seed the subset of each size is drawn class-balanced under that seed (seed 0 gives the subset of
earlier runs), the pretraining uses ``train.seed`` = seed and the protocols ``eval.seed`` = seed
(which labels, the head's initialisation). The CPU cost of a training sample is measured once per
method (it does not depend on the size), so every seed of a (method, size) trains the same epochs:
the seeds are replicates of one configuration, and the CPU they actually used is reported, not
forced. Every row goes to ``--json``; ``--summary FILE`` prints the mean +- std over seeds of such
a file as a markdown table, without training:

    python benchmarks/masked_small_data.py --data /tmp/cifar10 --sizes 1000,5000 --seeds 0,1,2 \\
        --methods simclr,spark,mae --budget 180 --precision fp32 --json /tmp/masked-grid.jsonl
    python benchmarks/masked_small_data.py --summary /tmp/masked-grid.jsonl
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


def make_subset(s, n_train: int, n_test: int, out: Path, seed: int = 0) -> Path:
    """A class-balanced subset of ``n_train`` training images (drawn under ``seed``) and a fixed
    one of ``n_test`` test images of the loaded source ``s``, saved to ``out``."""
    tr, te = balanced(s.train.y, n_train, seed), balanced(s.test.y, n_test, 1)
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


def config(name: str, npz: Path, epochs: int, a, out: Path, seed: int = 0) -> dict:
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
            "seed": seed,
            "precision": a.precision,
            "progress": "none",
            "checkpoint_every": 1000,
        },
        "eval": {
            "protocols": ["knn", "fewshot"],
            "fewshot_fractions": [0.01, 0.1, 1.0],
            "fewshot_steps": a.ft_steps,
            "seed": seed,
            "baselines": False,
            "report": False,
            "diagnostics": False,
        },
        "out": str(out / name),
    }


def sample_cost(name: str, npz: Path, n: int, a, out: Path) -> float:
    """CPU seconds per training sample of ``name``: the second epoch of a 2-epoch run over
    ``min(--probe, n)`` images."""
    probe = min(a.probe, n)
    marks: list[float] = []
    selfsup.train(
        config(name, npz, 2, a, out / "probe"),
        overwrite=True,
        overrides=["eval.protocols=[knn]", f"data.limit={probe}"],
        on_epoch_end=recorder(marks, 0.0),
    )
    return (marks[1] - marks[0]) / epoch_samples(probe, a.batch_size)


def epoch_samples(n: int, batch_size: int) -> int:
    """The samples one epoch over ``n`` images trains: whole batches only (the trainer runs
    ``n // batch_size`` steps)."""
    if n < batch_size:
        raise ValueError(f"{n} images give no whole batch of {batch_size}")
    return n // batch_size * batch_size


def epochs_for(budget: float, cost: float, n: int, batch_size: int) -> int:
    """The epochs over ``n`` images that spend about ``budget`` CPU seconds at ``cost`` CPU
    seconds per trained sample (at least one)."""
    return max(1, int(round(budget / (cost * epoch_samples(n, batch_size)))))


def run_cost(marks: list[float], n: int, batch_size: int) -> float | None:
    """CPU seconds per trained sample met by a run, from its epoch-end CPU ``marks``: epochs 2 on
    (the first carries the setup); None for a 1-epoch run."""
    if len(marks) < 2:
        return None
    return (marks[-1] - marks[0]) / ((len(marks) - 1) * epoch_samples(n, batch_size))


def emit(row: dict, a) -> None:
    print(json.dumps(row), flush=True)
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps(row) + "\n")


def scores(e: dict) -> dict:
    return {"knn": e["knn_top1"], **{k: e[f"fewshot_{k}pct_top1"] for k in ("1", "10", "100")}}


def pretrain(name: str, npz: Path, n: int, seed: int, cost: float, a, out: Path) -> dict:
    epochs = epochs_for(a.budget, cost, n, a.batch_size)
    c0 = time.process_time()
    cpu: list[float] = []
    run = selfsup.train(
        config(name, npz, epochs, a, out, seed), overwrite=True, on_epoch_end=recorder(cpu, c0)
    )
    s = run.summary
    met = run_cost(cpu, n, a.batch_size)
    return {
        "method": name,
        "backbone": SETUPS[name][0],
        "size": n,
        "seed": seed,
        "budget": a.budget,
        "cost_ms": round(cost * 1e3, 4),  # the probe's, which set the epochs
        "run_cost_ms": None if met is None else round(met * 1e3, 4),  # met in this run
        "epochs": s["epochs"],
        "steps": s["steps"],
        "train_s": s["train_time_s"],
        "train_cpu_s": round(cpu[-1], 1),  # actually used: setup and every epoch
        "eval_cpu_s": round(time.process_time() - c0 - cpu[-1], 1),
        **scores(s["eval"]),
    }


def random_init(backbone: str, npz: Path, n: int, seed: int, a, out: Path) -> dict:
    """A randomly initialised encoder (under ``seed``), fine-tuned the same way (no
    pretraining)."""
    from selfsup.eval import channel_stats
    from selfsup.evaluation import evaluate_encoder
    from selfsup.parts import build_encoder, load_data
    from selfsup.validate import device as pick_device

    c0 = time.process_time()
    cfg = config("simclr", npz, 1, a, out, seed) | {"model": {"backbone": backbone}}
    cfg = conf.validate(cfg)
    splits, bank, query = load_data(cfg)
    mean, std = channel_stats(splits.train.x)
    meta = {"modality": "image", "in_channels": 3, "image_size": 32}
    meta.update(mean=list(mean), std=list(std))
    enc = build_encoder(cfg, meta, seed)
    e = evaluate_encoder(enc, bank, query, meta, cfg.eval, pick_device("cpu"))
    return {
        "method": f"random init ({backbone})",
        "backbone": backbone,
        "size": n,
        "seed": seed,
        "budget": 0,
        "epochs": 0,
        "steps": 0,
        "train_s": 0,
        "train_cpu_s": 0,
        "eval_cpu_s": round(time.process_time() - c0, 1),
        **scores(e),
    }


def summary(paths: list[str]) -> str:
    """A markdown table of mean +- std (over seeds) per size, budget and method."""
    rows = [json.loads(x) for p in paths for x in Path(p).read_text().splitlines() if x.strip()]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (r.get("size", 5000), r["method"].startswith("random"), r.get("budget", 0))
        groups.setdefault(key + (r["method"],), []).append(r)

    def ms(vals: list[float]) -> str:
        v = 100 * np.asarray(vals, dtype=float)  # accuracies in percent
        return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}" if len(v) > 1 else f"{v.mean():.1f}"

    out = [
        "| unlabelled images | method | budget (CPU-s) | training CPU-s used | epochs | steps "
        "| seeds | kNN | 1% labels | 10% labels | 100% labels |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in sorted(groups):
        g = groups[key]
        n, _, budget, method = key
        out.append(
            f"| {n:,} | {method} | {budget:g} | {cpu_used(g)} | {distinct(g, 'epochs')} "
            f"| {distinct(g, 'steps')} | {len(g)} | "
            + " | ".join(ms([r[k] for r in g]) for k in ("knn", "1", "10", "100"))
            + " |"
        )
    out += ["", paired(rows)]
    return "\n".join(out)


def distinct(g: list[dict], key: str) -> str:
    """The distinct values of ``key`` among rows ``g`` (``?`` for rows without it)."""
    vals = {r.get(key) for r in g}
    return "/".join(map(str, sorted(v for v in vals if v is not None))) + (
        "/?" if None in vals else ""
    )


def cpu_used(g: list[dict]) -> str:
    """The training CPU seconds the rows ``g`` actually used: the mean, and the range over the
    rows when they differ; ``-`` for no training."""
    v = np.asarray([r.get("train_cpu_s", 0) for r in g], dtype=float)
    if not v.any():
        return "-"
    return f"{v.mean():.0f}" + (f" ({v.min():.0f}-{v.max():.0f})" if len(v) > 1 else "")


def paired(rows: list[dict]) -> str:
    """Each pretrained method minus random init of its backbone and minus ``simclr``, paired by
    size and seed (same subset, same labels, same fine-tuning seed): mean +- std over seeds."""
    ref = {
        (r.get("size", 5000), r.get("seed", 0), r["method"], r.get("budget", 0)): r for r in rows
    }
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if not r["method"].startswith("random"):
            key = (r.get("size", 5000), r.get("budget", 0), r["method"])
            groups.setdefault(key, []).append(r)
    keys = ("1", "10", "100")

    def diff(g: list[dict], other) -> list[str]:
        pairs = [(r, ref.get((r.get("size", 5000), r.get("seed", 0)) + other(r))) for r in g]
        pairs = [(r, o) for r, o in pairs if o is not None]
        if not pairs:
            return ["-"] * len(keys)
        cells = []
        for k in keys:
            d = 100 * np.array([r[k] - o[k] for r, o in pairs])
            sd = f" ± {d.std(ddof=1):.1f}" if len(d) > 1 else ""
            cells.append(f"{d.mean():+.1f}{sd} ({len(d)})")
        return cells

    out = [
        "| unlabelled images | method | budget (CPU-s) | vs random init: 1% | 10% | 100% "
        "| vs simclr (same budget): 1% | 10% | 100% |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (n, budget, method), g in sorted(groups.items()):
        vs_rand = diff(g, lambda r: (f"random init ({r['backbone']})", 0))
        vs_simclr = diff(g, lambda r: ("simclr", r.get("budget", 0)))
        if method == "simclr":
            vs_simclr = ["-"] * len(keys)
        out.append(f"| {n:,} | {method} | {budget:g} | " + " | ".join(vs_rand + vs_simclr) + " |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default="/tmp/cifar10")
    ap.add_argument("--methods", default="simclr,mae,spark,cmae")
    ap.add_argument("--train", type=int, default=5000, help="unlabelled images (one size)")
    ap.add_argument("--sizes", default=None, help="unlabelled-set sizes, e.g. 1000,5000")
    ap.add_argument("--seeds", default="0", help="seeds, e.g. 0,1,2")
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--budget", type=float, default=300, help="training CPU seconds per method")
    ap.add_argument("--probe", type=int, default=1024, help="images of the timing run")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ft-steps", type=int, default=100)
    ap.add_argument("--precision", default="auto", help="auto picks bf16 only where native")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="/tmp/selfsup-bench/masked")
    ap.add_argument("--json", default=None)
    ap.add_argument("--summary", nargs="+", default=None, help="print the table of JSONL files")
    ap.add_argument(
        "--random-init",
        choices=["yes", "no", "only"],
        default="yes",
        help="also fine-tune randomly initialised encoders (only: nothing else)",
    )
    a = ap.parse_args()
    if a.summary:
        print(summary(a.summary))
        return
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [int(v) for v in a.sizes.split(",")] if a.sizes else [a.train]
    seeds = [int(v) for v in a.seeds.split(",")]
    methods = a.methods.split(",") if a.random_init != "only" else []
    backbones = sorted({SETUPS[n][0] for n in a.methods.split(",")})
    s = load_source(a.data, None, False, None)
    costs: dict[str, float] = {}
    for seed in seeds:
        for n in sizes:
            npz = make_subset(s, n, a.test, out / f"cifar_subset_{n}_{seed}.npz", seed)
            for name in methods:
                if name not in costs:  # measured once, on the largest set
                    big = make_subset(s, max(sizes), a.test, out / "probe_subset.npz", 0)
                    costs[name] = sample_cost(name, big, max(sizes), a, out)
                emit(pretrain(name, npz, n, seed, costs[name], a, out), a)
            for backbone in backbones if a.random_init != "no" else []:
                emit(random_init(backbone, npz, n, seed, a, out), a)


if __name__ == "__main__":
    main()
