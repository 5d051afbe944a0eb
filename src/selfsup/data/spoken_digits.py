"""The built-in ``spoken_digits``: the ten English digit words spoken by espeak-ng voices.

Each voice is an English accent of espeak-ng (8: British, American, Scottish, Lancaster, Received
Pronunciation, West Midlands, Caribbean, New York City) with one of its 12 speaker variants
(``m1``-``m7``, ``f1``-``f5``); every voice says each digit twice, at a random speed (130-210 words
a minute), pitch (25-75) and loudness, between 0.05 and 0.3 s of silence before and after the
word, and background noise (white, pink or brown) at a random signal-to-noise ratio of 5 to 30 dB
(as a microphone in a room would have it), reproducible under a fixed seed. The split is by voice:
the variants ``m3``, ``m7`` and ``f2`` are only in the test split (24 voices never heard in
training; 72 training voices), so the test measures unseen speakers. 1,920 clips at 16 kHz.

``spoken_digits:rooms`` is the same set (the same words, voices, silences and noise) with every
clip also played in a room and recorded through a microphone of its own: convolved with a random
room impulse response (exponentially decaying noise, reverberation time 0.2-0.8 s, direct to
reverberant ratio 0-10 dB) and filtered by a random smooth frequency response (up to +-9 dB at
eight octave bands), as recordings from different rooms and devices are. The room and microphone
change the average spectrum of a clip, which the raw log-mel baseline (each band's mean and
deviation over time) reads; the words are unchanged. It is generated and cached apart.

Synthesis needs the ``espeak-ng`` program (a Debian package: ``apt-get install espeak-ng``); the
clips are generated once (about half a minute on two cores) into the selfsup cache
(``SELFSUP_CACHE``, else ``~/.cache/selfsup``) and read from there afterwards.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import DataError
from . import Splits, register_builtin

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = (
    "en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
    "en-029", "en-us-nyc",
)  # fmt: skip
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
TEST_VARIANTS = ("m3", "m7", "f2")
REPEATS = 2
RATE = 16000
SEED = 0
VERSION = 2
ROOMS_VERSION = 1


def espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DataError(
            "the built-in spoken_digits is synthesised with espeak-ng, which is not installed; "
            "install it with: apt-get install espeak-ng"
        )
    return exe


def say(exe: str, text: str, voice: str, speed: int, pitch: int) -> tuple[np.ndarray, int]:
    """One utterance as float samples and their rate (espeak-ng writes a WAV to stdout)."""
    from .audio import soundfile_module

    sf = soundfile_module()
    cmd = [exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text]
    try:
        out = subprocess.run(cmd, capture_output=True, check=True, timeout=60).stdout
        data, rate = sf.read(io.BytesIO(out), dtype="float32", always_2d=True)
    except (subprocess.SubprocessError, OSError, RuntimeError) as err:
        raise DataError(f"espeak-ng failed on voice '{voice}' ({type(err).__name__})") from None
    return data.mean(1), int(rate)


def trim(x: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """The clip between the first and last sample above ``floor`` of its peak (espeak pads)."""
    loud = np.flatnonzero(np.abs(x) > floor * np.abs(x).max())
    return x[loud[0] : loud[-1] + 1] if len(loud) else x


def noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) noise of unit RMS, shaped in the frequency domain."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.arange(len(spec)), 1.0)
    spec = spec / f ** (0.5 * int(rng.integers(0, 3)))
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def in_room(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """``x`` played in a random room and recorded by a random microphone (``spoken_digits:rooms``):
    convolved with a decaying-noise impulse response, then a smooth random frequency response."""
    rt60 = rng.uniform(0.2, 0.8)
    t = np.arange(int(rt60 * RATE)) / RATE
    h = rng.standard_normal(len(t)) * np.exp(-np.log(1000.0) * t / rt60)  # -60 dB at rt60
    h[0] = 0.0
    drr = 10 ** (rng.uniform(0.0, 10.0) / 10)  # direct / reverberant energy
    h = h / np.sqrt(np.sum(h**2) * drr)
    h[0] = 1.0
    n = len(x) + len(h) - 1
    spec = np.fft.rfft(x, n) * np.fft.rfft(h, n)
    f = np.fft.rfftfreq(n, 1.0 / RATE)
    bands = 62.5 * 2.0 ** np.arange(8)  # 62.5 Hz .. 8 kHz
    gain_db = np.interp(np.log2(np.maximum(f, 1.0)), np.log2(bands), rng.uniform(-9, 9, 8))
    return np.fft.irfft(spec * 10 ** (gain_db / 20), n)


def generate(rooms: bool = False) -> dict[str, np.ndarray]:
    """Synthesise every clip: arrays for the train and test splits (see the module docstring);
    ``rooms``: ``spoken_digits:rooms`` (the same draws, each clip also in its room)."""
    from .audio import pack, resample

    exe = espeak()
    rng = np.random.default_rng(SEED)
    room_rng = np.random.default_rng([SEED, 1])  # its own stream: spoken_digits stays as it was
    jobs = []
    for accent in ACCENTS:
        for variant in VARIANTS:
            for _ in range(REPEATS):
                for d, word in enumerate(DIGITS):
                    speed, pitch = int(rng.integers(130, 211)), int(rng.integers(25, 76))
                    gain = float(10 ** (rng.uniform(-12, 0) / 20))
                    jobs.append((f"{accent}+{variant}", variant, d, word, speed, pitch, gain))

    def job(j: tuple) -> np.ndarray:
        x, rate = say(exe, j[3], j[0], j[4], j[5])
        return trim(resample(x, rate, RATE, zeros=8))

    with ThreadPoolExecutor(3) as pool:
        said = list(pool.map(job, jobs))
    out: dict[str, list] = {"train": [], "test": []}
    labels: dict[str, list] = {"train": [], "test": []}
    voices: dict[str, list] = {"train": [], "test": []}
    for (voice, variant, d, _, _, _, gain), word in zip(jobs, said, strict=True):
        word = word / (np.sqrt(np.mean(word**2)) + 1e-12)
        before, after = (int(rng.uniform(0.05, 0.3) * RATE) for _ in range(2))
        clip = np.concatenate([np.zeros(before), word, np.zeros(after)])
        hiss = 10 ** (-rng.uniform(5, 30) / 20) * noise(rng, len(clip))
        if rooms:  # the reverberation tail's noise continues the clip's (the same draws)
            clip = in_room(room_rng, clip)
            hiss = np.resize(hiss, len(clip))
        clip = clip + hiss
        clip = clip / np.abs(clip).max() * 0.9 * gain
        split = "test" if variant in TEST_VARIANTS else "train"
        out[split].append(clip.astype(np.float32))
        labels[split].append(d)
        voices[split].append(voice)
    arrays = {}
    for split in ("train", "test"):
        x, lengths = pack(out[split])
        arrays[f"{split}_x"], arrays[f"{split}_lengths"] = x, lengths
        arrays[f"{split}_y"] = np.array(labels[split], np.int64)
        arrays[f"{split}_voice"] = np.array(voices[split])
    return arrays


def load_spoken_digits(rooms: bool = False) -> Splits:
    """The built-in set (generated into the cache on first use); ``rooms``:
    ``spoken_digits:rooms``."""
    from ..io import atomic_path
    from .audio import AudioData
    from .cache import cache_root

    name = "spoken_digits:rooms" if rooms else "spoken_digits"
    path = cache_root(None) / (
        f"spoken_digits-rooms-v{ROOMS_VERSION}.npz" if rooms else f"spoken_digits-v{VERSION}.npz"
    )
    arrays = None
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError):
            arrays = None
    if arrays is None:
        arrays = generate(rooms)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, **arrays)
        except OSError:
            pass
    splits = []
    for split in ("train", "test"):
        ids = [f"{v}/{i}" for i, v in enumerate(arrays[f"{split}_voice"].tolist())]
        splits.append(
            AudioData(
                arrays[f"{split}_x"],
                arrays[f"{split}_y"],
                list(DIGITS),
                f"{name}/{split}",
                {"sr": RATE, "ids": ids, "voices": sorted(set(arrays[f"{split}_voice"].tolist()))},
                lengths=arrays[f"{split}_lengths"],
            )
        )
    return Splits(splits[0], splits[1])


register_builtin("spoken_digits", load_spoken_digits)
register_builtin("spoken_digits:rooms", lambda: load_spoken_digits(rooms=True))
