"""Tiny pretrained runs of every modality, shared by the deploy tests (one per session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import selfsup

QUICK = [
    "eval.report=false",
    "eval.baselines=false",
    "eval.diagnostics=false",
    "eval.protocols=[knn]",
]


def series_npz(path: Path, n: int = 48, channels: int = 2, length: int = 32) -> Path:
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    t = np.linspace(0, 1, length, dtype=np.float32)
    x = np.sin(2 * np.pi * (y[:, None, None] + 1) * t) + 0.1 * rng.standard_normal(
        (n, channels, length)
    )
    np.savez(path, x=x.astype(np.float32), y=y)
    return path


def paired_npz(path: Path, n: int = 48) -> Path:
    rng = np.random.default_rng(1)
    y = np.arange(n) % 3
    base = rng.standard_normal((n, 1, 32)).astype(np.float32) + y[:, None, None]
    np.savez(
        path,
        x_a=np.repeat(base, 2, 1) + 0.1,
        x_b=np.repeat(base, 3, 1) * 2,
        y=y,
    )
    return path


#: modality -> (training options, overrides)
SPECS = {
    "image": ({"data": "digits", "batch_size": 64}, ["data.limit=256"]),
    "table": ({"data": "wine", "batch_size": 32}, []),
    "timeseries": ({"data": "SERIES", "batch_size": 16}, ["train.precision=fp32"]),
    "graph": ({"data": "karate", "method": "grace"}, []),
    "paired": ({"data": "PAIRED", "method": "clip", "batch_size": 16}, []),
}


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("deploy-data")
    series_npz(d / "series.npz")
    paired_npz(d / "paired.npz")
    return d


@pytest.fixture(scope="session")
def runs(tmp_path_factory, data_dir) -> dict[str, Path]:
    """A one-epoch run per modality (trained once per session)."""
    root = tmp_path_factory.mktemp("deploy-runs")
    out = {}
    for name, (opts, extra) in SPECS.items():
        opts = dict(opts)
        opts["data"] = {
            "SERIES": str(data_dir / "series.npz"),
            "PAIRED": str(data_dir / "paired.npz"),
        }.get(opts["data"], opts["data"])
        run = selfsup.train(epochs=1, seed=0, out=str(root / name), overrides=QUICK + extra, **opts)
        out[name] = run.dir
    return out


@pytest.fixture(scope="session")
def sources(data_dir) -> dict[str, str]:
    """Each modality's data source (the one its run trained on)."""
    return {
        "image": "digits",
        "table": "wine",
        "timeseries": str(data_dir / "series.npz"),
        "graph": "karate",
        "paired": str(data_dir / "paired.npz"),
    }


def _cli(*argv: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from selfsup.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli():
    """Run the command line in this process: ``cli(*argv) -> (exit status, stdout, stderr)``."""
    return _cli
