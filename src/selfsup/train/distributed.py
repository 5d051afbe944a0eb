"""Data-parallel training on PyTorch's own engine: process groups, DDP, SyncBatchNorm, sharding.

A run is distributed when it was started by ``torchrun`` (or ``selfsup train --nproc N``, which
starts torchrun's launcher): the environment then holds ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
the rendezvous address. :func:`init` joins the process group (gloo on CPU, NCCL on CUDA, with a
timeout so that a rank that stops answering ends the job instead of hanging it), and everything
else here is a no-op with one process.

Sharding: ``train.batch_size`` is the global batch. Every rank computes the same seeded global
order and takes its contiguous slice of each global batch (rank ``r`` of ``R`` takes samples
``[r B/R, (r+1) B/R)``), so the global batch does not depend on the process count, and gathered
embeddings (:func:`selfsup.losses.distributed.gather`) come back in the single-process order.

View randomness is keyed by (seed, step) (:func:`view_seed`): with ``train.view_sharding=global``
each rank draws the views of the whole global batch and keeps its slice, so a sample gets the same
views whatever the process count. The batched view makers draw their random parameters per batch
(one generator, some choices shared by the batch, such as colour-jitter order), so per-sample keys
would need a call per sample; this costs R times the augmentation work instead, a small share of a
step. ``view_sharding=local`` draws only the slice, keyed by (seed, step, rank): cheaper, but the
views then depend on the process count.
"""

from __future__ import annotations

import datetime
import os
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError, TrainingError
from ..losses.distributed import world

__all__ = [
    "world",
    "is_main",
    "launched",
    "init",
    "shutdown",
    "barrier",
    "broadcast_object",
    "reduce_sum",
    "convert_sync_batchnorm",
    "view_seed",
    "keyed_rng",
    "slice_of",
    "local_device",
]


def launched() -> bool:
    """True when this process was started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def is_main() -> bool:
    """Rank 0 (or the only process): the one that writes files and logs. Under torchrun the rank
    comes from the environment when the process group is not (or no longer) joined, so a worker
    whose group was shut down at the end of a run still knows it is not rank 0."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return not launched() or os.environ.get("RANK", "0") == "0"


