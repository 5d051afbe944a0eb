"""Sound: mono waveforms at one sample rate, decoded once and cached.

:class:`AudioData` holds float32 (N, T) waveforms at ``info["sr"]`` Hz, NaN-padded after each
clip's ``lengths[i]`` samples (clips of any length share one array; NaN is never a sample value).
Multichannel files are averaged to mono when decoded; every rate is resampled to the modality's
rate (``--sample-rate``, 16 kHz by default) with a windowed-sinc resampler written here
(:func:`resample`). Clips longer than ``--max-seconds`` (30 s by default) keep their first
``max_seconds`` (counted in ``info["cut"]``).

Sources:

- a folder of sound files (``.wav``, ``.flac``, ``.ogg``, ``.oga``; read with ``soundfile``, the
  ``audio`` extra): ``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*`` (the splits),
  ``ROOT/<class>/*`` (one labelled split) or ``ROOT/*`` (unlabelled), as image folders are laid out;
- an ``.npz`` with ``x`` (N, T) or (N, C, T) float waveforms (NaN after a shorter clip's end),
  ``sr`` (their rate) and optional ``y`` (N,), ``x_test``/``y_test``; an ``.npz`` without ``sr`` is
  another kind of data (images, series, tables);
- the built-in ``spoken_digits`` (:mod:`selfsup.data.spoken_digits`).

A file that cannot be decoded, holds no samples or only silence, or declares a rate of 0 stops
loading with its name in one line; with ``--skip-corrupt`` it is skipped and counted
(``info["skipped"]``).
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import DataError
from . import DataOption, Source, Splits, register_option, register_source
from .base import Samples, check_labels
from .cache import cache_root, fingerprint, load_cached, store

#: the rate every clip is resampled to unless ``--sample-rate`` says otherwise
DEFAULT_RATE = 16000
#: clips longer than this many seconds keep their beginning (``--max-seconds``)
DEFAULT_MAX_SECONDS = 30.0
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga"}
#: a clip whose peak is below this is silent (refused: it carries nothing to learn)
SILENCE = 1e-6
#: cache format version (bump when decoding changes)
VERSION = 1
#: the arrays of an AudioData that the decode cache keeps
CACHED = ("x", "lengths")


@dataclass
class AudioData(Samples):
    """Mono waveforms, float32 (N, T), NaN-padded after ``lengths[i]`` samples; rate
    ``info["sr"]``."""

    lengths: np.ndarray | None = None
    modality: ClassVar[str] = "audio"
    per_sample: ClassVar[tuple[str, ...]] = ("x", "y", "lengths")

    def check(self) -> None:
        x = self.x
        if not isinstance(x, np.ndarray) or x.ndim != 2:
            raise DataError(
                f"{self.name}: waveforms must be an array of shape (N, T), got "
                f"{getattr(x, 'shape', type(x).__name__)}"
            )
        if len(x) == 0 or x.shape[1] == 0:
            raise DataError(
                f"{self.name}: the dataset is empty (shape {tuple(x.shape)}); "
                "give at least one clip"
            )
        self.x = x = np.ascontiguousarray(x, dtype=np.float32)
        if self.lengths is None:
            valid = ~np.isnan(x)
            self.lengths = valid.sum(1)
        self.lengths = np.asarray(self.lengths, dtype=np.int64)
        if self.lengths.shape != (len(x),) or (self.lengths < 1).any():
            raise DataError(f"{self.name}: every clip needs at least one sample; drop empty clips")
        sr = self.info.get("sr")
        if not isinstance(sr, int) or sr <= 0:
            raise DataError(f"{self.name}: the sample rate must be a positive integer, got {sr!r}")

    @property
    def channels(self) -> int:
        return 1

    @property
    def sr(self) -> int:
        return int(self.info["sr"])


# -- resampling --------------------------------------------------------------------------------
def resample(
    x: np.ndarray, sr_in: int, sr_out: int, zeros: int = 16, beta: float = 8.6
) -> np.ndarray:
    """``x`` (..., T) at ``sr_in`` Hz resampled to ``sr_out`` Hz: band-limited interpolation with a
    Kaiser-windowed sinc of ``zeros`` zero crossings each side, its cut-off at the lower Nyquist
    rate (an anti-aliasing filter when downsampling). Output length ``ceil(T * sr_out / sr_in)``.

    Polyphase: with ``up/down = sr_out/sr_in`` in lowest terms, output sample k sits at input
    position ``k * down / up``, so only ``up`` distinct filters exist (one per fractional phase).
    """
    if sr_in == sr_out:
        return np.asarray(x, np.float32)
    g = math.gcd(sr_in, sr_out)
    up, down = sr_out // g, sr_in // g
    cutoff = min(1.0, up / down)  # of the input's Nyquist rate
    half = int(math.ceil(zeros / cutoff))
    taps = np.arange(-half + 1, half + 1)  # input offsets relative to floor(position)
    n_in = x.shape[-1]
    n_out = int(math.ceil(n_in * up / down))
    # one filter per phase p/up: h[p, j] = kernel(taps[j] - p / up)
    t = taps[None, :] - (np.arange(up) / up)[:, None]
    window = np.i0(beta * np.sqrt(np.clip(1 - (t / (half + 1)) ** 2, 0, None))) / np.i0(beta)
    table = (cutoff * np.sinc(cutoff * t) * window).astype(np.float64)
    flat = np.asarray(x, np.float64).reshape(-1, n_in)
    padded = np.pad(flat, ((0, 0), (half, half + 1)))
    out = np.empty((len(flat), n_out), np.float32)
    chunk = 1 << 15
    for lo in range(0, n_out, chunk):
        k = np.arange(lo, min(n_out, lo + chunk))
        base, phase = (k * down) // up, (k * down) % up
        idx = base[:, None] + taps[None, :] + half  # into the padded signal
        out[:, lo : lo + len(k)] = np.einsum("bkj,kj->bk", padded[:, idx], table[phase])
    return out.reshape(*x.shape[:-1], n_out)


# -- decoding ----------------------------------------------------------------------------------
def soundfile_module():
    try:
        import soundfile
    except ImportError:
        raise DataError(
            "reading sound files needs soundfile; install it with: pip install 'selfsup[audio]'"
        ) from None
    return soundfile


def decode(path: Path, sr: int) -> np.ndarray:
    """One file as a float32 mono waveform at ``sr`` Hz (a :class:`DataError` says what is
    wrong)."""
    sf = soundfile_module()
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile's errors (LibsndfileError, RuntimeError, TypeError)
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"cannot decode '{path}' as sound ({msg})") from None
    return to_clip(data.T, int(rate), sr, f"'{path}'")


def to_clip(x: np.ndarray, rate: int, sr: int, what: str) -> np.ndarray:
    """(C, T) samples at ``rate`` -> float32 mono at ``sr``; refuses empty, silent, rate 0."""
    if rate <= 0:
        raise DataError(f"{what} declares a sample rate of {rate} Hz; give a positive rate")
    if x.shape[-1] == 0:
        raise DataError(f"{what} holds no samples (an empty clip)")
    mono = np.asarray(x, np.float64).mean(0)
    if not np.isfinite(mono).all():
        raise DataError(f"{what} holds NaN or infinite samples")
    if np.abs(mono).max() < SILENCE:
        raise DataError(f"{what} is silent (every sample is 0); drop it")
    return resample(mono, rate, sr)


def pack(clips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Clips of any lengths -> (NaN-padded (N, T) float32, lengths (N,))."""
    lengths = np.array([len(c) for c in clips], np.int64)
    x = np.full((len(clips), int(lengths.max()) if len(clips) else 1), np.nan, np.float32)
    for i, c in enumerate(clips):
        x[i, : len(c)] = c
    return x, lengths


