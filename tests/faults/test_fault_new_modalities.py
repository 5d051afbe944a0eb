"""The reliability promises for the modalities added after issue 26's sweep (audio, video, text,
point clouds): bad input through the CLI ends in one ``error:`` line, exit 2, no run directory and
no file changed outside it (the same assertions as ``test_fault_modalities.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_fault_modalities import TINY, _one_line, tree  # rootdir-relative, as faultkit

from selfsup import cli

pytest.importorskip("soundfile")


def _wav_folder(tmp: Path, bad: bytes | None = None, silent: bool = False) -> str:
    import soundfile as sf

    root = tmp / "sounds"
    for c in ("a", "b"):
        (root / "train" / c).mkdir(parents=True)
        for i in range(4):
            t = np.arange(8000) / 16000
            sf.write(
                root / "train" / c / f"{i}.wav", np.sin(2 * np.pi * (200 + 300 * i) * t), 16000
            )
    if bad is not None:
        (root / "train" / "a" / "bad.wav").write_bytes(bad)
    if silent:
        sf.write(root / "train" / "a" / "quiet.wav", np.zeros(8000), 16000)
    return str(root)


def _npz(tmp: Path, **arrays) -> str:
    p = tmp / "data.npz"
    np.savez(p, **arrays)
    return str(p)


def _csv(tmp: Path, body: str | bytes, name: str = "t.csv") -> str:
    p = tmp / name
    p.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
    return str(p)


CLIPS = np.random.default_rng(0).integers(0, 255, (12, 4, 8, 8, 3), dtype=np.uint8)
WORDS = "".join(f"text number {i} about topic {i % 2}\n" for i in range(40))

CASES = {
    "audio-corrupt-file": (
        lambda t: _wav_folder(t, bad=b"RIFF\x00\x00not a wave"),
        [],
        ["bad.wav"],
    ),
    "audio-silent-clip": (lambda t: _wav_folder(t, silent=True), [], ["quiet.wav"]),
    "audio-rate-zero": (lambda t: _npz(t, x=np.ones((8, 400)), sr=0), [], ["sr"]),
    "audio-wrong-rank": (lambda t: _npz(t, x=np.ones((8, 2, 3, 400)), sr=8000), [], ["(N, T)"]),
    "video-corrupt-file": (
        lambda t: (
            (t / "v").mkdir() or (t / "v" / "x.mp4").write_bytes(b"\x00junk") and str(t / "v")
        ),
        [],
        ["x.mp4"],
    ),
    "video-zero-frames": (lambda t: _npz(t, x=CLIPS[:, :0]), [], []),
    "text-missing-column": (
        lambda t: _csv(t, "body,label\nhello,a\n" * 20),
        ["--text-column", "text"],
        ["text"],
    ),
    "text-undecodable": (
        lambda t: _csv(t, b"text\n\xff\xfe\xfa bad\n" * 20),
        ["--text-column", "text"],
        [],
    ),
    "text-all-empty": (lambda t: _csv(t, "text\n" + '""\n' * 20), ["--text-column", "text"], []),
    "points-nan": (
        lambda t: _npz(t, x=np.full((12, 64, 3), np.nan, np.float32), kind="points"),
        [],
        ["NaN"],
    ),
    "points-wrong-width": (
        lambda t: _npz(t, x=np.ones((12, 64, 4), np.float32), kind="points"),
        [],
        [],
    ),
    "mae-on-points": (
        lambda t: _npz(
            t, x=np.random.default_rng(0).normal(size=(12, 64, 3)).astype(np.float32), kind="points"
        ),
        ["--method", "mae"],
        ["mae"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_of_the_new_modalities_is_one_line_and_leaves_nothing(case, tmp_path, capsys):
    make, extra, needles = CASES[case]
    data = make(tmp_path)
    out = tmp_path / "runs" / "r1"
    before = tree(tmp_path)
    code = cli.main(["train", "--data", data, "--out", str(out), *TINY, *extra])
    _one_line(code, capsys.readouterr().err, needles)
    assert not out.exists() and not out.parent.exists()
    assert tree(tmp_path) == before
