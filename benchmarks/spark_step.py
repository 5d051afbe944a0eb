"""CPU milliseconds of one SparK training step on digits for each decoder option (issue 24).

    OMP_NUM_THREADS=1 python benchmarks/spark_step.py --steps 100

Batch 128 of 16 px one-channel images, `convnet`, patch 4, bf16 autocast (as
`configs/spark-digits.yaml` runs on a CPU with native bf16; `--fp32` to turn it off), AdamW; for
each of (`light`, `none`), (`light`, `bn`), (`unet`, `none`), (`unet`, `bn`) as (`params.decoder`,
`params.densify_norm`): 10 warm-up steps, then the mean process CPU time of `--steps` steps, and
the decoder's parameter count. One torch thread.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

VARIANTS = (("light", "none"), ("light", "bn"), ("unet", "none"), ("unet", "bn"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    a = ap.parse_args()

    from selfsup import methods
    from selfsup.config import ModelConfig
    from selfsup.models import build_backbone
    from selfsup.models.encoder import Encoder

    torch.set_num_threads(1)
    x = torch.rand(128, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    for dec, norm in VARIANTS:
        torch.manual_seed(0)
        enc = Encoder(build_backbone("convnet", 1, 16), [0.5], [0.25])
        ctx = methods.Context(model=ModelConfig(), n_samples=1347, extra={"batch_size": 128})
        params = {"patch_size": 4, "decoder": dec, "densify_norm": norm}
        m = methods.build("spark", enc, params, ctx)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)

        def step(m: torch.nn.Module = m, opt: torch.optim.Optimizer = opt) -> None:
            auto = nullcontext() if a.fp32 else torch.autocast("cpu", dtype=torch.bfloat16)
            with auto:
                loss, _ = m([x], methods.Batch(x, torch.arange(128)))
            opt.zero_grad()
            loss.backward()
            opt.step()

        for _ in range(10):
            step()
        t = time.process_time()
        for _ in range(a.steps):
            step()
        ms = (time.process_time() - t) / a.steps * 1e3
        n_dec = sum(p.numel() for p in m.decoder.parameters())
        print(f"decoder={dec} densify_norm={norm}: {ms:.1f} CPU-ms a step, decoder params {n_dec}")


if __name__ == "__main__":
    main()
