"""``selfsup train --nproc N``: N processes on this machine through torchrun's own launcher.

The command line is re-run in N worker processes by ``torch.distributed.launcher`` (the elastic
agent behind ``torchrun --standalone``): a local rendezvous on a free port, ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK`` in each worker's environment, workers in their own session. The agent watches the
workers: when one dies, it stops the others, and this launcher turns the failure into one line.
A SIGINT/SIGTERM sent to the launcher is passed on once to every worker, which finish their step,
agree on stopping (:mod:`.distributed`), let rank 0 write a checkpoint, and exit with 130/143.

Several machines: run the plain ``torchrun`` command on each (see the README); the workers are the
same ``python -m selfsup train ...`` processes.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import uuid

from ..errors import ConfigError, TrainingError


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check(nproc: int, batch_size: int, device: str, chunk_size: int | None = None, method: str | None = None) -> None:
    """Refuse, in one line, a process count this machine or batch cannot serve."""
    from . import distributed as D
    from . import gradcache

    if nproc > 1:
        import torch

        use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        if use_cuda and nproc > torch.cuda.device_count():
            raise ConfigError(f"--nproc {nproc} is more than the {torch.cuda.device_count()} GPUs of this "
                              "machine; use one process per GPU")
        if not use_cuda and nproc > usable_cores():
            raise ConfigError(f"--nproc {nproc} is more than the {usable_cores()} CPU cores this process may "
                              f"use; use --nproc {usable_cores()} or less")
    D.check_batch(batch_size, nproc)
    if chunk_size is not None and method is not None:
        from ..methods import REGISTRY

        cls = REGISTRY.get(method)
        reason = gradcache.unsupported_reason(cls) if cls is not None else None
        if reason:
            raise ConfigError(reason)
        gradcache.check_size(chunk_size, batch_size // nproc)


def launch(argv: list[str], nproc: int, run_dir: str | None = None) -> int:
    """Run ``python -m selfsup <argv>`` in ``nproc`` local processes; the workers' exit status."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, usable_cores() // nproc)))
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0,
                          monitor_interval=0.2)
    resume = f"selfsup train --resume {run_dir}" if run_dir else "selfsup train --resume RUN_DIR"
    try:
        elastic_launch(config, sys.executable)("-m", "selfsup", *argv)
    except SignalException as sig:  # the workers were given the signal, checkpointed and stopped
        name = signal.Signals(sig.sigval).name
        print(f"interrupted: stopped by {name}; rank 0 wrote a checkpoint. Continue with: {resume}",
              file=sys.stderr)
        return 128 + int(sig.sigval)
    except ChildFailedError as err:
        return _failure(err, resume)
    return 0


def _failure(err, resume: str) -> int:
    """One line for a failed worker (or the status it chose when it already printed its own)."""
    failures = err.failures
    codes = {rank: f.exitcode for rank, f in failures.items()}
    if all(c in (130, 143) for c in codes.values()):
        return next(iter(codes.values()))  # stopped by a signal after checkpointing; rank 0 said so
    first_rank, first = min(failures.items(), key=lambda kv: kv[1].timestamp)
    if first.exitcode == 2:  # a one-line error the worker printed itself
        return 2
    if first.exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-first.exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-first.exitcode}"
    else:
        how = f"exited with status {first.exitcode}"
    raise TrainingError(f"rank {first_rank} (pid {first.pid}) {how}; the other ranks were stopped. The last "
                        f"checkpoint is intact; continue with: {resume}")
