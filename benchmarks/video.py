"""Video benchmark: what a video method learns of motion that a frame-level one cannot, on moving
digits.

    python benchmarks/video.py --n 600 --epochs 6 --width 0.5 --runs cvrl,simclr_frames,image_frames
    python benchmarks/video.py --runs cvrl --set views.video.interval=same     # one knob at a time
    python benchmarks/video.py --data cifar_pan --cifar /tmp/cifar10 --runs cvrl   # natural images

``--data cifar_pan`` checks a default on clips it was not chosen on: CIFAR-10 photographs seen
through a 32 px window that pans over the (reflect-padded) image, 1 px a frame, still, horizontally,
vertically or diagonally (bouncing at the edges), 16 frames; the appearance labels are the ten
classes (reported under ``digit``, the second label set), the motion labels the four motions. It
reads an unpacked CIFAR-10 image folder (``../shared/data/README.md``).

The clips are ``make_moving_digits`` (scikit-learn digits bouncing on a 32x32 canvas, 16 frames;
the first ``--n`` clips, 75/25 split), written once as two video ``.npz`` files of the same clips:
one with the motion labels, one with the digit labels. Each run pretrains on the clips (labels
unused) with ``selfsup.train`` and is evaluated with kNN and the linear probe on both label sets.
Runs (``--runs``):

- ``cvrl``: ``cvrl`` with the video defaults (``r2plus1d_pool``, CVRL's views; ``--set
  model.backbone=r2plus1d`` for the strided network, the default before issue 22's second round);
- ``simclr_video``: ``simclr`` on the same clips and encoder (only the temperature/head differ);
- ``simclr_frames``: ``simclr`` with ``--backbone frame_convnet`` on the same clip views (the image
  ConvNet on every frame, mean-pooled over time: the frame-level baseline);
- ``image_frames``: ``simclr`` on the middle frames as *images* (the image modality's defaults);
- ``video_mae``: the masked video autoencoder with image-video contrast (``video_vit``).

Each line of output is JSON: the run, motion and digit kNN/linear top-1, the random-init and
raw-input (middle-frame pixels) baselines for both label sets, and the CPU seconds of the process
(``time.process_time``; training and evaluation).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RUNS = {
    "cvrl": ("cvrl", "video", []),
    "simclr_video": ("simclr", "video", []),
    "simclr_frames": ("simclr", "video", ["model.backbone=frame_convnet"]),
    "image_frames": ("simclr", "image", []),
    "video_mae": ("video_mae", "video", []),
}


def write_data(out: Path, n: int) -> dict[str, Path]:
    from selfsup.data.video import make_moving_digits

    m = make_moving_digits("motion", n=n)
    d = make_moving_digits("digit", n=n)
    paths = {}
    for kind, s in (("motion", m), ("digit", d)):
        paths[f"video_{kind}"] = out / f"md_{kind}.npz"
        np.savez(paths[f"video_{kind}"], x=s.train.x, y=s.train.y, x_test=s.test.x, y_test=s.test.y)
        mid = s.train.x.shape[1] // 2
        paths[f"image_{kind}"] = out / f"md_{kind}_frames.npz"
        np.savez(
            paths[f"image_{kind}"],
            x=s.train.x[:, mid, :, :, 0],
            y=s.train.y,
            x_test=s.test.x[:, mid, :, :, 0],
            y_test=s.test.y,
        )
    return paths


def pan_clips(cifar: Path, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` clips (N, 16, 32, 32, 3) uint8 of CIFAR-10 training images seen through a panning
    window, their class and motion labels (0 still, 1 horizontal, 2 vertical, 3 diagonal)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    classes = sorted(d.name for d in (cifar / "train").iterdir() if d.is_dir())
    files = [
        (f, c) for c, name in enumerate(classes) for f in sorted((cifar / "train" / name).iterdir())
    ]
    pick = rng.choice(len(files), size=n, replace=False)
    frames, pad, x = 16, 8, np.zeros((n, 16, 32, 32, 3), np.uint8)
    cls, motion = np.zeros(n, np.int64), rng.integers(0, 4, size=n)
    for i, j in enumerate(pick):
        path, cls[i] = files[j]
        img = np.asarray(Image.open(path).convert("RGB"))
        img = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
        pos = rng.integers(0, 2 * pad + 1, size=2)
        step = {0: (0, 0), 1: (0, 1), 2: (1, 0), 3: (1, 1)}[int(motion[i])]
        sign = rng.choice([-1, 1], size=2)
        for t in range(frames):
            r, c = int(pos[0]), int(pos[1])
            x[i, t] = img[r : r + 32, c : c + 32]
            for k in (0, 1):
                if step[k]:
                    if not 0 <= pos[k] + sign[k] <= 2 * pad:
                        sign[k] = -sign[k]
                    pos[k] += sign[k]
    return x, cls, motion


def write_pan_data(out: Path, n: int, cifar: Path) -> dict[str, Path]:
    x, cls, motion = pan_clips(cifar, n)
    cut = n * 3 // 4
    paths = {}
    for kind, y in (("motion", motion), ("digit", cls)):
        paths[f"video_{kind}"] = out / f"pan_{kind}.npz"
        np.savez(paths[f"video_{kind}"], x=x[:cut], y=y[:cut], x_test=x[cut:], y_test=y[cut:])
        mid = x.shape[1] // 2
        paths[f"image_{kind}"] = out / f"pan_{kind}_frames.npz"
        np.savez(
            paths[f"image_{kind}"], x=x[:cut, mid], y=y[:cut], x_test=x[cut:, mid], y_test=y[cut:]
        )
    return paths


def baselines(run_dir: Path, source: str) -> dict:
    """Random-init and raw-input baselines of a run's encoder settings on another label set."""
    from selfsup import config as conf
    from selfsup import evaluation
    from selfsup.encoder_io import load_encoder
    from selfsup.parts import load_data

    d = conf.load_yaml(run_dir / "config.yaml")
    cfg = conf.validate(conf.merge(d, {"data": {"source": source, "eval_source": None}}))
    _, bank, query = load_data(cfg)
    meta = load_encoder(run_dir).meta
    import torch

    return evaluation.baselines(cfg, bank, query, meta, torch.device("cpu"))