def _rate(options: dict) -> int:
    v = options.get("sample_rate")
    try:
        sr = DEFAULT_RATE if v is None else int(v)
    except (TypeError, ValueError):
        sr = 0
    if sr < 1000 or sr > 384000:
        raise DataError(f"--sample-rate {v!r} must be a whole number of Hz from 1000 to 384000")
    return sr


def _max_seconds(options: dict) -> float:
    v = options.get("max_seconds")
    try:
        s = DEFAULT_MAX_SECONDS if v is None else float(v)
    except (TypeError, ValueError):
        s = -1.0
    if not s > 0 or not math.isfinite(s):
        raise DataError(f"--max-seconds {v!r} must be a positive number of seconds")
    return s


# -- folders -----------------------------------------------------------------------------------
def is_audio_file(p: Path) -> bool:
    return p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".") and p.is_file()


def _has_audio(root: Path, depth: int = 3, per_dir: int = 20) -> bool:
    """Whether ``root`` holds sound files within ``depth`` levels (a few entries per folder are
    looked at, so that a large image folder is not listed in full)."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return False
    files = [e for e in entries if e.is_file()][:per_dir]
    if any(Path(e.name).suffix.lower() in AUDIO_EXTENSIONS for e in files):
        return True
    return depth > 1 and any(
        _has_audio(Path(e.path), depth - 1, per_dir)
        for e in entries
        if e.is_dir() and not e.name.startswith(".")
    )


def claims_folder(spec: str, path: Path) -> bool:
    return path.is_dir() and _has_audio(path)


def list_split(root: Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """Files and labels of one split folder (class sub-folders, or files of its own: unlabelled)."""
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    direct = sorted(p for p in root.iterdir() if is_audio_file(p))
    files: list[Path] = []
    labels: list[int] = []
    classes: list[str] = []
    for d in subdirs:
        clips = sorted(p for p in d.rglob("*") if is_audio_file(p))
        if clips:
            classes.append(d.name)
            files += clips
            labels += [len(classes) - 1] * len(clips)
    if classes and direct:
        raise DataError(
            f"'{root}' holds both class folders ({', '.join(classes[:5])}) and {len(direct)} sound "
            f"file(s) of its own (e.g. '{direct[0].name}'); move those files into a class folder "
            "or remove them"
        )
    if classes:
        return files, labels, classes
    return direct, None, None


def _decode_split(
    root: Path, name: str, sr: int, max_s: float, skip: bool, classes: list[str] | None = None
) -> AudioData:
    files, labels, found = list_split(root)
    if not files:
        raise DataError(
            f"'{root}' holds no sound files ({', '.join(sorted(AUDIO_EXTENSIONS))}); put them in "
            "ROOT/<class>/ or ROOT/"
        )
    if classes is not None and found is not None:  # the test split follows the training classes
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted(set(found) - set(index))
        if unknown:
            raise DataError(
                f"'{root}': class folder '{unknown[0]}' is not a class of the training split "
                f"({', '.join(classes[:8])})"
            )
        labels = [index[found[v]] for v in labels or []]
        found = classes
    clips, keep, skipped = [], [], []
    limit = int(max_s * sr)
    cut = 0
    for i, f in enumerate(files):
        try:
            c = decode(f, sr)
        except DataError:
            if not skip:
                raise
            skipped.append(str(f.relative_to(root)))
            continue
        if len(c) > limit:
            c, cut = c[:limit], cut + 1
        clips.append(c)
        keep.append(i)
    if not clips:
        raise DataError(f"'{root}': none of its {len(files)} sound file(s) could be decoded")
    x, lengths = pack(clips)
    y = None if labels is None else np.asarray(labels, np.int64)[keep]
    info = {
        "sr": sr,
        "ids": [str(files[i].relative_to(root)) for i in keep],
        "skipped": len(skipped),
        "skipped_files": skipped[:20],
        "cut": cut,
    }
    return AudioData(x, y, found, name, info, lengths=lengths)


def load_folder(spec: str, skip_corrupt: bool = False, cache_dir=None, options=None, **_) -> Splits:
    options = options or {}
    root = Path(spec).expanduser()
    sr, max_s = _rate(options), _max_seconds(options)
    opts = {"kind": "audio", "sr": sr, "max_s": max_s, "skip": skip_corrupt, "v": VERSION}
    key = f"audio-{fingerprint(root, opts)}"
    croot = cache_root(cache_dir)
    hit = load_cached(key, croot, AudioData, CACHED)
    if hit is None:
        name = root.name or str(root)
        if (root / "train").is_dir():
            train = _decode_split(root / "train", f"{name}/train", sr, max_s, skip_corrupt)
            test = (
                _decode_split(root / "test", f"{name}/test", sr, max_s, skip_corrupt, train.classes)
                if (root / "test").is_dir()
                else None
            )
            hit = Splits(train, test)
        else:
            hit = Splits(_decode_split(root, name, sr, max_s, skip_corrupt))
        store(key, croot, hit, CACHED)
    report(hit)
    return hit


def report(splits: Splits) -> None:
    """``--skip-corrupt``: one warning per split that left files out; clips cut to max_seconds."""
    import warnings

    from ..errors import DataWarning
    from .base import report_skipped

    report_skipped(splits, "unreadable, empty or silent clip(s)")
    for d in (splits.train, splits.test):
        if d is None:
            continue
        if d.info.get("cut"):
            warnings.warn(
                f"{d.name}: {d.info['cut']} clip(s) longer than --max-seconds keep their beginning",
                DataWarning,
                stacklevel=3,
            )


def clips_from_array(
    x: np.ndarray, rate_in: int, sr: int, max_s: float, where: str, name: str, skip: bool
) -> tuple[AudioData, list[int]]:
    """(N, T) or (N, C, T) waveforms at ``rate_in`` (NaN after a shorter clip's end) as an
    unlabelled :class:`AudioData` at ``sr`` and the indices of the clips kept (all unless
    ``skip``)."""
    if x.dtype.kind not in "iuf" or x.ndim not in (2, 3):
        raise DataError(
            f"{where} must be float waveforms of shape (N, T) or (N, C, T), got "
            f"{x.dtype} {tuple(x.shape)}"
        )
    if x.ndim == 2:
        x = x[:, None]
    if len(x) == 0 or x.shape[2] == 0:
        raise DataError(f"{where} is empty (shape {tuple(x.shape)})")
    if rate_in <= 0:
        raise DataError(f"{where}: sr is {rate_in} Hz; give the waveforms' positive sample rate")
    clips, keep, skipped = [], [], []
    limit = int(max_s * sr)
    for i, c in enumerate(x):
        valid = ~np.isnan(c).all(0)
        n = int(len(valid) - np.argmax(valid[::-1])) if valid.any() else 0
        try:
            if n and np.isnan(c[:, :n]).any():
                raise DataError(f"{where} clip {i} holds NaN before its end")
            clip = to_clip(c[:, :n], rate_in, sr, f"{where} clip {i}")
        except DataError:
            if not skip:
                raise
            skipped.append(str(i))
            continue
        clips.append(clip[:limit])
        keep.append(i)
    if not clips:
        raise DataError(f"{where}: no clip could be used")
    xs, lengths = pack(clips)
    info = {"sr": sr, "skipped": len(skipped), "skipped_files": skipped[:20], "cut": 0}
    return AudioData(xs, None, None, name, info, lengths=lengths), keep


def _npz_rate(path: Path, rate: np.ndarray, key: str = "sr") -> int:
    if rate.size != 1 or rate.dtype.kind not in "iuf" or float(rate) != int(float(rate)):
        raise DataError(f"'{path}': {key} must be one whole number (the rate in Hz), got {rate!r}")
    return int(float(rate))


# -- .npz --------------------------------------------------------------------------------------
def claims_npz(spec: str, path: Path) -> bool:
    """An ``.npz`` with an ``sr`` array (other kinds of .npz have none)."""
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as z:
            return "sr.npy" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (no pickles), or one line when it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"'{path}' is not a readable .npz file ({type(err).__name__})") from None


def load_npz(spec: str, skip_corrupt: bool = False, options=None, **_) -> Splits:
    options = options or {}
    path = Path(spec).expanduser()
    sr, max_s = _rate(options), _max_seconds(options)
    arrays = _read_npz(path)
    rate_in = _npz_rate(path, arrays["sr"])
    if "x" not in arrays:
        raise DataError(f"'{path}' has sr but no x; save waveforms as x=(N, T) or (N, C, T)")

    def split(key: str, ykey: str, name: str) -> AudioData:
        y = arrays.get(ykey)
        if y is not None and len(y) != len(arrays[key]):
            raise DataError(
                f"'{path}': {len(y)} labels in {ykey} for {len(arrays[key])} clips in {key}"
            )
        d, keep = clips_from_array(
            arrays[key], rate_in, sr, max_s, f"'{path}': {key}", name, skip_corrupt
        )
        d.y = None if y is None else check_labels(np.asarray(y)[keep], len(keep), name)
        return d

    train = split("x", "y", f"{path.stem}")
    test = split("x_test", "y_test", f"{path.stem}/test") if "x_test" in arrays else None
    classes = None
    ys = [d.y for d in (train, test) if d is not None and d.y is not None]
    if ys:
        classes = [str(c) for c in range(int(max(int(v.max()) for v in ys)) + 1)]
        for d in (train, test):
            if d is not None and d.y is not None:
                d.classes = classes
    out = Splits(train, test)
    report(out)
    return out


# -- paired: sound as one member of a paired .npz ----------------------------------------------
def claims_paired_npz(spec: str, path: Path) -> bool:
    """A paired ``.npz`` (``x_a``, ``x_b``) with ``sr_a`` or ``sr_b``: that member is sound (unless
    the other member is text: :func:`selfsup.data.text.load_paired_npz` reads both)."""
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
    if "x_a.npy" not in names or not {"sr_a.npy", "sr_b.npy"} & names:
        return False
    from .npz import has_string_member  # sound with text: the text source reads it

    return not has_string_member(path)


def load_paired_npz(spec: str, options=None, **_) -> Splits:
    """``x_a``, ``x_b`` (+ ``y``, ``x_a_test``, ``x_b_test``, ``y_test``) where ``sr_a`` / ``sr_b``
    marks a sound member ((N, T) or (N, C, T) waveforms at that rate); the other member is read as
    :mod:`selfsup.data.paired` reads it, with its checks. Clips are never skipped (the members
    must stay aligned)."""
    from .paired import load_paired_npz as load_pairs

    options = options or {}
    path = Path(spec).expanduser()
    sr, max_s = _rate(options), _max_seconds(options)

    def member(tower: str, key: str, arrays: dict) -> Samples | None:
        return sound_member(path, tower, key, arrays, sr, max_s)

    return load_pairs(path, member=member)


def sound_member(
    path: Path, tower: str, key: str, arrays: dict, sr: int, max_s: float
) -> Samples | None:
    """The sound member ``arrays[key]`` of a paired ``.npz`` when ``sr_<tower>`` marks it, else
    None."""
    if f"sr_{tower}" not in arrays:
        return None
    rate = _npz_rate(path, arrays[f"sr_{tower}"], f"sr_{tower}")
    where = f"'{path}': {key}"
    return clips_from_array(arrays[key], rate, sr, max_s, where, where, False)[0]


register_option(
    DataOption("sample_rate", "sound: the rate clips are resampled to (Hz; 16000)", metavar="HZ")
)
register_option(
    DataOption(
        "max_seconds", "sound: clips longer than this keep their beginning (30)", metavar="SECONDS"
    )
)
register_source(Source("audio-npz", claims_npz, load_npz))
register_source(Source("audio-paired-npz", claims_paired_npz, load_paired_npz))
register_source(Source("audio-folder", claims_folder, load_folder))
