"""Tiny sound data for the audio tests (a module, so tests can import it: ``from _audio_data import
tones``; a conftest cannot be imported by name)."""

import numpy as np


def tones(n=24, sr=8000, seed=0, classes=3):
    """Clips of 0.2-0.5 s: class k is a tone near 300 * 2**k Hz with a little noise, NaN-padded."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    lengths = rng.integers(int(0.2 * sr), int(0.5 * sr), n)
    x = np.full((n, int(lengths.max())), np.nan, np.float32)
    for i, (k, m) in enumerate(zip(y, lengths, strict=True)):
        t = np.arange(m) / sr
        f = 300 * 2**k * rng.uniform(0.9, 1.1)
        x[i, :m] = 0.5 * np.sin(2 * np.pi * f * t) + 0.01 * rng.standard_normal(m)
    return x, y, lengths
