"""CIFAR-10 benchmark: SimCLR with a CPU-sized backbone, kNN top-1 after each epoch beside the raw
pixel and random-init baselines, and the training step's throughput with its breakdown.

Data: the image folder from ../shared/data (unpack once):

    mkdir -p /tmp/cifar10 && tar -xzf ../shared/data/cifar10-jpg.tar.gz -C /tmp/cifar10
    python benchmarks/cifar10.py --data /tmp/cifar10 --epochs 10

Every option after ``--`` style ``--set key=value`` is passed to the run's config. The figures go to
stdout (and a JSON line per epoch to the run's metrics.jsonl); BENCHMARKS.md keeps the table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import selfsup
from selfsup import methods
from selfsup.evaluation import evaluate_encoder
from selfsup.methods import Batch
from selfsup.parts import build_encoder, load_data
from selfsup.resolve import resolve_config
from selfsup.train.precision import resolve as resolve_precision
from selfsup.views import ImageViews, resolve_spec


def image_meta(channels: int, size: int, mean, std) -> dict:
    """The description of an image encoder (see selfsup.modalities.Modality)."""
    return {
        "modality": "image",
        "in_channels": channels,
        "image_size": size,
        "mean": list(mean),
        "std": list(std),
    }


def profile_step(cfg, splits, steps: int = 8) -> dict | None:
    """Mean seconds per step of each phase: data (index + gather), views, forward, loss, backward,
    optimizer, measured on the configured backbone and batch size. Only for the methods of two views
    contrasted by ``contrast`` (the InfoNCE family); ``None`` for the others (the run's own
    ``timing_s`` has their phases)."""
    from selfsup.eval import channel_stats
    from selfsup.train.optim import build_optimizer

    tr = splits.train
    _, spec = resolve_spec(cfg.views.preset, tr.channels, tr.size)
    mean, std = channel_stats(tr.x)
    enc = build_encoder(cfg, image_meta(tr.channels, spec.size, mean, std), 0)
    method = methods.build(
        cfg.method, enc, cfg.params, methods.Context(model=cfg.model, n_samples=len(tr))
    )
    if not hasattr(method, "contrast"):
        return None
    views = ImageViews(spec, tr.channels, 2, cfg.views.backend)
    opt = build_optimizer(method, cfg.optim, cfg.train.batch_size)
    x = torch.from_numpy(tr.x).permute(0, 3, 1, 2).contiguous()
    bs = cfg.train.batch_size
    precision = resolve_precision(cfg.train.precision, torch.device("cpu"))[0]
    t = {k: 0.0 for k in ("data", "views", "forward", "loss", "backward", "optimizer")}
    for s in range(steps + 2):
        c0 = time.perf_counter()
        idx = torch.randint(0, len(x), (bs,))
        xb = x[idx]
        c1 = time.perf_counter()
        v = views(xb)
        c2 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            z = method.head(method.encoder(torch.cat(v))).float()
        c3 = time.perf_counter()
        z1, z2 = z.chunk(2)
        loss = method.contrast(z1, z2, Batch(xb, idx))
        c4 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        c5 = time.perf_counter()
        opt.step()
        c6 = time.perf_counter()
        if s >= 2:  # skip warm-up steps
            for k, a, b in zip(t, (c0, c1, c2, c3, c4, c5), (c1, c2, c3, c4, c5, c6)):
                t[k] += b - a
    per = {k: v / steps for k, v in t.items()}
    total = sum(per.values())
    per["total"] = total
    per["samples_per_s"] = bs / total
    return per


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", help="a recipe (YAML); the options below override it, --set last")
    ap.add_argument("--data", default="/tmp/cifar10")
    ap.add_argument("--epochs", type=int, help="default: the recipe's, else 10")
    ap.add_argument("--batch-size", type=int, help="default: the recipe's, else 256")
    ap.add_argument("--backbone", help="default: the recipe's, else convnet")
    ap.add_argument("--method", help="default: the recipe's, else simclr")
    ap.add_argument("--out", default="/tmp/selfsup-bench/cifar10")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--knn-every", type=int, default=1, help="kNN after every this many epochs (and the last)"
    )
    ap.add_argument(
        "--snapshot-every",
        type=int,
        default=0,
        help="save the encoder's weights after every this many epochs (for --curve; 0: never)",
    )
    ap.add_argument(
        "--curve",
        metavar="RUN_DIR",
        help="kNN of each snapshot a run saved with --snapshot-every, after the fact, then exit",
    )
    ap.add_argument("--profile-only", action="store_true")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.curve:
        return curve(Path(a.curve), a.overrides)

    fallback = {"method": "simclr", "backbone": "convnet", "epochs": 10, "batch_size": 256}
    given = {
        "method": a.method,
        "backbone": a.backbone,
        "epochs": a.epochs,
        "batch_size": a.batch_size,
    }
    if a.config:
        fallback = {}
    options = {k: v if v is not None else fallback.get(k) for k, v in given.items()}
    cfg = resolve_config(
        a.config,
        a.overrides + ["eval.protocols=[knn]"],
        data=a.data,
        out=a.out,
        **{k: v for k, v in options.items() if v is not None},
    )
    t0 = time.perf_counter()
    splits, bank, query = load_data(cfg)
    print(
        f"data: {len(splits.train)} train, {len(bank)} bank / {len(query)} query, "
        f"loaded in {time.perf_counter() - t0:.1f}s",
        flush=True,
    )
    enc_params = sum(
        p.numel()
        for p in build_encoder(cfg, image_meta(3, 32, [0.5] * 3, [0.25] * 3), 0).parameters()
    )
    print(
        f"backbone {cfg.model.backbone}: {enc_params / 1e6:.2f}M parameters; threads "
        f"{torch.get_num_threads()}"
    )
    prof = profile_step(cfg, splits)
    if prof is not None:
        print(
            "step breakdown (s/step): "
            + ", ".join(f"{k} {v:.3f}" for k, v in prof.items() if k != "samples_per_s")
            + f"; {prof['samples_per_s']:.0f} samples/s",
            flush=True,
        )
    if a.profile_only:
        return
    start = time.perf_counter()
    eval_size = cfg.views.eval_size or cfg.views.size or 32
    snapshots = Path(cfg.out) / "snapshots"

    def on_epoch_end(epoch, method):
        if a.snapshot_every and (epoch % a.snapshot_every == 0 or epoch == cfg.train.epochs):
            snapshots.mkdir(exist_ok=True)
            torch.save(method.encoder.state_dict(), snapshots / f"epoch{epoch:03d}.pt")
        if (not a.knn_every or epoch % a.knn_every) and epoch != cfg.train.epochs:
            return None
        r = evaluate_encoder(
            method.encoder,
            bank,
            query,
            {"image_size": eval_size},
            cfg.eval,
            torch.device("cpu"),
            ["knn"],
        )
        print(
            f"epoch {epoch}: knn_top1 {r['knn_top1']:.4f}  wall {time.perf_counter() - start:.0f}s "
            f"(since the process started: {time.perf_counter() - T0:.0f}s)",
            flush=True,
        )
        return r

    run = selfsup.train(cfg, overwrite=True, on_epoch_end=on_epoch_end)
    s = run.summary
    print(
        json.dumps(
            {
                "final": s["eval"],
                "baselines": s.get("baselines"),
                "train_time_s": s["train_time_s"],
                "timing_s": s["timing_s"],
                "wall_s": round(time.perf_counter() - start, 1),
            },
            indent=1,
        )
    )
    print("per-epoch records:", Path(run.dir) / "metrics.jsonl")


def curve(run_dir: Path, overrides: list[str]) -> None:
    """kNN top-1 of every snapshot in ``run_dir/snapshots``, on the run's own data and eval size."""
    run_cfg = resolve_config(str(run_dir / "config.yaml"), overrides + ["eval.protocols=[knn]"])
    _, bank, query = load_data(run_cfg)
    enc = selfsup.load_encoder(run_dir)
    for snap in sorted((run_dir / "snapshots").glob("epoch*.pt")):
        enc.load_state_dict(torch.load(snap, map_location="cpu"))
        r = evaluate_encoder(enc, bank, query, enc.meta, run_cfg.eval, torch.device("cpu"), ["knn"])
        print(f"{snap.stem}: knn_top1 {r['knn_top1']:.4f}", flush=True)


T0 = time.perf_counter()

if __name__ == "__main__":
    main()
