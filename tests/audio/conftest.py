import numpy as np
import pytest
from _audio_data import tones


@pytest.fixture
def tones_npz(tmp_path):
    x, y, _ = tones()
    p = tmp_path / "tones.npz"
    np.savez(p, x=x, y=y, sr=8000)
    return p


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFSUP_CACHE", str(tmp_path / "cache"))
