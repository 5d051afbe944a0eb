"""Tiny paired data: two 'sensors' of one event (3 classes of noisy sines; sensor b is a
phase-shifted, rescaled copy of sensor a plus its own noise, so the pairs share information)."""

from __future__ import annotations

import numpy as np


def paired_arrays(n=48, t=24, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3)
    steps = np.arange(t)
    phase = rng.uniform(0, 6, n)
    amp = rng.uniform(0.5, 1.5, n)
    base = np.stack([amp[i] * np.sin(steps * (0.3 + 0.4 * y[i]) + phase[i]) for i in range(n)])
    a = np.stack([base, 0.5 * base], 1) + 0.1 * rng.standard_normal((n, 2, t))
    b = np.stack([np.roll(base, 3, 1), -base, base**2], 1) + 0.1 * rng.standard_normal((n, 3, t))
    return a.astype(np.float32), b.astype(np.float32), y


def series_npz(path, n=48, t=24, seed=0):
    """One multichannel series source (5 channels: 0,1 = sensor a; 2,3,4 = sensor b)."""
    a, b, y = paired_arrays(n, t, seed)
    x = np.concatenate([a, b], 1)
    np.savez(path, x=x, y=y, x_test=x[::2], y_test=y[::2])
    return path


def paired_npz(path, n=48, t=24, seed=0):
    a, b, y = paired_arrays(n, t, seed)
    np.savez(path, x_a=a, x_b=b, y=y, x_a_test=a[::2], x_b_test=b[::2], y_test=y[::2])
    return path
