"""CPU seconds of one video encoder training step (forward and backward), encoders alternated.

    python benchmarks/video_step.py            # r2plus1d_pool, two_pathway, frame_convnet

Each round runs every named encoder once on the same batch of random clips (64 clips of 8 x 32 x
32, one channel: the two views of a `cvrl` batch of 32 at `model.width=0.5`); the median over the
rounds after the first is printed, in process CPU seconds, one torch thread.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoders", default="r2plus1d_pool,two_pathway,frame_convnet")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--width", type=float, default=0.5)
    a = ap.parse_args()

    import torch

    from selfsup.models.video import build_video_backbone

    torch.set_num_threads(1)
    names = [n for n in a.encoders.split(",") if n]
    nets = {n: build_video_backbone(n, 1, 32, a.width) for n in names}
    x = torch.rand(64, 1, 8, 32, 32)
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(a.rounds):
        for n, net in nets.items():
            c = time.process_time()
            net(x).pow(2).mean().backward()
            times[n].append(time.process_time() - c)
    for n in names:
        print(f"{n:16s} {statistics.median(times[n][1:]):.3f} CPU s / step")


if __name__ == "__main__":
    main()
