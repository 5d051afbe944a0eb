"""Cost of checkpoint checksums: save and load time of a ResNet-50-sized training state (weights
plus two AdamW moments, float32) with the checksum, beside the checksum alone.

    python benchmarks/checkpoint_checksum.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from selfsup.models import build_backbone
from selfsup.train import checkpoint as ckpt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = build_backbone("resnet50", 3, 224, False, 1.0).state_dict()
    state = {
        "model": model,
        "optimizer": {
            "exp_avg": {k: torch.randn_like(v) for k, v in model.items() if v.is_floating_point()},
            "exp_avg_sq": {
                k: torch.rand_like(v) for k, v in model.items() if v.is_floating_point()
            },
        },
        "progress": {"step": 1},
    }
    tensors: dict = {}
    meta = json.dumps(ckpt.flatten(state, "s", tensors))
    mb = sum(t.numel() * t.element_size() for t in tensors.values()) / 2**20
    best = {"checksum_s": 1e9, "save_s": 1e9, "load_s": 1e9}
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "step-00000001.safetensors"
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ckpt.checksum(tensors, meta)
            t1 = time.perf_counter()
            ckpt.save(p, state)
            t2 = time.perf_counter()
            ckpt.load(p)
            t3 = time.perf_counter()
            for k, v in zip(best, (t1 - t0, t2 - t1, t3 - t2)):
                best[k] = min(best[k], v)
    print(json.dumps({"state_mb": round(mb, 1), **{k: round(v, 3) for k, v in best.items()}}))


if __name__ == "__main__":
    main()