def load_encoder_meta(run_dir) -> dict:
    from selfsup.encoder_io import load_encoder

    return dict(load_encoder(run_dir).meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600, help="clips of moving_digits used (max 1797)")
    ap.add_argument("--epochs", type=int, default=None, help="default: the modality's own")
    ap.add_argument("--width", type=float, default=None)
    ap.add_argument("--runs", default="cvrl,simclr_frames,image_frames")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default="/tmp/selfsup-video-bench")
    ap.add_argument("--data", choices=("moving_digits", "cifar_pan"), default="moving_digits")
    ap.add_argument("--cifar", default="/tmp/cifar10", help="an unpacked CIFAR-10 image folder")
    a = ap.parse_args()

    import selfsup

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.data == "cifar_pan":
        if not (Path(a.cifar) / "train").is_dir():
            raise SystemExit(
                f"no CIFAR-10 image folder at {a.cifar}: unpack ../shared/data/cifar10-jpg.tar.gz "
                "there (see ../shared/data/README.md) or pass --cifar DIR"
            )
        paths = write_pan_data(out, a.n, Path(a.cifar))
    else:
        paths = write_data(out, a.n)
    for name in [r for r in a.runs.split(",") if r]:
        method, kind, over = RUNS[name]
        over = [*over, "train.progress=none", "eval.report=false", "eval.diagnostics=false"]
        if a.width is not None:
            over.append(f"model.width={a.width}")
        t0, c0 = time.perf_counter(), time.process_time()
        run = selfsup.train(
            method=method,
            data=str(paths[f"{kind}_motion"]),
            epochs=a.epochs,
            seed=a.seed,
            out=str(out / name),
            overwrite=True,
            overrides=over + a.set,
        )
        s = run.summary
        digit = selfsup.evaluate(run.dir, data=str(paths[f"{kind}_digit"]), write=False)
        base_digit = baselines(Path(run.dir), str(paths[f"{kind}_digit"]))

        def pick(r: dict) -> dict:
            return {k: round(v, 4) for k, v in r.items() if k in ("knn_top1", "linear_top1")}

        row = {
            "run": name,
            "method": method,
            "backbone": load_encoder_meta(run.dir)["backbone"],
            "epochs": run.config.train.epochs,
            "motion": pick(s["eval"]),
            "digit": pick(digit["eval"]),
            "motion_baselines": {k: pick(v) for k, v in s.get("baselines", {}).items()},
            "digit_baselines": {k: pick(v) for k, v in base_digit.items()},
            "cpu_s": round(time.process_time() - c0, 1),
            "wall_s": round(time.perf_counter() - t0, 1),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
