"""Two gloo processes with global batch 2B end where one process with batch 2B ends."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp
from _ddp_worker import spawn_main, train_weights

#: (id, method, overrides). MoCo's split BatchNorm is per-rank chunks under DDP, so 1 split here;
#: gradient caching without SyncBatchNorm normalises the same chunks in 1 and 2 processes (BatchNorm
#: over 8 samples amplifies rounding differences step after step, hence its lower learning rate).
JOBS = [("simclr", "simclr", []), ("moco", "moco", ["loss.bn_splits=1", "loss.queue_size=32"]),
        ("byol", "byol", []),
        ("simclr-chunked", "simclr", ["train.chunk_size=4", "train.sync_bn=false", "optim.lr=0.1"])]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.start_processes(spawn_main, args=(2, free_port(), JOBS, str(out)), nprocs=2, join=True,
                       start_method="spawn")
    return out


@pytest.mark.parametrize("key,name,overrides", JOBS, ids=[j[0] for j in JOBS])
def test_two_processes_match_one(ddp_runs, tmp_path, key, name, overrides):
    one = train_weights(name, tmp_path / name, overrides=overrides)
    two = torch.load(ddp_runs / f"{key}-ddp.pt")
    assert one.keys() == two.keys()
    start = train_weights(name, tmp_path / "start", steps_epochs=1, overrides=overrides + ["train.epochs=1"])
    moved = max(float((one[k] - start[k]).abs().max()) for k in one if one[k].is_floating_point())
    assert moved > 1e-3  # training changed the weights, so equality below means something
    for k in one:
        if ("running" in k or "num_batches" in k) and "sync_bn=false" in str(overrides):
            continue  # without SyncBatchNorm each rank keeps its own running statistics (rank 0's are kept)
        if one[k].is_floating_point():
            torch.testing.assert_close(two[k], one[k], atol=1e-4, rtol=1e-5, msg=k)  # running_var ~100
        else:
            assert torch.equal(two[k], one[k]), k
