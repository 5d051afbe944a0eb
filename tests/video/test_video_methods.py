"""Methods on clips: the default run from the command line (moving digits' layout, a folder of mp4
files), existing methods unchanged, cvrl and video_mae lowering their loss, mae on tubelets, resume
bit-identical, and one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import selfsup
from selfsup.cli import main
from selfsup.errors import ConfigError

QUIET = [
    "train.progress=none",
    "eval.report=false",
    "eval.diagnostics=false",
    "model.width=0.25",
    "model.proj_hidden=32",
    "model.proj_dim=16",
]


def tiny_clips(path, n=24, frames=8, size=16):
    """Squares moving right or down (the label), on noise: (N, T, H, W) uint8 with kind="video"."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    x = (rng.random((n, frames, size, size)) * 40).astype(np.uint8)
    for i in range(n):
        r, c = rng.integers(0, size - 4, 2)
        for t in range(frames):
            dr, dc = (0, t) if y[i] == 0 else (t, 0)
            rr, cc = (r + dr) % (size - 4), (c + dc) % (size - 4)
            x[i, t, rr : rr + 4, cc : cc + 4] = 220
    np.savez(path, x=x, y=y, kind="video")
    return path


def test_train_with_no_other_flag_prints_the_usual_table(tmp_path, capsys):
    data = tiny_clips(tmp_path / "clips.npz")
    code = main(
        ["train", "--data", str(data), "--epochs", "1", "--out", str(tmp_path / "r")]
        + sum((["--set", s] for s in QUIET), [])
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "random init" in out and "raw input" in out and "knn_top1" in out
    meta = selfsup.load_encoder(tmp_path / "r").meta
    assert meta["modality"] == "video" and meta["backbone"] == "two_pathway"
    enc = selfsup.load_encoder(tmp_path / "r")
    assert enc(torch.rand(2, 1, 8, 16, 16)).shape == (2, enc.out_dim)
    with pytest.raises(ConfigError, match=r"\(N, C, T, H, W\) float clips"):
        enc(torch.rand(2, 1, 16, 16))


@pytest.mark.slow
def test_a_folder_of_mp4_files_trains_from_the_command_line(tmp_path, capsys):
    from test_video_data import write_mp4

    for cls in ("a", "b"):
        (tmp_path / "v" / cls).mkdir(parents=True)
        for i in range(5):
            write_mp4(tmp_path / "v" / cls / f"{i}.mp4", frames=10, shift=2 if cls == "a" else 0)
    code = main(
        ["train", "--data", str(tmp_path / "v"), "--epochs", "1", "--video-size", "16"]
        + ["--out", str(tmp_path / "r")]
        + sum((["--set", s] for s in QUIET), [])
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "random init" in out and "linear_top1" in out


SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    "method",
    ["cvrl", "byol", "mae", "video_mae"]
    + [pytest.param(m, marks=SLOW) for m in ("vicreg", "barlow", "moco", "simsiam", "nnclr")],
)
def test_methods_train_on_clips_unchanged(tmp_path, method):
    data = tiny_clips(tmp_path / "c.npz")
    run = selfsup.train(
        method=method,
        data=str(data),
        epochs=1,
        batch_size=8,
        out=str(tmp_path / "r"),
        overrides=[*QUIET, "eval.baselines=false"],
    )
    assert np.isfinite(run.summary["eval"]["knn_top1"])


def _steps(method_name: str, backbone: str, steps: int = 12) -> list[float]:
    from selfsup import methods
    from selfsup.config import ModelConfig
    from selfsup.modalities.base import get
    from selfsup.models.encoder import Encoder
    from selfsup.models.video import build_video_backbone
    from selfsup.views.video import VideoViews, VideoViewsConfig

    torch.manual_seed(0)
    mod = get("video")
    mean, std = mod.normalisation({"mean": [0.2], "std": [0.3]})
    enc = Encoder(build_video_backbone(backbone, 1, 16, 0.25), mean, std)
    model = ModelConfig(proj_hidden=32, proj_dim=16)
    cls = methods.REGISTRY[method_name]
    method = cls(enc, cls.Params(), methods.Context(model=model, n_samples=16))
    opt = torch.optim.AdamW(method.parameters(), 2e-3)
    x = torch.from_numpy(np.load(tiny_clips(_tmp() / "c.npz"))["x"])
    x = x[:16, ..., None]
    views = VideoViews(VideoViewsConfig(clip_frames=8), 16)
    losses = []
    for _ in range(steps):
        torch.manual_seed(1)  # the same views each step: the loss on them must fall
        loss, logs = method(views(x), methods.Batch(x, torch.arange(len(x))))
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def _tmp():
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp())


@pytest.mark.parametrize("method,backbone", [("cvrl", "r2plus1d"), ("video_mae", "video_vit")])
def test_cvrl_and_video_mae_lower_their_loss(method, backbone):
    losses = _steps(method, backbone)
    assert losses[-1] < losses[0]


def test_cvrl_defaults_are_the_papers():
    from selfsup import methods

    p = methods.REGISTRY["cvrl"].Params()
    assert p.temperature == 0.1 and p.head_layers == 3
    v = methods.REGISTRY["video_mae"].Params()
    assert v.mask_ratio == 0.9


def test_video_mae_on_a_backbone_without_frames_is_one_line(tmp_path):
    data = tiny_clips(tmp_path / "c.npz")
    with pytest.raises(ConfigError, match="patch tokens to mask"):
        selfsup.train(
            method="video_mae",
            data=str(data),
            epochs=1,
            out=str(tmp_path / "r"),
            overrides=[*QUIET, "model.backbone=r2plus1d"],
        )


def test_a_cvrl_run_resumes_bit_identically(tmp_path, resume_matches_full):
    """Clip positions, strides and augmentations come from torch's generator, which checkpoints
    carry."""
    data = tiny_clips(tmp_path / "c.npz", n=16)
    cfg = {
        "method": "cvrl",
        "data": {"source": str(data)},
        "model": {"width": 0.25, "proj_hidden": 32, "proj_dim": 16},
        "train": {"epochs": 3, "batch_size": 8, "progress": "none"},
        "eval": {"report": False, "baselines": False, "diagnostics": False},
    }
    full, resumed = resume_matches_full(cfg)
    assert resumed.summary["eval"] == full.summary["eval"]


def test_cluster_distill_between_clips_and_their_frames(tmp_path):
    """``moving_digits:frames``: each clip paired with one of its own frames (digit labels); the
    video and image towers train together by cluster distillation, each evaluated on its own."""
    from selfsup.data import register_builtin
    from selfsup.data.video import make_moving_frames

    s = make_moving_frames(n=40)
    tr = s.train
    assert (tr.a.modality, tr.b.modality) == ("video", "image") and len(tr) == 30
    for i in range(len(tr)):  # the frame is one of the clip's own frames
        assert any(np.array_equal(tr.b.x[i], f) for f in tr.a.x[i])
    assert set(tr.y) <= set(range(10)) and np.array_equal(tr.a.y, tr.y)
    register_builtin("moving_digits:frames-40", lambda: make_moving_frames(n=40))
    run = selfsup.train(
        method="cluster_distill",
        data="moving_digits:frames-40",
        epochs=2,
        batch_size=10,
        out=str(tmp_path / "r"),
        overrides=[*QUIET, "eval.baselines=false", "params.n_prototypes=5"],
    )
    ev = run.summary["eval"]
    assert np.isfinite(ev["a_knn_top1"]) and np.isfinite(ev["b_knn_top1"])
