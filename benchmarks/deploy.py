"""After pretraining (issue 25): ``embed`` throughput against a plain ``torch.no_grad()`` loop over
the same encoder, and ONNX Runtime against PyTorch latency per batch on the CPU.

    python benchmarks/deploy.py [--threads 2] [--n 10000] [--repeats 20]

It trains a one-epoch SimCLR encoder on digits (16 px ConvNet) and one on N random 32 px RGB images
(an .npz; the weights do not matter for speed), then for each:

- ``selfsup.embed(run, source)`` end to end (loading the source, checks, batches of 256, eval view)
  against a loop that calls ``encoder(eval_view(x[i:i+256]))`` on the already decoded tensor;
- the encoder exported with ``selfsup export --format onnx``, timed with onnxruntime
  (``intra_op_num_threads`` = threads) against PyTorch (``torch.set_num_threads(threads)``) on
  batches of 1, 64 and 256: the median of ``repeats`` runs after 3 warm-up runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import selfsup
from selfsup.exporting import sample_batch
from selfsup.views import eval_view


def train(data: str, out: Path) -> Path:
    run = selfsup.train(
        data=data,
        epochs=1,
        batch_size=64,
        out=str(out),
        overrides=[
            "data.limit=256",
            "eval.report=false",
            "eval.baselines=false",
            "eval.diagnostics=false",
            "eval.protocols=[knn]",
            "train.progress=none",
        ],
    )
    return run.dir


def embed_throughput(run: Path, source: str) -> tuple[float, float, int]:
    t = time.perf_counter()
    e = selfsup.embed(run, source, batch_size=256)
    t_embed = time.perf_counter() - t
    enc = selfsup.load_encoder(run)
    d = selfsup.data.load_source(source)
    xs = [
        torch.from_numpy(s.x).permute(0, 3, 1, 2).contiguous()
        for s in (d.train, d.test)
        if s is not None
    ]
    x = torch.cat(xs)
    size = enc.meta["image_size"]
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(x), 256):
            enc(eval_view(x[i : i + 256], size))
    t_loop = time.perf_counter() - t
    n = len(e.ids)
    return n / t_embed, n / t_loop, n


def latency(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def onnx_vs_torch(run: Path, work: Path, threads: int, repeats: int) -> list[tuple]:
    import onnxruntime as ort

    path = work / f"{run.name}.onnx"
    check = selfsup.export(run, path, "onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    enc = selfsup.load_encoder(run)
    enc._forward_pre_hooks.clear()  # the same graph as exported, without the input checks
    x_all = sample_batch(run, enc.meta, 256).float()
    rows = []
    for b in (1, 64, 256):
        x = x_all[:b].contiguous()
        xn = x.numpy()

        def run_torch(x=x):
            with torch.no_grad():
                enc(x)

        def run_ort(xn=xn):
            sess.run(None, {"input": xn})

        rows.append((b, latency(run_torch, repeats), latency(run_ort, repeats)))
    return [(check.max_abs_diff, *r) for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    npz = work / "rgb32.npz"
    np.savez(
        npz,
        x=rng.integers(0, 256, (args.n, 32, 32, 3), dtype=np.uint8),
        y=np.arange(args.n) % 10,
    )
    cases = {"digits (16 px, 1 ch)": "digits", f"random RGB 32 px (N={args.n})": str(npz)}
    print(f"torch {torch.__version__}, {args.threads} threads")
    for label, source in cases.items():
        run = train(source, work / f"run-{len(label)}")
        emb, loop, n = embed_throughput(run, source)
        print(
            f"{label}: embed {emb:.0f} samples/s end to end, plain no_grad loop {loop:.0f} "
            f"samples/s ({n} samples, batch 256)"
        )
        for diff, b, t_torch, t_ort in onnx_vs_torch(run, work, args.threads, args.repeats):
            print(
                f"  batch {b:4d}: PyTorch {t_torch:8.2f} ms, ONNX Runtime {t_ort:8.2f} ms "
                f"(x{t_torch / t_ort:.2f}); export max abs diff {diff:.2g}"
            )


if __name__ == "__main__":
    main()
