import numpy as np
import pytest


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


@pytest.fixture
def tones_npz(tmp_path):
    x, y, _ = tones()
    p = tmp_path / "tones.npz"
    np.savez(p, x=x, y=y, sr=8000)
    return p


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFSUP_CACHE", str(tmp_path / "cache"))
