"""Micro-benchmarks behind the training step's design choices (BENCHMARKS.md):

- one optimiser step: per-tensor (foreach) vs fused AdamW and SGD, convnet + projection head;
- forward+backward of 512 images of 32 px in fp32 and under bf16 autocast, per backbone;
- two views of 256 CIFAR-sized images: the torch backend vs kornia.

    python benchmarks/step_micro.py --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch

from selfsup.models import BACKBONES, projection_head
from selfsup.views import PRESETS, ImageViews


def timeit(fn, n: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    model = torch.nn.Sequential(BACKBONES["convnet"](3, True, 1.0), projection_head(256, 512, 128))
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    print(f"optimiser step, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters:")
    for name, make in [
        ("AdamW per-tensor", lambda ps: torch.optim.AdamW(ps, lr=1e-3, foreach=False)),
        ("AdamW foreach", lambda ps: torch.optim.AdamW(ps, lr=1e-3, foreach=True)),
        ("AdamW fused", lambda ps: torch.optim.AdamW(ps, lr=1e-3, fused=True)),
        ("SGD foreach", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, foreach=True)),
        ("SGD fused", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, fused=True)),
    ]:
        opt = make(model.parameters())
        print(f"  {name:18s} {timeit(opt.step, 20) * 1e3:8.2f} ms")

    x = torch.randn(512, 3, 32, 32)
    print("forward+backward, 512 images of 32 px:")
    for name in ("convnet", "convnet_deep", "resnet18"):
        width = 0.25 if name == "resnet18" else 1.0
        m = BACKBONES[name](3, True, width)
        row = []
        for bf16 in (False, True):

            def step(m=m, bf16=bf16):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    y = m(x).float().sum()
                y.backward()

            row.append(timeit(step, 4, 1))
        label = (
            f"{name}{' x0.25' if width != 1 else ''} "
            f"({sum(p.numel() for p in m.parameters()) / 1e6:.2f} M)"
        )
        print(f"  {label:26s} fp32 {row[0]:.3f} s   bf16 {row[1]:.3f} s   ({row[0] / row[1]:.2f}x)")

    xb = torch.randint(0, 256, (256, 3, 32, 32), dtype=torch.uint8)
    print("two views of 256 CIFAR images (cifar preset):")
    for backend in ("torch", "kornia"):
        v = ImageViews(PRESETS["cifar"], 3, 2, backend)
        print(f"  {backend:7s} {timeit(lambda v=v: v(xb), 10) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
