"""Two gloo processes with B samples each equal one process with 2B (issue 20): Sinkhorn's codes
and SwAV's loss (global sums over the batch and each rank's share of the queue), DINO's centre (its
loss is per sample; only the centre needs global sums)."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_contrastive_distributed import _free_port

from selfsup.losses import Centre, sinkhorn, swav_loss

B, K, Q, WORLD = 5, 4, 6, 2


def _inputs():
    g = torch.Generator().manual_seed(0)
    scores = [torch.randn(WORLD * B, K, generator=g, dtype=torch.float64) * 0.5 for _ in range(3)]
    queue = [torch.randn(WORLD * Q, K, generator=g, dtype=torch.float64) * 0.5 for _ in range(2)]
    teacher = torch.randn(WORLD * B, K, generator=g, dtype=torch.float64)
    return scores, queue, teacher


def _run(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        scores, queue, teacher = _inputs()
        sl, ql = slice(rank * B, (rank + 1) * B), slice(rank * Q, (rank + 1) * Q)
        xs = [s[sl].clone().requires_grad_(True) for s in scores]
        loss = swav_loss(xs, 2, 0.1, 0.05, 3, [q[ql] for q in queue])
        grad = torch.autograd.grad(loss, xs[2])[0]
        c = Centre(K).double()
        c.update(teacher[sl])
        res = {
            "codes": sinkhorn(scores[0][sl], 0.05, 3),
            "swav": (loss.detach(), grad),
            "centre": c.centre.clone(),
        }
        torch.save(res, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_two_processes_equal_one(tmp_path):
    mp.spawn(_run, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    parts = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    scores, queue, teacher = _inputs()
    torch.testing.assert_close(
        torch.cat([p["codes"] for p in parts]), sinkhorn(scores[0], 0.05, 3), atol=1e-9, rtol=0
    )
    xs = [s.clone().requires_grad_(True) for s in scores]
    # the union of the ranks' queues is the single process's queue (order does not matter)
    loss = swav_loss(xs, 2, 0.1, 0.05, 3, queue)
    grad = torch.autograd.grad(loss, xs[2])[0]
    mean_loss = sum(p["swav"][0] for p in parts) / WORLD
    torch.testing.assert_close(mean_loss, loss.detach(), atol=1e-9, rtol=1e-9)
    got = torch.cat([p["swav"][1] for p in parts]) / WORLD  # DDP averages the ranks' gradients
    torch.testing.assert_close(got, grad, atol=1e-9, rtol=1e-9)
    c = Centre(K).double()
    c.update(teacher)
    for p in parts:
        torch.testing.assert_close(p["centre"], c.centre, atol=1e-12, rtol=0)
