"""Peak memory and time of NT-Xent forward + backward, dense vs tiled, for N pairs (2N embeddings).

    # N = 1,024 ... 65,536, d = 128, float32, 2 threads
    python benchmarks/loss_memory.py
    python benchmarks/loss_memory.py --sizes 1024 4096 --threads 2

Each configuration runs in its own child process. Peak memory is the child's maximum resident set
size (``getrusage``) after the run minus its value just before it (inputs made, libraries warmed
up), so it counts everything torch allocated for the loss and its backward. Dense sizes whose
logit matrices would need more than ``--dense-limit-gb`` (about 64 N^2 bytes: the 2N x 2N logits,
their masked copy, the softmax and its gradient) are skipped and marked so.

FLOPs counted: the three (2N x 2N x d) matrix products of forward + backward (logits, dL/dq,
dL/dk), 6 (2N)^2 d in all, the same for both paths; "of peak" divides the achieved rate by the
``--peak`` fp32 matmul rate (170 GFLOP/s for this CPU by the issue's measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def child(n: int, mode: str, d: int, threads: int) -> None:
    import resource

    import torch

    torch.set_num_threads(threads)
    from selfsup.losses import nt_xent

    tiled = mode == "tiled"
    w1 = torch.randn(256, d, requires_grad=True)  # warm-up: thread pools, kernels
    nt_xent(w1, w1.detach().clone(), 0.5, tiled=tiled).backward()
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(n, d, generator=g).requires_grad_(True)
    z2 = torch.randn(n, d, generator=g).requires_grad_(True)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    loss = nt_xent(z1, z2, 0.5, tiled=tiled)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "n": n,
                "mode": mode,
                "fwd_s": t1 - t0,
                "bwd_s": t2 - t1,
                "total_s": t2 - t0,
                "extra_mb": (peak - base) / 1024,
                "loss": float(loss.detach()),
                "grad_norm": float(z1.grad.norm()),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sizes", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384, 32768, 65536]
    )
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dense-limit-gb", type=float, default=12.0)
    ap.add_argument("--peak", type=float, default=170.0, help="fp32 matmul peak, GFLOP/s")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per configuration")
    ap.add_argument("--child", nargs=2, metavar=("N", "MODE"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(int(a.child[0]), a.child[1], a.dim, a.threads)
        return
    print(
        f"NT-Xent forward+backward, d={a.dim}, float32, {a.threads} threads; load average at start "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"{'N pairs':>8} {'path':>6} {'time s':>8} {'fwd s':>7} {'bwd s':>7} {'extra MB':>9} "
        f"{'GFLOP/s':>8} {'of peak':>8}"
    )
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    for n in a.sizes:
        for mode in ("dense", "tiled"):
            need_gb = 64 * n * n / 1e9
            if mode == "dense" and need_gb > a.dense_limit_gb:
                print(
                    f"{n:>8} {mode:>6}  skipped: would need about {need_gb:.0f} GB (> "
                    f"{a.dense_limit_gb:g} GB)"
                )
                continue
            cmd = [
                sys.executable,
                __file__,
                "--child",
                str(n),
                mode,
                "--dim",
                str(a.dim),
                "--threads",
                str(a.threads),
            ]
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout, env=env)
            except subprocess.TimeoutExpired:
                print(f"{n:>8} {mode:>6}  timed out after {a.timeout:g} s")
                continue
            if r.returncode != 0:
                print(
                    f"{n:>8} {mode:>6}  failed (exit {r.returncode}): "
                    f"{r.stderr.strip().splitlines()[-1:]}"
                )
                continue
            res = json.loads(r.stdout.strip().splitlines()[-1])
            flops = 6 * (2 * n) ** 2 * a.dim
            rate = flops / res["total_s"] / 1e9
            print(
                f"{n:>8} {mode:>6} {res['total_s']:8.2f} {res['fwd_s']:7.2f} {res['bwd_s']:7.2f} "
                f"{res['extra_mb']:9.0f} {rate:8.1f} {rate / a.peak:8.1%}",
                flush=True,
            )
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
