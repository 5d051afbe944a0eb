"""Video benchmark, untrained encoders: where a video encoder loses the digit at random init.

    python benchmarks/video_random_init.py --n 600 --width 0.5 --labels digit

The clips and label files of ``benchmarks/video.py`` (the first ``--n`` clips of moving digits);
every encoder below is built at random initialisation (``--seed``) and evaluated with the video
defaults' protocols (kNN k = 20, linear probe) through :func:`selfsup.evaluation.baselines`, as the
``random init`` rows of that benchmark are. One JSON line per encoder:

- ``r2plus1d stem=S upto=K``: ``r2plus1d`` with the stem's spatial stride ``S`` (2 = the default,
  1 = a small-frame stem), its features average-pooled after stage ``K`` (-1 = the stem; 2 = the
  whole network);
- ``r2plus1d down=max`` (``r2plus1d_pool``, the default since issue 22's second round): space
  halved by max-pools instead of strided convolutions; ``pool=P`` on either: the whole network's
  features pooled by ``max`` over time and space, or ``tmax``: the mean over time of the maximum
  over space;
- ``r2plus1d stem=S no-temporal-mix``: the whole network with every temporal kernel reduced to
  its centre tap (each frame on its own, as far as the factorised convolutions go);
- ``frame_convnet`` (``pool=sub``: its max-pools replaced by taking every other pixel, as a strided
  convolution does) and ``frame resnet18 cifar_stem=C``: image encoders applied to every frame.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import Tensor, nn
from video import write_data


class Upto(nn.Module):
    """``r2plus1d``'s features pooled after stage ``k`` (-1: after the stem): ``avg`` over time and
    space, ``max`` over both, ``tmax`` the mean over time of the maximum over space."""

    capabilities = frozenset[str]()

    def __init__(self, net, k: int, pool: str = "avg"):
        super().__init__()
        self.net, self.k, self.pool = net, k, pool
        last = net.stem[1] if k < 0 else net.layers[k].bn2
        self.out_dim = last.num_features

    def forward(self, x: Tensor) -> Tensor:
        h = self.net.relu(self.net.stem(x))
        for i in range(self.k + 1):
            h = self.net.layers[i](h)
        if self.pool == "max":
            return h.amax(dim=(2, 3, 4))
        if self.pool == "tmax":
            return h.amax(dim=(3, 4)).mean(2)
        return h.mean(dim=(2, 3, 4))


class EveryOther(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x[..., ::2, ::2]


def encoders(width: float) -> dict:
    import selfsup.models.video as mv
    from selfsup.models import build_backbone
    from selfsup.models.convnet import ConvNet

    def no_time(c: int, small: bool):
        net = mv.R2Plus1D(c, width=width, small_stem=small)
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, mv.Conv2Plus1D):
                    m.temporal.weight[:, :, 0] = 0
                    m.temporal.weight[:, :, 2] = 0
        return net

    def convnet(c: int, sub: bool):
        net = ConvNet(c, widths=(16, 32, 64, 128), width=width)
        if sub:
            for i, m in enumerate(net.features):
                if isinstance(m, nn.MaxPool2d):
                    net.features[i] = EveryOther()
        return mv.FrameEncoder(net)

    out: dict = {}
    for s in (2, 1):
        for k in (-1, 0, 1, 2):
            out[f"r2plus1d stem={s} upto={k}"] = lambda c, s=s, k=k: Upto(
                mv.R2Plus1D(c, width=width, small_stem=s == 1), k
            )
        out[f"r2plus1d stem={s} no-temporal-mix"] = lambda c, s=s: no_time(c, s == 1)
    for down in ("stride", "max"):
        tag = "r2plus1d" + (" down=max" if down == "max" else "")
        for pool in ("avg", "max", "tmax"):
            name = tag if pool == "avg" else f"{tag} pool={pool}"
            out[name] = lambda c, d=down, p=pool: Upto(
                mv.R2Plus1D(c, width=width, downsample=d), 2, p
            )
    out["frame_convnet"] = lambda c: convnet(c, False)
    out["frame_convnet pool=sub"] = lambda c: convnet(c, True)
    for cs in (False, True):
        out[f"frame resnet18 cifar_stem={cs}"] = lambda c, cs=cs: mv.FrameEncoder(
            build_backbone("resnet18", c, 32, cs, width)
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--labels", default="digit", choices=("digit", "motion"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated encoder names (default: all)")
    ap.add_argument("--out", default="/tmp/selfsup-video-random-init")
    a = ap.parse_args()

    import selfsup.models.video as mv
    from selfsup import config as conf
    from selfsup import evaluation, methods
    from selfsup.modalities import modality_of
    from selfsup.parts import encoder_meta, load_data, with_defaults

    torch.set_num_threads(1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = write_data(out, a.n)
    cfg = conf.validate(
        {
            "method": "cvrl",
            "data": {"source": str(paths[f"video_{a.labels}"])},
            "model": {"width": a.width},
            "train": {"seed": a.seed},
        }
    )
    splits, bank, query = load_data(cfg)
    cfg = with_defaults(cfg, splits.train)
    mod = modality_of(splits.train)
    needs = methods.requirements(cfg.method, cfg.params)
    meta = encoder_meta(cfg, mod, mod.input_meta(cfg, splits.train, needs)[1], needs)
    only = [o for o in a.only.split(",") if o]
    build = mv.build_video_backbone
    try:
        for name, make in encoders(a.width).items():
            if only and name not in only:
                continue
            mv.build_video_backbone = lambda _n, c, _s, _w=1.0, make=make: make(c)
            c0 = time.process_time()
            r = evaluation.baselines(cfg, bank, query, meta, torch.device("cpu"))["random_init"]
            row = {k: round(v, 3) for k, v in r.items() if k in ("knn_top1", "linear_top1")}
            row = {"encoder": name, "labels": a.labels, "seed": a.seed, **row}
            print(json.dumps({**row, "cpu_s": round(time.process_time() - c0, 1)}), flush=True)
    finally:
        mv.build_video_backbone = build


if __name__ == "__main__":
    main()
