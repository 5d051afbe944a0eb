"""Video as a member of a paired ``.npz``: the video data room registers its member reader
(``selfsup.data.paired.register_member``); nothing else names it."""

from __future__ import annotations

import numpy as np
import pytest

import selfsup
from selfsup.errors import DataError

QUIET = ["eval.report=false", "eval.diagnostics=false", "train.progress=none"]


def _pair_npz(path, clips=None):
    rng = np.random.default_rng(0)
    n = 24
    y = np.arange(n) % 3
    x = (rng.random((n, 4, 8, 8, 1)) * 60).astype(np.uint8) if clips is None else clips
    for c in range(3):  # a class-specific bright band, so both members carry the class
        x[y == c, :, 2 * c : 2 * c + 2] += 150
    s = rng.normal(size=(n, 2, 16)).astype(np.float32) + y[:, None, None]
    np.savez(path, x_a=x, x_b=s, y=y)
    return path


def test_a_paired_npz_takes_clips_as_a_member_and_trains_a_video_tower(tmp_path):
    data = _pair_npz(tmp_path / "pair.npz")
    run = selfsup.train(
        method="clip",
        data=str(data),
        epochs=1,
        batch_size=8,
        out=str(tmp_path / "r"),
        overrides=[*QUIET, "eval.baselines=false"],
    )
    assert np.isfinite(run.summary["eval"]["xmodal_r1"])
    enc = selfsup.load_encoder(tmp_path / "r")
    assert enc.meta["towers"]["a"]["modality"] == "video"
    assert enc.meta["towers"]["b"]["modality"] == "timeseries"


def test_a_clip_member_of_the_wrong_layout_is_refused_in_one_line(tmp_path):
    rng = np.random.default_rng(0)
    bad = (rng.random((24, 4, 8, 8, 2)) * 255).astype(np.uint8)  # 2 channels
    with pytest.raises(DataError, match="C = 1 or 3") as err:
        selfsup.train(
            method="clip", data=str(_pair_npz(tmp_path / "bad.npz", bad)), epochs=1,
            out=str(tmp_path / "r"), overrides=QUIET,
        )  # fmt: skip
    assert "\n" not in str(err.value)
    assert not (tmp_path / "r").exists()
