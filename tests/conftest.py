import os

import pytest
import torch

# Tests are tiny: keep them single-threaded so that several can share 2 cores predictably.
torch.set_num_threads(int(os.environ.get("SELFSUP_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Each test gets its own decode cache, so no test sees another's files."""
    monkeypatch.setenv("SELFSUP_CACHE", str(tmp_path / "_cache"))


@pytest.fixture
def tiny_images():
    """48 random 8x8 grayscale images in 3 classes, as uint8 (N, H, W, 1)."""
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 16)
    x = (rng.random((48, 8, 8, 1)) * 80).astype("uint8")
    for c in range(3):  # a class-specific bright stripe so classes are learnable
        x[y == c, 2 * c : 2 * c + 2, :, 0] += 150
    return x, y


@pytest.fixture
def tiny_config(tmp_path, tiny_npz):
    """``tiny_config(**sections)``: a config dict for a 2-epoch run on a tiny .npz."""
    return lambda **over: _tiny_config(tmp_path, **over)


def _tiny_config(tmp_path, **over):
    from selfsup.config import merge

    base = {
        "method": "simclr",
        "data": {"source": str(tmp_path / "tiny.npz")},
        "model": {"backbone": "convnet_small", "proj_hidden": 32, "proj_dim": 16},
        "train": {"epochs": 2, "batch_size": 16, "seed": 0, "progress": "none"},
        "eval": {"baselines": False, "knn_k": 5, "report": False, "diagnostics": False},
        "out": str(tmp_path / "run"),
    }
    return merge(base, over)


@pytest.fixture
def tiny_npz(tmp_path, tiny_images):
    import numpy as np

    x, y = tiny_images
    p = tmp_path / "tiny.npz"
    np.savez(p, x=x[..., 0], y=y)
    return p


@pytest.fixture
def resume_matches_full(tmp_path):
    """``resume_matches_full(cfg) -> (full, resumed)``: train ``cfg`` uninterrupted, and again
    stopped after epoch 2 and resumed; asserts the two final encoders are bit-identical."""
    import torch

    import selfsup

    class Kill(Exception):
        pass

    def die(epoch, method):
        if epoch == 2:
            raise Kill()

    def check(cfg):
        full = selfsup.train(cfg, out=str(tmp_path / "full"))
        with pytest.raises(Kill):
            selfsup.train(cfg, out=str(tmp_path / "half"), on_epoch_end=die)
        resumed = selfsup.train(resume=str(tmp_path / "half"))
        a = selfsup.load_encoder(full.dir).state_dict()
        b = selfsup.load_encoder(resumed.dir).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
        return full, resumed

    return check


#: the slow classes (fault injection, several processes, subprocess runs): ``pytest -m "not slow"``
#: is the fast suite for development; CI runs everything
SLOW = (
    "faults/",
    "train/test_ddp",
    "modalities/test_plugin_modality.py",
    "test_cli_end_to_end.py",
    "test_doctests.py",
)


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        path = str(item.path).replace("\\", "/")
        if any(f"tests/{s}" in path for s in SLOW):
            item.add_marker(pytest.mark.slow)
