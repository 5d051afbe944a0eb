"""Two gloo processes with global batch 2B end where one process with batch 2B ends."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp

from _ddp_worker import spawn_main, train_weights

JOBS = [("simclr", []), ("moco", ["loss.bn_splits=1", "loss.queue_size=32"]), ("byol", [])]


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


@pytest.mark.parametrize("name,overrides", JOBS)
def test_two_processes_match_one(ddp_runs, tmp_path, name, overrides):
    one = train_weights(name, tmp_path / name, overrides=overrides)
    two = torch.load(ddp_runs / f"{name}-ddp.pt")
    assert one.keys() == two.keys()
    start = train_weights(name, tmp_path / "start", steps_epochs=1, overrides=overrides + ["train.epochs=1"])
    moved = max(float((one[k] - start[k]).abs().max()) for k in one if one[k].is_floating_point())
    assert moved > 1e-3  # training changed the weights, so equality below means something
    for k in one:
        if one[k].is_floating_point():
            torch.testing.assert_close(two[k], one[k], atol=1e-4, rtol=1e-5, msg=k)  # running_var ~100
        else:
            assert torch.equal(two[k], one[k]), k
