"""Two gloo processes on CPU with B samples each give the loss and gradients of one process with
2B."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

B, D, WORLD = 5, 6, 2


def _inputs():
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(WORLD * B, D, generator=g, dtype=torch.float64)
    z2 = torch.randn(WORLD * B, D, generator=g, dtype=torch.float64)
    z3 = torch.randn(WORLD * B, D, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, -1, 2, 0, 1, 1, -1, 2, 3])
    return z1, z2, z3, y


def _losses():
    from selfsup.losses import ISogCLR, clip_loss, dcl, dclw, groco, hcl, nt_xent, supcon

    isog = ISogCLR(2 * WORLD * B).double()
    return {
        "nt_xent": lambda a, b, c, y, i: nt_xent(a, b, 0.3),
        "nt_xent_tiled": lambda a, b, c, y, i: nt_xent(a, b, 0.3, tiled=True),
        "dcl": lambda a, b, c, y, i: dcl(a, b, 0.2),
        "dclw": lambda a, b, c, y, i: dclw(a, b, 0.2, 0.5),
        "hcl": lambda a, b, c, y, i: hcl(a, b, 0.5, 0.1, 1.0, tiled=True),
        "supcon": lambda a, b, c, y, i: supcon(torch.stack([a, b, c], 1), y, 0.2),
        "clip": lambda a, b, c, y, i: clip_loss(a, b, 2.0),
        "groco": lambda a, b, c, y, i: groco(torch.stack([a, b], 1).float(), k=3).double(),
        "isogclr": lambda a, b, c, y, i: isog(a, b, i * 2),
    }, isog


def _run(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        z1, z2, z3, y = _inputs()
        sl = slice(rank * B, (rank + 1) * B)
        fns, isog = _losses()
        res = {}
        for name, f in fns.items():
            xs = [z[sl].clone().requires_grad_(True) for z in (z1, z2, z3)]
            loss = f(*xs, y[sl], torch.arange(WORLD * B)[sl])
            grads = torch.autograd.grad(loss, xs[:2])
            res[name] = (loss.detach(), [g.detach() for g in grads])
        res["isog_tau"] = isog.state.tau.clone()
        torch.save(res, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_two_processes_equal_one(tmp_path):
    mp.spawn(_run, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    parts = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    z1, z2, z3, y = _inputs()
    fns, isog = _losses()
    for name, f in fns.items():
        xs = [z.clone().requires_grad_(True) for z in (z1, z2, z3)]
        loss = f(*xs, y, torch.arange(WORLD * B))
        grads = torch.autograd.grad(loss, xs[:2])
        # DDP averages over ranks: the mean of the ranks' losses and of their gradients
        mean_loss = sum(p[name][0] for p in parts) / WORLD
        torch.testing.assert_close(mean_loss, loss.detach(), atol=1e-6, rtol=1e-6, msg=name)
        for v in range(2):
            got = torch.cat([p[name][1][v] for p in parts]) / WORLD
            torch.testing.assert_close(got, grads[v], atol=1e-6, rtol=1e-6, msg=name)
    for p in parts:  # every rank holds the whole updated iSogCLR state
        torch.testing.assert_close(p["isog_tau"], isog.state.tau, atol=1e-12, rtol=0)
