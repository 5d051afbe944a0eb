"""CPU seconds per GraphMAE training step on Cora (issue 24), for the step as it is and with its
cheaper parts switched back one at a time, and for older trees (a ``git archive`` of their src).

    # one variant, N steps (after 3 warm-up steps), one thread; prints the per-step CPU seconds
    OMP_NUM_THREADS=1 python benchmarks/graphmae_step.py --variant new --steps 20
    # variants interleaved in R rounds (each a fresh process), medians over all their steps;
    # NAME@PATH runs the tree at PATH as it is
    git archive ed14eb6 src | tar -x -C /tmp/gmh/old
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/graphmae_step.py --interleave 3 --steps 20 \
        --variants old@/tmp/gmh/old/src,sparse_drop,keep_mask,new

    # this tree and another in one process, one step each in turn (the steadier comparison on a
    # shared machine: both see the same load); prints both medians and the per-step ratio
    git archive a4e0775 src | tar -x -C /tmp/gmh/old
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/graphmae_step.py --alternate /tmp/gmh/old/src \
        --steps 50

Variants of this tree, its parts switched back: ``sparse_drop`` = torch's ``bernoulli_`` for
every dropout mask and the decoder projecting to all 1,433 features before the loss (only the
first layer's dropout on the non-zeros kept); ``keep_mask`` = only the projecting decoder back
(masks from :func:`selfsup.models.graph.keep_mask`); ``new`` = the step as it is (the loss from
the decoder's aggregates, :func:`sce_loss_linear`). Run on d48ba52's tree these three were the
cumulative steps of that commit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

VARIANTS = ("as_is", "sparse_drop", "keep_mask", "new")


def _switch_back(variant: str) -> None:
    import selfsup.methods.graphmae as gm
    import selfsup.models.graph as graph

    if variant in ("sparse_drop",):

        def bernoulli_mask(
            shape: tuple[int, ...], p: float, like: torch.Tensor, rows: Any = None
        ) -> torch.Tensor:
            k = torch.empty(shape, dtype=like.dtype).bernoulli_(1 - p).div_(1 - p)
            return k if rows is None else k[rows]

        graph.keep_mask = bernoulli_mask  # type: ignore[assignment]
    if variant in ("sparse_drop", "keep_mask"):
        sce = gm.sce_loss

        def projected(x, a, w, b, gamma):  # type: ignore[no-untyped-def]
            x = x.to_dense() if x.layout == torch.sparse_csr else x
            return sce(x, a @ w.t() + b, gamma)

        gm.sce_loss_linear = projected


def step_times(source: str, steps: int, variant: str, seed: int = 0) -> list[float]:
    from selfsup.methods.base import Context
    from selfsup.methods.graphmae import GraphMAE, GraphMAEParams
    from selfsup.models.graph import GraphBatch, GraphEncoder, build_graph_backbone

    if variant not in ("as_is", "new"):
        _switch_back(variant)
    torch.set_num_threads(1)
    z = np.load(source)
    x, e = torch.from_numpy(z["x"]).float(), torch.from_numpy(z["edge_index"])
    torch.manual_seed(seed)
    d = x.shape[1]
    enc = GraphEncoder(build_graph_backbone("gat", d, 2.0), "row", torch.zeros(d), torch.ones(d))
    m = GraphMAE(enc, GraphMAEParams(), Context())
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    b = GraphBatch(x, e)
    out = []
    for i in range(steps + 3):
        t0 = time.process_time()
        loss, _ = m([b], None)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 3:
            out.append(time.process_time() - t0)
    return out


def _setup(pkg: str, source: str, seed: int = 0) -> Any:
    """A step function of the GraphMAE of package ``pkg`` (``selfsup`` or a copy under another
    name) on Cora, with its own Adam."""
    import importlib

    base = importlib.import_module(f"{pkg}.methods.base")
    gm = importlib.import_module(f"{pkg}.methods.graphmae")
    graph = importlib.import_module(f"{pkg}.models.graph")
    z = np.load(source)
    x, e = torch.from_numpy(z["x"]).float(), torch.from_numpy(z["edge_index"])
    torch.manual_seed(seed)
    d = x.shape[1]
    backbone = graph.build_graph_backbone("gat", d, 2.0)
    enc = graph.GraphEncoder(backbone, "row", torch.zeros(d), torch.ones(d))
    m = gm.GraphMAE(enc, gm.GraphMAEParams(), base.Context())
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    b = graph.GraphBatch(x, e)

    def step() -> float:
        t0 = time.process_time()
        loss, _ = m([b], None)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.process_time() - t0

    return step


def alternate(source: str, steps: int, ref_src: str) -> None:
    """This tree's step and the tree at ``ref_src`` (its ``selfsup`` package copied under another
    name: the package imports itself relatively) in one process, one step each in turn: both see
    the same machine load from moment to moment (a shared machine's load moves the per-process
    medians by 10 %). Prints both medians and their ratio."""
    import shutil
    import tempfile

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp())
    shutil.copytree(Path(ref_src) / "selfsup", tmp / "selfsup_ref")
    sys.path.insert(0, str(tmp))
    ref, new = _setup("selfsup_ref", source), _setup("selfsup", source)
    for _ in range(3):
        ref(), new()
    t_ref, t_new, loads = [], [], []
    for i in range(steps):
        pair = (ref, new) if i % 2 == 0 else (new, ref)
        a, b = pair[0](), pair[1]()
        t_ref.append(a if i % 2 == 0 else b)
        t_new.append(b if i % 2 == 0 else a)
        loads.append(os.getloadavg()[0])
    ratios = [n / r for n, r in zip(t_new, t_ref)]
    print(f"ref {ref_src}: median {statistics.median(t_ref):.3f} CPU s/step over {steps} steps")
    print(f"this tree: median {statistics.median(t_new):.3f} CPU s/step")
    q = statistics.quantiles(ratios, n=4)
    print(f"per-step ratio this/ref: median {q[1]:.3f} (quartiles {q[0]:.3f}, {q[2]:.3f})")
    print(f"sums over the steps: ratio {sum(t_new) / sum(t_ref):.3f}")
    print(f"load average (1 min) during the runs: {min(loads):.2f}-{max(loads):.2f}")
    shutil.rmtree(tmp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/cora.npz")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--variant", choices=VARIANTS, default="new")
    ap.add_argument("--interleave", type=int, default=0, metavar="R")
    ap.add_argument("--variants", default="sparse_drop,keep_mask,new", help="NAME or NAME@SRC")
    ap.add_argument("--alternate", metavar="SRC", help="this tree and the tree at SRC, in turn")
    a = ap.parse_args()
    if a.alternate:
        alternate(a.data, a.steps, a.alternate)
        return
    if not a.interleave:
        print(json.dumps({"variant": a.variant, "cpu_s": step_times(a.data, a.steps, a.variant)}))
        return
    times: dict[str, list[float]] = {v: [] for v in a.variants.split(",")}
    loads = []
    for r in range(a.interleave):
        for v in times:
            env, variant = dict(os.environ, OMP_NUM_THREADS="1"), v
            if "@" in v:
                variant, src = "as_is", v.split("@", 1)[1]
                env["PYTHONPATH"] = str(Path(src).resolve())
            cmd = [sys.executable, __file__, "--variant", variant, "--steps", str(a.steps)]
            res = subprocess.run(
                [*cmd, "--data", a.data], env=env, capture_output=True, text=True, check=True
            )
            got = json.loads(res.stdout.strip().splitlines()[-1])["cpu_s"]
            times[v] += got
            loads.append(os.getloadavg()[0])
            print(f"round {r} {v}: median {statistics.median(got):.3f}", flush=True)
    for v, t in times.items():
        print(f"{v}: median {statistics.median(t):.3f} CPU s/step over {len(t)} steps")
    print(f"load average (1 min) during the runs: {min(loads):.2f}-{max(loads):.2f}")


if __name__ == "__main__":
    main()
