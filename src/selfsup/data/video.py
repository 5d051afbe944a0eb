"""Video clips: uint8 (N, T, H, W, C) containers, a folder of video files, video ``.npz`` files and
the built-in ``moving_digits``.

Sources
-------
- **A folder of video files** (``.mp4``, ``.avi``, ``.mkv``, ``.webm``, ``.mov``, animated
  ``.gif``): ``ROOT/<class>/<video>`` (labels from the sorted folder names), ``ROOT/<video>``
  (unlabelled), and ``ROOT/train/...`` + ``ROOT/test/...`` for the splits, as for an image folder.
  Each file is decoded once with PyAV (the ``video`` extra): frames are converted to RGB, resized
  (shorter side) and centre-cropped to ``video_size`` x ``video_size`` (default 64, ``--image-size``
  also sets it), and ``video_frames`` frames (default 16) are kept at ``video_fps`` frames per
  second (default 8; a negative or zero value keeps every frame), counted from the start of the
  video. Decoding stops as soon as the clip is full, so a very long video costs no more than a short
  one. A video shorter than the clip repeats its last frame (counted in ``info['short']``); a file
  that cannot be decoded or holds no frame stops loading with its name, or with ``--skip-corrupt``
  is skipped and counted (``info['skipped']``, one warning line).

  **Cache bound**: the decoded arrays are cached as one ``.npz`` per folder version (keyed by the
  files' names, sizes and modification times and the decode options) in the selfsup cache folder.
  Every clip has the same fixed shape, so an entry holds exactly N x frames x size x size x 3 bytes
  (16 x 64 x 64 x 3 = 196 KiB a video at the defaults) whatever the videos' length or resolution.

- **A video ``.npz``**: ``x`` uint8 (N, T, H, W, C) with C in {1, 3} (rank 5 is always video), or
  (N, T, H, W) grayscale *with a marker*: a key ``kind`` holding the string ``"video"`` or a key
  ``fps``. Without the marker a rank-4 ``x`` stays what it always was (N, H, W, C images), so video
  files never steal image files. Optional ``y`` (N,), ``x_test``/``y_test``.

- **Built-in** ``moving_digits`` (motion labels) and ``moving_digits:digit`` (digit labels of the
  same clips): scikit-learn's 8x8 digits moving on a 32x32 canvas (see :func:`make_moving_digits`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import DataError
from . import DataOption, Source, Splits, register_builtin, register_option, register_source
from .base import Samples
from .paired import register_member

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".gif"}
#: defaults of the decode options (``data.options.video_*``)
DEFAULT_SIZE, DEFAULT_FRAMES, DEFAULT_FPS = 64, 16, 8.0


@dataclass
class VideoData(Samples):
    """Decoded clips as uint8 (N, T, H, W, C), C in {1, 3}, every clip T frames of H x W."""

    modality: ClassVar[str] = "video"

    def check(self) -> None:
        x = self.x
        if not isinstance(x, np.ndarray) or x.ndim != 5 or x.shape[-1] not in (1, 3):
            raise DataError(
                f"{self.name}: clips must be an array of shape (N, T, H, W, C) with C = 1 or 3, "
                f"got {getattr(x, 'shape', type(x).__name__)}"
            )
        if 0 in x.shape:
            raise DataError(
                f"{self.name}: the dataset is empty (shape {tuple(x.shape)}); give at least one "
                "clip with one frame"
            )
        if x.dtype != np.uint8:
            if (
                x.dtype.kind not in "iuf"
                or not np.isfinite(x).all()
                or x.min() < 0
                or x.max() > 255
            ):
                raise DataError(
                    f"{self.name}: clips must be uint8 0-255, got {x.dtype} values; convert them "
                    "(float frames in [0, 1]: multiply by 255)"
                )
            self.x = np.round(x).astype(np.uint8)

    @property
    def channels(self) -> int:
        return int(self.x.shape[4])

    @property
    def frames(self) -> int:
        return int(self.x.shape[1])

    @property
    def size(self) -> int:
        return int(self.x.shape[2])


# -- source options -----------------------------------------------------------------------------
register_option(
    DataOption("video_frames", "video files: frames kept per clip (default 16)", metavar="N")
)
register_option(
    DataOption(
        "video_fps",
        "video files: frames per second kept (default 8; 0 keeps every frame)",
        metavar="FPS",
    )
)
register_option(
    DataOption(
        "video_size",
        "video files: frames resized and centre-cropped to SIZE x SIZE (default 64)",
        metavar="SIZE",
    )
)


def _decode_opts(options: dict, image_size: int | None) -> tuple[int, int, float]:
    def num(key, default, cast, lo):
        v = options.get(key, default)
        try:
            v = cast(v)
        except (TypeError, ValueError):
            raise DataError(f"data option {key} must be a number, got {v!r}") from None
        if v < lo:
            raise DataError(f"data option {key} must be at least {lo}, got {v}")
        return v

    size = num("video_size", image_size or DEFAULT_SIZE, int, 4)
    frames = num("video_frames", DEFAULT_FRAMES, int, 1)
    fps = num("video_fps", DEFAULT_FPS, float, -1e9)
    return size, frames, fps


# -- decoding one file ----------------------------------------------------------------------------
def _resize_frame(img, size: int) -> np.ndarray:
    """A PIL image resized so its shorter side is ``size``, centre-cropped, as uint8 (size,
    size, 3)."""
    from PIL import Image

    w, h = img.size
    s = size / min(w, h)
    nw, nh = max(size, round(w * s)), max(size, round(h * s))
    img = img.convert("RGB").resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)


def decode_video(path: Path, size: int, frames: int, fps: float) -> tuple[np.ndarray, int]:
    """``frames`` frames of ``path`` at ``fps`` (<= 0: every frame) from its start, resized to
    ``size``; returns (frames, size, size, 3) uint8 and the number of frames the video gave (a short
    video's last frame is repeated). Raises ValueError when the file cannot be decoded or is
    empty."""
    import av

    out: list[np.ndarray] = []
    next_t = 0.0
    try:
        with av.open(str(path)) as container:
            streams = container.streams.video
            if not streams:
                raise ValueError("no video stream")
            stream = streams[0]
            for frame in container.decode(stream):
                t = frame.time
                if fps > 0 and t is not None:
                    if t + 1e-6 < next_t:
                        continue
                    next_t = max(next_t + 1.0 / fps, t + 0.5 / fps)
                out.append(_resize_frame(frame.to_image(), size))
                if len(out) == frames:
                    break
    except ValueError:
        raise
    except Exception as err:  # av raises its own error family (InvalidDataError, ...)
        why = str(err).splitlines()[0] if str(err) else ""
        raise ValueError(f"{type(err).__name__}: {why}") from None
    if not out:
        raise ValueError("no decodable frame")
    got = len(out)
    out += [out[-1]] * (frames - got)
    return np.stack(out), got


def is_video_file(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith(".")


def _animated_gif(p: Path) -> bool:
    try:
        from PIL import Image

        with Image.open(p) as im:
            return bool(getattr(im, "n_frames", 1) > 1)
    except Exception:
        return False


def _has_videos(root: Path) -> bool:
    """Whether a folder holds video files: any .mp4/.avi/.mkv/.webm/.mov/.m4v, or an animated GIF
    among the first three GIFs found (a folder of still GIFs is an image folder)."""
    gifs = 0
    for p in root.rglob("*"):
        suffix = p.suffix.lower()
        if suffix not in VIDEO_EXTENSIONS or p.name.startswith(".") or not p.is_file():
            continue
        if suffix != ".gif":
            return True
        if gifs < 3:
            gifs += 1
            if _animated_gif(p):
                return True
    return False


def _load_split(
    root: Path,
    opts: tuple[int, int, float],
    skip_corrupt: bool,
    name: str,
    classes: list[str] | None = None,
) -> VideoData:
    size, frames, fps = opts
    from .folder import list_folder

    files, labels, found = list_folder(root, is_video_file, "video")
    if not files:
        raise DataError(
            f"folder '{root}' holds no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}); "
            "expected ROOT/<class>/<video> or ROOT/<video>"
        )
    clips, keep, skipped, short = [], [], [], 0
    for i, f in enumerate(files):
        try:
            clip, got = decode_video(f, size, frames, fps)
        except ValueError as err:
            if not skip_corrupt:
                raise DataError(
                    f"cannot decode video '{f}' ({err}); fix or remove it, or pass --skip-corrupt "
                    "to skip unreadable files"
                ) from None
            skipped.append(str(f))
            continue
        short += got < frames
        clips.append(clip)
        keep.append(i)
    if not clips:
        raise DataError(f"no video in '{root}' could be decoded ({len(skipped)} skipped)")
    y = None
    if labels is not None and found is not None:
        lab = np.asarray(labels, dtype=np.int64)[keep]
        if classes is not None:
            index = {c: j for j, c in enumerate(classes)}
            missing = [c for c in found if c not in index]
            if missing:
                raise DataError(
                    f"'{root}' has class folders not in the training split: {', '.join(missing)}"
                )
            lab = np.asarray([index[found[v]] for v in lab], dtype=np.int64)
            found = classes
        y = lab
    ids = [files[i].relative_to(root).as_posix() for i in keep]
    info = {"skipped": len(skipped), "skipped_files": skipped[:20], "short": short, "ids": ids}
    return VideoData(np.stack(clips), y, found, name, info)


def load_video_folder(
    spec: str,
    image_size: int | None = None,
    skip_corrupt: bool = False,
    cache_dir: str | None = None,
    options: dict | None = None,
    **_: object,
) -> Splits:
    from . import cache

    root = Path(spec).expanduser()
    opts = _decode_opts(options or {}, image_size)
    key_opts = {"kind": "video", "opts": list(opts), "skip_corrupt": skip_corrupt, "v": 1}
    key = f"video-{cache.fingerprint(root, key_opts)}"
    croot = cache.cache_root(cache_dir)
    splits = cache.load_cached(key, croot, VideoData)
    if splits is None:
        if (root / "train").is_dir() and (root / "test").is_dir():
            train = _load_split(root / "train", opts, skip_corrupt, f"{root.name}/train")
            test = _load_split(
                root / "test", opts, skip_corrupt, f"{root.name}/test", train.classes
            )
            splits = Splits(train, test)
        else:
            splits = Splits(_load_split(root, opts, skip_corrupt, root.name))
        cache.store(key, croot, splits)
    _report(splits)
    return splits


def _report(splits: Splits) -> None:
    from .base import report_skipped

    report_skipped(splits, "undecodable video(s)")


# -- a video .npz ----------------------------------------------------------------------------------
def _npz_header(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Shapes and dtypes of the arrays of an ``.npz`` (read from the headers, not the data)."""
    import zipfile

    out = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if not name.endswith(".npy"):
                continue
            with z.open(name) as f:
                major, _ = np.lib.format.read_magic(f)
                read = (
                    np.lib.format.read_array_header_1_0
                    if major == 1
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read(f)
                out[name[:-4]] = (tuple(shape), dtype.str)
    return out


def is_video_npz(path: Path) -> bool:
    """An ``.npz`` whose ``x`` has rank 5, or rank 4 with a ``kind="video"`` or ``fps`` marker."""
    if not (path.is_file() and path.suffix.lower() == ".npz"):
        return False
    try:
        head = _npz_header(path)
    except Exception:
        return False  # the npz loader reports an unreadable file
    if "x" not in head:
        return False
    rank = len(head["x"][0])
    if rank == 5:
        return True
    if rank == 4 and "fps" in head:
        return True
    if rank == 4 and "kind" in head:
        try:
            with np.load(path, allow_pickle=False) as f:
                return str(f["kind"]) == "video"
        except Exception:
            return False
    return False


def load_video_npz(spec: str, options: dict | None = None, **_: object) -> Splits:
    path = Path(spec).expanduser()
    if options:
        raise DataError(
            f"the data option '{next(iter(options))}' applies to video files, but '{spec}' holds "
            "decoded clips; drop it"
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as err:
        raise DataError(f"'{path}' is not a readable .npz file ({type(err).__name__})") from None

    def clips(key: str) -> np.ndarray:
        x = arrays[key]
        if x.ndim == 4:
            x = x[..., None]
        if x.ndim != 5:
            raise DataError(
                f"'{path}': array '{key}' has shape {tuple(x.shape)}; give clips as (N, T, H, W) "
                "or (N, T, H, W, C) uint8"
            )
        return x

    def labels(key: str, n: int):
        if key not in arrays:
            return None
        y = arrays[key]
        if y.ndim != 1 or len(y) != n:
            raise DataError(
                f"'{path}': array '{key}' has shape {tuple(y.shape)} but there are {n} clips; "
                "give one integer label per clip"
            )
        return y

    x = clips("x")
    train = VideoData(x, labels("y", len(x)), None, f"{path.stem}/x")
    test = None
    if "x_test" in arrays:
        xt = clips("x_test")
        if xt.shape[1:] != x.shape[1:]:
            raise DataError(
                f"'{path}': 'x_test' clips have shape {tuple(xt.shape[1:])} but 'x' clips have "
                f"{tuple(x.shape[1:])}; give both splits with the same frames, size and channels"
            )
        test = VideoData(xt, labels("y_test", len(xt)), None, f"{path.stem}/x_test")
    return Splits(train, test)


# -- the built-in moving digits --------------------------------------------------------------------
MOTIONS = ("still", "horizontal", "vertical", "diagonal")


def make_moving_digits(
    labels: str = "motion", n: int = 1797, frames: int = 16, canvas: int = 32, seed: int = 0
) -> Splits:
    """scikit-learn's 8x8 digits (scaled to 12x12) moving on a ``canvas`` x ``canvas`` black frame
    for ``frames`` frames, bouncing off its edges as in Moving MNIST, one motion a clip: ``still``,
    ``horizontal``, ``vertical`` or ``diagonal`` (speed 1.5-3 px a frame, a random sign per axis).
    Every motion class is closed under mirror images, so a horizontal flip does not turn one class
    into another. The start is uniform on the canvas and a bounce keeps it so, hence every frame's
    position has the same distribution under every motion: one frame says nothing of the motion.

    ``labels``: ``"motion"`` (4 classes) or ``"digit"`` (10 classes) of the same clips. Split 75/25.
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(d.images))[:n]
    digit = 12
    room = canvas - digit  # positions 0..room
    x = np.zeros((len(order), frames, canvas, canvas, 1), np.uint8)
    motion = rng.integers(0, len(MOTIONS), len(order))
    axes = {"still": (0, 0), "horizontal": (0, 1), "vertical": (1, 0), "diagonal": (1, 1)}
    t = np.arange(frames)
    for i, k in enumerate(order):
        im = np.asarray(
            Image.fromarray((d.images[k] * 255 / 16).astype(np.uint8)).resize(
                (digit, digit), Image.Resampling.BILINEAR
            )
        )
        start = rng.uniform(0, room, 2)
        speed = rng.uniform(1.5, 3.0) * rng.choice([-1, 1], 2) * np.array(axes[MOTIONS[motion[i]]])
        free = start[None] + t[:, None] * speed[None]  # unbounded path, folded back by bouncing
        pos = room - np.abs(np.mod(free, 2 * room) - room)
        for f in range(frames):
            py, px = (int(round(v)) for v in pos[f])
            x[i, f, py : py + digit, px : px + digit, 0] = im
    if labels == "digit":
        y = d.target[order].astype(np.int64)
        classes = [str(c) for c in range(10)]
    else:
        y, classes = motion.astype(np.int64), list(MOTIONS)
    cut = len(order) * 3 // 4
    name = "moving_digits" + (":digit" if labels == "digit" else "")
    return Splits(
        VideoData(x[:cut], y[:cut], classes, f"{name}/train"),
        VideoData(x[cut:], y[cut:], classes, f"{name}/test"),
    )


def _folder_claims(spec: str, path: Path) -> bool:
    return path.is_dir() and _has_videos(path)


def _npz_claims(spec: str, path: Path) -> bool:
    return is_video_npz(path)


register_source(Source("video_folder", _folder_claims, load_video_folder))
register_source(Source("video_npz", _npz_claims, load_video_npz))
register_builtin("moving_digits", lambda: make_moving_digits("motion"))
register_builtin("moving_digits:digit", lambda: make_moving_digits("digit"))


def make_moving_frames(n: int = 1797, seed: int = 0) -> Splits:
    """``moving_digits:frames``: each clip of ``moving_digits`` paired with one of its own frames
    (an image, drawn uniformly from the clip with a fixed seed), labelled by digit: a paired set for
    distilling between a video branch and an image branch (``cluster_distill``, after the
    echocardiography paper), where the frame alone tells the digit and not the motion."""
    from .base import ImageData
    from .paired import PairedData

    clips = make_moving_digits("digit", n=n, seed=seed)
    rng = np.random.default_rng(seed + 1)

    def pair(v: VideoData, split: str) -> PairedData:
        pick = rng.integers(0, v.x.shape[1], len(v))
        frames = np.ascontiguousarray(v.x[np.arange(len(v)), pick])  # (N, H, W, C)
        name = f"moving_digits:frames/{split}"
        return PairedData(
            v, ImageData(frames, v.y, v.classes, f"{name}[frame]"), v.y, v.classes, name
        )

    assert clips.test is not None
    return Splits(pair(clips.train, "train"), pair(clips.test, "test"))


register_builtin("moving_digits:frames", lambda: make_moving_frames())

__all__ = [
    "VideoData",
    "decode_video",
    "load_video_folder",
    "load_video_npz",
    "is_video_npz",
    "make_moving_digits",
    "MOTIONS",
]


def _paired_member(x: np.ndarray, where: str) -> VideoData | None:
    """A member of a paired ``.npz`` that is rank 5: (N, T, H, W, C) clips."""
    if x.ndim != 5:
        return None
    clips = VideoData(x, None, None, where)
    clips.check()
    return clips


register_member("(N, T, H, W, C) uint8 clips", _paired_member)
