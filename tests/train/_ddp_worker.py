"""A worker for the DDP tests: trains a method on 8x8 digits with the real Trainer and writes the
final weights. Run in 1 process directly, or in N gloo processes (torch.multiprocessing spawn)."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def train_weights(
    method_name: str,
    out: Path,
    steps_epochs: int = 2,
    batch: int = 16,
    n: int = 64,
    overrides: list[str] | None = None,
    device: str = "cpu",
    initial: bool = False,
) -> dict[str, torch.Tensor]:
    """Train ``method_name`` on ``n`` digits with global batch ``batch``; the encoder's state."""
    from sklearn.datasets import load_digits

    from selfsup import methods
    from selfsup.models import build_backbone
    from selfsup.models.encoder import Encoder
    from selfsup.resolve import resolve_config
    from selfsup.train import Trainer
    from selfsup.views import ImageViews, resolve_spec

    over = [
        "model.backbone=convnet_small",
        "model.proj_hidden=32",
        "model.proj_dim=16",
        "train.precision=fp32",
        "train.progress=none",
        "optim.name=sgd",
        "optim.lr=0.1",
    ]
    cfg = resolve_config(
        method=method_name,
        batch_size=batch,
        epochs=steps_epochs,
        overrides=over + list(overrides or []),
    )
    img = load_digits().images[:n]  # 8x8 digits, 0..16
    x = torch.from_numpy((img * 15.9).round().astype("uint8"))[:, None]  # (N, 1, 8, 8) uint8
    _, spec = resolve_spec("auto", 1, 8)
    torch.manual_seed(cfg.train.seed)
    enc = Encoder(build_backbone("convnet_small", 1, spec.size), [0.3], [0.3])
    ctx = methods.Context(model=cfg.model, n_samples=n, n_views=2, extra={"batch_size": batch})
    dev = torch.device(device)
    method = methods.build(method_name, enc, cfg.params, ctx).to(dev)
    views = ImageViews(spec, 1, 2).to(dev)
    x = x.to(dev)
    torch.manual_seed(cfg.train.seed)
    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(method, views, x, cfg, out, dev)
    if not initial:  # ``initial``: the weights before training
        trainer.fit()
    return {k: v.detach().clone() for k, v in method.encoder.state_dict().items()}


def spawn_main(rank: int, world: int, rendezvous: str, jobs: list, out: str) -> None:
    """One rank: joins through a rendezvous *file* (no TCP port that another test could take)."""
    import datetime

    import torch.distributed as dist

    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world)
    )
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{rendezvous}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=120),
    )
    try:
        for key, name, overrides in jobs:
            w = train_weights(name, Path(out) / f"{key}-ddp", overrides=overrides)
            if rank == 0:
                torch.save(w, Path(out) / f"{key}-ddp.pt")
        dist.barrier()
    finally:
        dist.destroy_process_group()
