"""Scale benchmarks of the training loop (BENCHMARKS.md, "Scale out and up"):

- ``step``: samples/s of the Trainer's own step (views, forward, backward, optimiser) for SimCLR on
  random 32 px images, fp32 vs bf16 autocast vs torch.compile vs channels_last;
- ``memory``: peak resident memory of one SimCLR step (ResNet-18, 32 px) against the batch size,
  without and with gradient caching (``train.chunk_size``); each point in a fresh process;
- ``ddp``: samples/s of ``selfsup train --nproc N`` on CIFAR-10 (first epoch excluded).

    python benchmarks/train_scale.py step --backbone convnet --batch 256 --steps 2 --rounds 3
    python benchmarks/train_scale.py memory --batches 64,128,256 --chunk 64
    python benchmarks/train_scale.py ddp --data /tmp/cifar10 --nproc 1,2 --limit 4096
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build_trainer(
    backbone: str,
    batch: int,
    n: int,
    overrides: list[str],
    out: Path,
    width: float = 1.0,
    size: int = 32,
):
    import torch

    from selfsup import methods
    from selfsup.models import build_backbone
    from selfsup.models.encoder import Encoder
    from selfsup.resolve import resolve_config
    from selfsup.train import Trainer
    from selfsup.views import ImageViews, resolve_spec

    cfg = resolve_config(
        method="simclr",
        batch_size=batch,
        epochs=1,
        overrides=["train.progress=none", f"model.backbone={backbone}"] + overrides,
    )
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    _, spec = resolve_spec("cifar", 3, 32, size=size)
    torch.manual_seed(0)
    enc = Encoder(build_backbone(backbone, 3, 32, True, width), [0.5] * 3, [0.25] * 3)
    method = methods.build("simclr", enc, {}, methods.Context(model=cfg.model, n_samples=n))
    views = ImageViews(spec, 3, 2)
    return Trainer(method, views, x, cfg, out, torch.device("cpu"))


def timed_steps(tr, steps: int, warmup: int) -> float:
    """samples/s of ``steps`` Trainer steps after ``warmup`` ones."""
    import torch

    from selfsup.train.loop import epoch_order

    order = epoch_order(len(tr.x), 0, 0, tr.device)
    tr.method.train()
    t = 0.0
    for s in range(warmup + steps):
        t0 = time.perf_counter()
        batch, views = tr.batch_at(order, s % tr.steps_per_epoch, s)
        tr.optimizer.zero_grad(set_to_none=True)
        tr.forward_backward(views, batch)
        tr.optimizer.step()
        if s >= warmup:
            t += time.perf_counter() - t0
    del torch
    return steps * tr.cfg.train.batch_size / t


def cmd_step(a):
    """Variants interleaved round by round (the CPU is shared: load drifts), median of the
    rounds."""
    import statistics

    import torch

    torch.set_num_threads(a.threads)
    variants = [
        ("fp32", ["train.precision=fp32"]),
        ("bf16", ["train.precision=bf16"]),
        ("fp32 + channels_last", ["train.precision=fp32", "train.channels_last=true"]),
        ("bf16 + channels_last", ["train.precision=bf16", "train.channels_last=true"]),
        ("fp32 + compile", ["train.precision=fp32", "train.compile=true"]),
        ("bf16 + compile", ["train.precision=bf16", "train.compile=true"]),
    ]
    if a.variants:
        keep = [k.replace(" ", "") for k in a.variants.split(",")]
        variants = [v for v in variants if v[0].replace(" ", "") in keep]
    with tempfile.TemporaryDirectory() as d:
        trainers = {}
        for name, over in variants:
            tr = build_trainer(
                a.backbone,
                a.batch,
                a.batch * (a.steps + a.warmup),
                over,
                Path(d) / name,
                a.width,
                a.size,
            )
            timed_steps(tr, 1, a.warmup)  # warm-up (and compilation)
            trainers[name] = tr
        rates = {name: [] for name in trainers}
        for _ in range(a.rounds):
            for name, tr in trainers.items():
                rates[name].append(timed_steps(tr, a.steps, 0))
        for name, r in rates.items():
            print(
                f"{a.backbone} x{a.width:g}  {a.size} px views  batch {a.batch}  {name:22s} "
                f"median {statistics.median(r):7.1f} samples/s  (rounds: "
                f"{', '.join(f'{x:.0f}' for x in r)})",
                flush=True,
            )


def cmd_memory_point(a):
    import torch

    torch.set_num_threads(a.threads)
    over = ["train.precision=fp32"] + ([f"train.chunk_size={a.chunk}"] if a.chunk else [])
    with tempfile.TemporaryDirectory() as d:
        tr = build_trainer("resnet18", a.batch, a.batch * 2, over, Path(d))
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        t = time.perf_counter()
        timed_steps(
            tr, 1, 0
        )  # one step: activations, gradients and the optimiser state all exist by its end
        dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        json.dumps(
            {
                "batch": a.batch,
                "chunk": a.chunk,
                "peak_gb": round(peak, 3),
                "before_steps_gb": round(base, 3),
                "seconds_1_step": round(dt, 1),
            }
        ),
        flush=True,
    )


def cmd_memory(a):
    for chunk in ([0] + [int(c) for c in a.chunk.split(",")]) if a.chunk else [0]:
        for b in [int(x) for x in a.batches.split(",")]:
            if chunk and chunk >= b:
                continue
            cmd = [
                sys.executable,
                __file__,
                "memory-point",
                "--batch",
                str(b),
                "--chunk",
                str(chunk),
                "--threads",
                str(a.threads),
            ]
            r = subprocess.run(cmd, capture_output=True, text=True)
            line = (r.stdout.strip().splitlines() or [r.stderr.strip()[-300:]])[-1]
            print(line, flush=True)


def cmd_ddp(a):
    for n in [int(x) for x in a.nproc.split(",")]:
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "run"
            cmd = [
                sys.executable,
                "-m",
                "selfsup",
                "train",
                "--data",
                a.data,
                "--nproc",
                str(n),
                "--epochs",
                str(a.epochs),
                "--batch-size",
                str(a.batch),
                "--out",
                str(out),
                "--set",
                f"data.limit={a.limit}",
                "--set",
                "eval.protocols=[knn]",
                "--set",
                "eval.baselines=false",
                "--set",
                "eval.diagnostics=false",
                "--set",
                "eval.report=false",
                "--set",
                "train.progress=none",
                "--set",
                f"train.precision={a.precision}",
            ] + sum((["--set", s] for s in a.set), [])
            env = dict(os.environ, OMP_NUM_THREADS=str(max(1, a.threads // n)))
            t = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            wall = time.perf_counter() - t
            if r.returncode != 0:
                print(f"nproc {n}: failed ({r.returncode}): {r.stderr.strip()[-400:]}")
                continue
            recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
            ep = [r for r in recs if "epoch_samples_per_s" in r]
            rates = [r["epoch_samples_per_s"] for r in ep[1:]] or [ep[-1]["epoch_samples_per_s"]]
            print(
                f"nproc {n}: {sum(rates) / len(rates):.1f} samples/s (epochs 2..{len(ep)}), "
                f"wall {wall:.0f} s, {a.threads // n} thread(s) per process",
                flush=True,
            )


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("step")
    s.add_argument("--backbone", default="convnet")
    s.add_argument("--width", type=float, default=1.0)
    s.add_argument("--size", type=int, default=32, help="view size (the images are 32 px)")
    s.add_argument("--batch", type=int, default=256)
    s.add_argument("--steps", type=int, default=6)
    s.add_argument("--warmup", type=int, default=2)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--variants", default="", help="comma-separated subset of the variant names")
    m = sub.add_parser("memory")
    m.add_argument("--batches", default="64,128,256")
    m.add_argument("--chunk", default="64")
    m.add_argument("--threads", type=int, default=2)
    mp = sub.add_parser("memory-point")
    mp.add_argument("--batch", type=int)
    mp.add_argument("--chunk", type=int, default=0)
    mp.add_argument("--threads", type=int, default=2)
    d = sub.add_parser("ddp")
    d.add_argument("--data", required=True)
    d.add_argument("--nproc", default="1,2")
    d.add_argument("--epochs", type=int, default=3)
    d.add_argument("--batch", type=int, default=256)
    d.add_argument("--limit", type=int, default=4096)
    d.add_argument("--threads", type=int, default=2)
    d.add_argument("--precision", default="auto")
    d.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    {"step": cmd_step, "memory": cmd_memory, "memory-point": cmd_memory_point, "ddp": cmd_ddp}[
        a.cmd
    ](a)


if __name__ == "__main__":
    main()
