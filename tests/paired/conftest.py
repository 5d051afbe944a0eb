import pytest
from _paired_data import paired_npz, series_npz


@pytest.fixture
def series5(tmp_path):
    return str(series_npz(tmp_path / "five.npz"))


@pytest.fixture
def pair_file(tmp_path):
    return str(paired_npz(tmp_path / "pair.npz"))


@pytest.fixture
def paired_config(series5, tmp_path):
    """A paired run that takes a few seconds: 2 epochs, batch 16, small towers."""

    def make(method="clip", **extra):
        cfg = {
            "method": method,
            "data": {"source": series5, "pair_channels": "0,1:2,3,4"},
            "train": {"epochs": 2, "batch_size": 16, "progress": "none", "device": "cpu"},
            "model": {"width": 0.25, "proj_hidden": 32, "proj_dim": 16},
            "eval": {"report": False, "diagnostics": False},
            "out": str(tmp_path / "run"),
        }
        for k, v in extra.items():
            cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
        return cfg

    return make