def local_device(device: torch.device) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` for CUDA, the device itself otherwise."""
    if device.type == "cuda" and launched():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def init(device: torch.device, timeout_s: float = 900.0, backend: str | None = None) -> bool:
    """Join the process group torchrun described in the environment (once); False without one."""
    if not launched():
        return False
    if dist.is_initialized():
        return True
    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(local_device(device))
    try:
        with _native_stderr_held():  # c10d logs every failed connection attempt from C++
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError, OSError) as err:  # DistNetworkError is a RuntimeError
        where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
        first = (str(err).splitlines() or [""])[0][:160]
        raise TrainingError(
            f"rank {os.environ.get('RANK')} could not join the process group at {where} "
            f"({type(err).__name__}: {first}); check --rdzv-endpoint and that every node "
            "can reach it"
        ) from None
    return True


@contextmanager
def _native_stderr_held():
    """Hold what native code writes to stderr; replay it on success, drop it on failure (the
    failure then becomes one line)."""
    import sys
    import tempfile

    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured): nothing to hold
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), fd)
        ok = False
        try:
            yield
            ok = True
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            if ok:
                held.seek(0)
                text = held.read().decode(errors="replace")
                if text:
                    sys.stderr.write(text)


def shutdown() -> None:
    """Leave the process group (the trainer has already freed its DDP wrapper, see
    :meth:`selfsup.train.Trainer.fit`)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(what: str = "") -> None:
    """Wait for every rank; a rank that died or hangs ends the job with one error (the timeout)."""
    if world()[1] == 1:
        return
    try:
        dist.barrier()
    except RuntimeError as err:
        raise TrainingError(_lost(what, err)) from None


def _lost(what: str, err: BaseException) -> str:
    first = (str(err).splitlines() or [""])[0][:160]
    at = f" at {what}" if what else ""
    return (
        f"rank {world()[0]} lost contact with the other ranks{at} ({first}); a rank died or "
        "stopped answering: the job was stopped. Continue with: selfsup train --resume RUN_DIR"
    )


def is_comm_error(err: BaseException) -> bool:
    """Whether ``err`` came from a collective whose peer died or stopped answering."""
    if isinstance(err, getattr(dist, "DistError", ())):
        return True
    text = str(err)
    return any(
        k in text for k in ("gloo", "NCCL", "Connection closed", "Connection reset", "Broken pipe")
    )


def lost(err: BaseException, what: str = "") -> TrainingError:
    """The one-line error of a rank that lost the others."""
    return TrainingError(_lost(what, err))


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank (e.g. the run directory chosen with a timestamp)."""
    if world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def reduce_sum(t: torch.Tensor, what: str = "") -> torch.Tensor:
    """Sum of a detached tensor over ranks (a copy); raises :class:`TrainingError` on a lost
    rank."""
    if world()[1] == 1:
        return t
    t = t.detach().clone()
    try:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    except RuntimeError as err:
        raise TrainingError(_lost(what, err)) from None
    return t


def slice_of(n: int) -> tuple[int, int]:
    """This rank's ``[lo, hi)`` slice of a global batch of ``n`` samples (``n`` divisible by R)."""
    rank, size = world()
    b = n // size
    return rank * b, (rank + 1) * b


def check_batch(batch_size: int, nproc: int) -> None:
    if nproc > batch_size:
        raise ConfigError(
            f"--nproc {nproc} is larger than the batch size {batch_size}; each process needs "
            "at least one sample of the global batch (use a smaller --nproc)"
        )
    if batch_size % nproc:
        raise ConfigError(
            f"the batch size {batch_size} is not divisible by --nproc {nproc}; every process "
            f"takes an equal share (use --batch-size {batch_size - batch_size % nproc})"
        )
    if nproc > 1 and batch_size // nproc < 2:  # in-batch losses need two samples on each rank
        raise ConfigError(
            f"the batch size {batch_size} over --nproc {nproc} leaves 1 sample per process; "
            f"in-batch losses need at least 2 per process (use --batch-size {2 * nproc} or more, "
            "or fewer processes)"
        )


# -- view randomness -------------------------------------------------------------------------------
_M = (1 << 63) - 1


def view_seed(seed: int, step: int, rank: int = -1) -> int:
    """A 63-bit seed from (seed, step[, rank]) (SplitMix64-style mixing, so nearby keys differ)."""
    x = (
        seed * 0x9E3779B97F4A7C15
        + (step + 1) * 0xBF58476D1CE4E5B9
        + (rank + 1) * 0x94D049BB133111EB
    ) & _M
    x ^= x >> 31
    x = (x * 0xD6E8FEB86659FD93) & _M
    return x ^ (x >> 29)


@contextmanager
def keyed_rng(seed: int, device: torch.device):
    """Run a block with torch's generators seeded to ``seed``; the global streams are restored
    afterwards (the method's own randomness does not depend on how views were drawn)."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
        torch.random.default_generator.manual_seed(seed)
        if devices:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


# -- SyncBatchNorm ---------------------------------------------------------------------------------
class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks, differentiable: the gradient of each rank's input is the sum of the output
    gradients of all ranks (every rank's output depends on every rank's input)."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        return x

    @staticmethod
    def backward(ctx, g):
        g = g.clone()
        dist.all_reduce(g, op=dist.ReduceOp.SUM)
        return g


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm with batch statistics over every rank, for the gloo (CPU) backend.

    ``torch.nn.SyncBatchNorm`` runs on GPUs only; this is the same computation written with two
    differentiable all-reduces (the sum and count, then the centred sum of squares, so the variance
    is as accurate as the single-process one). Eval mode and one process use plain BatchNorm.
    """

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x):
        if not self.training or world()[1] == 1:
            return super().forward(x)
        c = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        xf = x.float()
        n_local = torch.tensor([x.numel() // c], dtype=xf.dtype, device=x.device)
        s = _AllReduceSum.apply(torch.cat([xf.sum(dims), n_local]))
        n = s[-1]
        mean = s[:-1] / n
        shape = [1, c] + [1] * (x.dim() - 2)
        xc = xf - mean.view(shape)
        var = _AllReduceSum.apply((xc * xc).sum(dims)) / n
        y = xc * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = (
                    self.momentum
                    if self.momentum is not None
                    else 1.0 / float(self.num_batches_tracked)
                )
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), m)
                unbiased = var * (n / (n - 1).clamp_min(1))
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), m)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm layer of ``module`` synchronised over ranks (parameters and buffers are the
    same objects, so an optimiser built before or after sees the same tensors)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_cpu(module)


def _convert_cpu(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, CPUSyncBatchNorm
    ):
        out = CPUSyncBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        )
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        if module.track_running_stats:
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
    for name, child in module.named_children():
        out.add_module(name, _convert_cpu(child))
    return out


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def wrap(method: nn.Module, device: torch.device) -> nn.Module:
    """``method`` in DistributedDataParallel (gradients averaged over ranks in backward).

    ``find_unused_parameters`` is on, since some methods leave parameters out of some steps
    (warm-ups, predictors refreshed in closed form); buffers are broadcast from rank 0 before every
    forward, which keeps state such as EMA statistics identical on every rank.
    """
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(method, device_ids=ids, find_unused_parameters=True)
