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
from pathlib import Path

from ..errors import ConfigError, TrainingError


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check(
    nproc: int,
    batch_size: int,
    device: str,
    chunk_size: int | None = None,
    method: str | None = None,
) -> None:
    """Refuse, in one line, a process count this machine or batch cannot serve."""
    from . import distributed as ddp
    from . import gradcache

    ddp.check_batch(batch_size, nproc)
    if nproc > 1:
        import torch

        use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        if use_cuda and nproc > torch.cuda.device_count():
            raise ConfigError(
                f"--nproc {nproc} is more than the {torch.cuda.device_count()} GPUs of this "
                "machine; use one process per GPU"
            )
        if not use_cuda and nproc > usable_cores():
            raise ConfigError(
                f"--nproc {nproc} is more than the {usable_cores()} CPU cores this process may "
                f"use; use --nproc {usable_cores()} or less"
            )
    if chunk_size is not None and method is not None:
        from ..methods import REGISTRY

        cls = REGISTRY.get(method)
        reason = gradcache.unsupported_reason(cls) if cls is not None else None
        if reason:
            raise ConfigError(reason)
        gradcache.check_size(chunk_size, batch_size // nproc)


ERROR_DIR_ENV = "SELFSUP_ERROR_DIR"


def worker_error(err: BaseException) -> bool:
    """In a worker started by :func:`launch`: leave ``err``'s one line to the launcher (which prints
    one line for the whole job) and return True; False elsewhere (the CLI prints it)."""
    d = os.environ.get(ERROR_DIR_ENV)
    if not d or "RANK" not in os.environ:
        return False
    kind = "lost" if "lost contact" in str(err) else "error"
    try:
        with open(os.path.join(d, f"rank-{os.environ['RANK']}.txt"), "w", encoding="utf-8") as f:
            f.write(f"{kind}\n{err}")
    except OSError:
        return False
    return True


def launch(argv: list[str], nproc: int, run_dir: str | None = None) -> int:
    """Run ``python -m selfsup <argv>`` in ``nproc`` local processes; the workers' exit status."""
    import tempfile

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # the agent logs each failed worker at ERROR level; the failure becomes one line here instead
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, usable_cores() // nproc)))
    # the workers' C++ warnings (DDP's reducer on find_unused_parameters, c10d) on every run: noise
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        max_restarts=0,
        monitor_interval=0.2,
    )
    resume = f"selfsup train --resume {run_dir}" if run_dir else "selfsup train --resume RUN_DIR"
    with tempfile.TemporaryDirectory(prefix="selfsup-launch-") as errors:
        os.environ[ERROR_DIR_ENV] = errors
        try:
            elastic_launch(config, sys.executable)("-m", "selfsup", *argv)
        except (
            SignalException
        ) as sig:  # the workers were given the signal, checkpointed and stopped
            name = signal.Signals(sig.sigval).name
            print(
                f"interrupted: stopped by {name}; rank 0 wrote a checkpoint. "
                f"Continue with: {resume}",
                file=sys.stderr,
            )
            return 128 + int(sig.sigval)
        except ChildFailedError as err:
            return _failure(err, resume, errors)
        finally:
            os.environ.pop(ERROR_DIR_ENV, None)
    return 0


def _failure(err, resume: str, errors: str) -> int:
    """One line for the job: the root cause among the failed workers."""
    failures = err.failures
    codes = [f.exitcode for f in failures.values()]
    for c in codes:
        if c in (130, 143):
            return c  # stopped by a signal after checkpointing; rank 0 said so
    messages = {}  # rank -> (kind, message) of the workers that left a one-line error
    for name in os.listdir(errors):
        kind, _, msg = Path(errors, name).read_text(encoding="utf-8").partition("\n")
        messages[int(name[len("rank-") : -len(".txt")])] = (kind, msg)

    def priority(item):
        rank, f = item
        kind = messages.get(rank, ("", ""))[0]
        if (
            f.exitcode < 0
        ):  # killed: the cause, unless it is the agent's own SIGTERM to the survivors
            order = 4 if -f.exitcode in (signal.SIGTERM, signal.SIGINT) else 0
        else:
            order = 1 if kind == "error" else 3 if kind == "lost" else 2
        return (order, f.timestamp, rank)

    rank, first = min(failures.items(), key=priority)
    if rank in messages and first.exitcode >= 0:
        raise TrainingError(messages[rank][1])
    errors_left = [msg for _, (kind, msg) in sorted(messages.items()) if kind == "error"]
    if errors_left and first.exitcode >= 0:  # a worker that was not among the recorded failures
        raise TrainingError(errors_left[0])
    if first.exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-first.exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-first.exitcode}"
    else:
        how = f"exited with status {first.exitcode}"
    raise TrainingError(
        f"rank {rank} (pid {first.pid}) {how}; the other ranks were stopped. The last "
        f"checkpoint is intact; continue with: {resume}"
    )
