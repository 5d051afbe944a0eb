"""Video sources: files decoded with PyAV (mp4, animated GIF), the cache, video .npz files that do
not steal image or series files, the built-in moving digits, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

import selfsup.modalities  # noqa: F401  (registers the video sources)
from selfsup.data import ImageData, SeriesData, load_source
from selfsup.data.video import VideoData, decode_video, make_moving_digits
from selfsup.errors import DataError


def write_mp4(path, frames=12, size=(40, 30), fps=24, shift=2):
    """A tiny mp4 (a bright square moving right) written with PyAV."""
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        s = out.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            a = np.zeros((h, w, 3), np.uint8)
            a[10:20, i * shift : i * shift + 8] = 255
            for p in s.encode(__import__("av").VideoFrame.from_ndarray(a, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def write_gif(path, frames=6, size=20):
    from PIL import Image

    ims = []
    for i in range(frames):
        a = np.zeros((size, size), np.uint8)
        a[5:10, i * 2 : i * 2 + 5] = 255
        ims.append(Image.fromarray(a).convert("P"))
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=100, loop=0)


def test_an_mp4_decodes_to_a_fixed_clip_and_motion_survives(tmp_path):
    p = tmp_path / "a.mp4"
    write_mp4(p)
    clip, got = decode_video(p, size=16, frames=8, fps=0)
    assert clip.shape == (8, 16, 16, 3) and clip.dtype == np.uint8 and got == 8
    col = clip[..., 0].astype(float).mean(axis=1)  # mean over rows: where the square is
    centre = (col * np.arange(16)).sum(1) / col.sum(1)
    assert centre[-1] > centre[0] + 2  # it moved right
    short, got = decode_video(p, size=16, frames=40, fps=0)
    assert got == 12 and short.shape[0] == 40 and (short[-1] == short[11]).all()
    slow, got = decode_video(p, size=16, frames=4, fps=6)  # 24 fps read at 6: frames 0, 4, 8
    assert got == 3  # 12 frames at 24 fps last 0.5 s: three frames at 6 fps (0, 1/6, 2/6 s)


def test_a_folder_of_mp4_and_gif_files_is_video_data_with_splits_and_a_cache(tmp_path):
    root = tmp_path / "vids"
    for split, n in (("train", 3), ("test", 1)):
        for cls in ("left", "right"):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                write_mp4(d / f"{i}.mp4", frames=6)
            write_gif(d / "g.gif")
    s = load_source(str(root), options={"video_frames": "4", "video_size": "16", "video_fps": "0"})
    assert isinstance(s.train, VideoData) and s.train.x.shape == (8, 4, 16, 16, 3)
    assert s.train.classes == ["left", "right"] and s.test is not None and len(s.test) == 4
    assert s.train.info["short"] == 0 and "left/g.gif" in s.train.info["ids"]
    again = load_source(
        str(root), options={"video_frames": "4", "video_size": "16", "video_fps": "0"}
    )
    np.testing.assert_array_equal(again.train.x, s.train.x)  # from the cache


def test_corrupt_and_empty_videos_are_one_line_or_skipped_and_counted(tmp_path):
    root = tmp_path / "v"
    root.mkdir()
    write_mp4(root / "ok.mp4", frames=5)
    (root / "bad.mp4").write_bytes(b"\x00\x01 not a video")
    (root / "empty.mkv").write_bytes(b"")
    with pytest.raises(DataError, match="cannot decode video .*bad.mp4.*--skip-corrupt"):
        load_source(str(root))
    with pytest.warns(Warning, match="skipped 2 undecodable"):
        s = load_source(str(root), skip_corrupt=True)
    assert len(s.train) == 1 and s.train.info["skipped"] == 2
    with pytest.raises(DataError, match="video_frames must be at least 1"):
        load_source(str(root), options={"video_frames": "0"})


def test_a_video_npz_is_rank_5_or_rank_4_with_a_marker_and_steals_nothing(tmp_path):
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 255, (6, 4, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "v5.npz", x=clips, y=np.arange(6) % 2)
    s = load_source(str(tmp_path / "v5.npz"))
    assert isinstance(s.train, VideoData) and s.train.x.shape == (6, 4, 8, 8, 3)
    gray = clips[..., 0]
    np.savez(tmp_path / "img.npz", x=clips[:, 0])  # rank 4 without a marker: (N, H, W, C) images
    assert isinstance(load_source(str(tmp_path / "img.npz")).train, ImageData)
    np.savez(tmp_path / "v4.npz", x=gray, kind="video")
    v4 = load_source(str(tmp_path / "v4.npz")).train
    assert isinstance(v4, VideoData) and v4.x.shape == (6, 4, 8, 8, 1)
    np.savez(tmp_path / "v4fps.npz", x=gray, fps=np.array(8.0))
    assert isinstance(load_source(str(tmp_path / "v4fps.npz")).train, VideoData)
    np.savez(tmp_path / "ts.npz", x=rng.normal(size=(6, 2, 30)).astype(np.float32))
    assert isinstance(load_source(str(tmp_path / "ts.npz")).train, SeriesData)
    np.savez(tmp_path / "bad.npz", x=clips, x_test=clips[:, :2])
    with pytest.raises(DataError, match="same frames, size and channels"):
        load_source(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "c5.npz", x=rng.integers(0, 9, (2, 3, 4, 4, 2), dtype=np.uint8))
    with pytest.raises(DataError, match=r"\(N, T, H, W, C\) with C = 1 or 3"):
        load_source(str(tmp_path / "c5.npz"))


def test_moving_digits_has_two_label_sets_of_the_same_clips_and_frames_hide_the_motion():
    m = make_moving_digits("motion", n=320)
    d = make_moving_digits("digit", n=320)
    np.testing.assert_array_equal(m.train.x, d.train.x)
    assert m.train.classes == ["still", "horizontal", "vertical", "diagonal"]
    assert d.train.classes == [str(i) for i in range(10)]
    x, y = m.train.x[..., 0].astype(float), m.train.y
    moved = np.abs(np.diff(x, axis=1)).sum(axis=(1, 2, 3))
    assert (moved[y == 0] == 0).all() and (moved[y != 0] > 0).all()
    # one frame's centre of mass has about the same spread under every motion
    mid = x[:, 8]
    rows = (mid.sum(2) * np.arange(32)).sum(1) / mid.sum((1, 2))
    spreads = [rows[y == k].std() for k in range(4)]
    assert max(spreads) < 1.6 * min(spreads)
    assert "moving_digits:digit" in __import__("selfsup").data.BUILTIN


def test_a_folder_of_still_gifs_stays_an_image_folder(tmp_path):
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / "g" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(
                tmp_path / "g" / cls / f"{i}.gif"
            )
    assert isinstance(load_source(str(tmp_path / "g")).train, ImageData)
    write_gif(tmp_path / "g" / "a" / "moving.gif")  # one animated GIF among the first: video
    write_mp4(tmp_path / "g" / "b" / "clip.mp4", frames=4)
    assert isinstance(load_source(str(tmp_path / "g"), skip_corrupt=True).train, VideoData)
