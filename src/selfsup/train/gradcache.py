"""Gradient caching: an exact large-batch gradient in the memory of a small chunk.

Gao, Zhang, Han, Callan, *Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup*
(RepL4NLP 2021; authors' code: github.com/luyug/GradCache, ``src/grad_cache/grad_cache.py``).
A contrastive loss couples every sample of the batch, so gradient *accumulation* over sub-batches
changes the loss (fewer negatives). Caching keeps it:

1. embed the batch chunk by chunk without an autograd graph: ``z = f(x)``;
2. compute the loss of the whole batch of (cached) embeddings and its gradient ``g = dL/dz``;
3. re-embed each chunk with a graph and back-propagate ``g`` of that chunk into the encoder:
   ``sum_c (dz_c/dtheta)^T g_c = dL/dtheta``.

The parameter gradient equals the full-batch one whenever the encoder treats samples
independently. BatchNorm in training mode does not: each chunk is normalised with its own
statistics (as each GPU's sub-batch is in multi-GPU SimCLR without SyncBatchNorm), so with
BatchNorm the result is the exact gradient of that chunk-normalised model, not of the full-batch
one; running statistics are updated once per chunk (in step 1 only). Memory holds one chunk's
activations, plus the B x D embeddings and the loss's B x B similarities.

:func:`cached_backward` is the functional core (any tuple of towers, e.g. CLIP's two encoders);
:func:`method_step` applies it to a method that computes its loss from ``method.project(views)``
(SimCLR and the InfoNCE family: DCL, HCL, debiased, iSogCLR, GroCo, SupCon). Methods with momentum
encoders, queues or predictors are refused (:func:`unsupported_reason`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext

import torch
from torch import Tensor, nn

from ..errors import ConfigError


def chunks(n: int, chunk_size: int) -> list[tuple[int, int]]:
    return [(a, min(a + chunk_size, n)) for a in range(0, n, chunk_size)]


@contextmanager
def _frozen_bn_stats(module: nn.Module):
    """BatchNorm keeps using batch statistics but leaves its running statistics alone
    (momentum 0)."""
    saved = []
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats:
            saved.append((m, m.momentum, m.num_batches_tracked.clone()))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, mom, nbt in saved:
            m.momentum = mom
            m.num_batches_tracked.copy_(nbt)


def cached_backward(
    embed: Callable[[list[Tensor]], Sequence[Tensor]],
    inputs: list[Tensor],
    loss_fn: Callable[[list[Tensor]], Tensor],
    chunk_size: int,
    module: nn.Module | None = None,
) -> Tensor:
    """Back-propagate ``loss_fn(embed(inputs))`` into the parameters, ``chunk_size`` samples at a
    time.

    Parameters
    ----------
    embed: maps a list of per-sample inputs (all with the same first dimension) to a list of
        embeddings with that first dimension, e.g. ``lambda xs: [img_enc(xs[0]), txt_enc(xs[1])]``.
    inputs: the batch, e.g. ``[images, texts]``; sample ``i`` is row ``i`` of each.
    loss_fn: the loss of the whole batch of embeddings.
    module: the network(s) of ``embed``, whose BatchNorm running statistics are left alone during
        the second pass.

    Returns
    -------
    The loss (detached). Parameter gradients are *accumulated* into ``.grad`` as ``loss.backward()``
    would.

    Examples
    --------
    >>> loss = cached_backward(lambda xs: [f(xs[0]), g(xs[1])], [a, b],
    ...                        lambda zs: clip_loss(zs[0], zs[1], scale), 64)  # doctest: +SKIP
    """
    n = len(inputs[0])
    parts = chunks(n, chunk_size)
    with torch.no_grad():
        cached = [list(embed([x[a:b] for x in inputs])) for a, b in parts]
    leaves = [
        torch.cat([c[k] for c in cached]).detach().requires_grad_() for k in range(len(cached[0]))
    ]
    loss = loss_fn(leaves)
    loss.backward()
    grads = [z.grad for z in leaves]
    with _frozen_bn_stats(module) if module is not None else nullcontext():
        for a, b in parts:
            out = list(embed([x[a:b] for x in inputs]))
            torch.autograd.backward(out, [g[a:b] for g in grads])
    return loss.detach()


# -- methods ---------------------------------------------------------------------------------------
_REFUSED = (
    "momentum encoders, queues and predictors keep state or targets outside one batch of embeddings"
)


def unsupported_reason(method) -> str | None:
    """Why ``method`` (an instance or a registered class) cannot use gradient caching, or None."""
    from ..methods.simclr import SimCLR

    cls = method if isinstance(method, type) else type(method)
    if not issubclass(cls, SimCLR):
        return (
            "train.chunk_size (gradient caching) is exact only for methods whose loss is a "
            f"function of one batch of embeddings (simclr and the InfoNCE family); '{cls.name}' "
            f"is not ({_REFUSED}). Use a smaller batch or leave train.chunk_size unset"
        )
    return None


def check_size(chunk_size: int, local_batch: int) -> None:
    if chunk_size > local_batch:
        raise ConfigError(
            f"train.chunk_size {chunk_size} is larger than the batch of {local_batch} samples "
            "per process; use a divisor of it"
        )
    if local_batch % chunk_size:
        raise ConfigError(
            f"train.chunk_size {chunk_size} does not divide the batch of {local_batch} samples "
            "per process; use a divisor of it (every chunk then has the same size, which "
            "BatchNorm needs)"
        )


def check(method: nn.Module, chunk_size: int | None, local_batch: int) -> None:
    """Refuse, in one line, a chunk size that cannot work."""
    if chunk_size is None:
        return
    reason = unsupported_reason(method)
    if reason:
        raise ConfigError(reason)
    check_size(chunk_size, local_batch)


@contextmanager
def _patched(obj, name: str, value):
    had = name in obj.__dict__
    old = obj.__dict__.get(name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if had:
            setattr(obj, name, old)
        else:
            delattr(obj, name)


def method_step(
    model: nn.Module,
    method: nn.Module,
    views: list[Tensor],
    batch,
    chunk_size: int,
    autocast: Callable[[], object],
    no_sync: Callable[[], object],
    scale: Callable[[Tensor], Tensor] | None = None,
):
    """One gradient-cached step of ``method``: returns ``(loss, logs)`` with gradients accumulated.

    ``model`` is what is called (the method itself, or its DistributedDataParallel wrapper, so that
    gradients are averaged over ranks after the last chunk); ``method.project`` is swapped for the
    cached embeddings while the loss is computed, and ``method.forward`` for ``project`` while a
    chunk is re-embedded. ``scale`` (fp16's gradient scaler) multiplies the loss before its
    backward, so the cached embedding gradients and the parameter gradients carry the same scale.
    """
    n = len(views[0])
    parts = chunks(n, chunk_size)
    with torch.no_grad(), autocast():
        cached = [method.project([v[a:b] for v in views]) for a, b in parts]
    leaves = [
        torch.cat([c[k] for c in cached]).detach().requires_grad_() for k in range(len(views))
    ]
    with no_sync(), _patched(method, "project", lambda _views: leaves), autocast():
        loss, logs = model(views, batch)
    loss = loss.float()
    finite = bool(torch.isfinite(loss))
    with no_sync():
        target = loss if finite else loss * 0
        (target if scale is None else scale(target)).backward()
    grads = [z.grad if z.grad is not None else torch.zeros_like(z) for z in leaves]
    if not finite:
        grads = [torch.full_like(g, float("nan")) for g in grads]
    with _frozen_bn_stats(method), _patched(method, "forward", lambda vs, _b: method.project(vs)):
        for i, (a, b) in enumerate(parts):
            with no_sync() if i < len(parts) - 1 else nullcontext(), autocast():
                out = model([v[a:b] for v in views], batch)
            torch.autograd.backward([o.float() for o in out], [g[a:b] for g in grads])
    return loss, logs
