import pickle

import numpy as np
import pytest

from selfsup.data import eval_splits, load_source
from selfsup.errors import DataError


def _png(path, arr):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_digits_has_a_fixed_stratified_test_split():
    s = load_source("digits")
    assert s.train.x.shape[1:] == (8, 8, 1) and s.train.x.dtype == np.uint8
    assert len(s.train) + len(s.test) == 1797
    counts = np.bincount(s.test.y)
    assert counts.min() >= 40 and counts.max() <= 50
    assert np.array_equal(load_source("digits").test.y, s.test.y)


def test_image_folder_with_classes_and_splits(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for c in ("cat", "dog"):
            for i in range(n):
                _png(
                    tmp_path / split / c / f"{i}.png",
                    rng.integers(0, 255, (6, 6, 3), dtype=np.uint8),
                )
    (tmp_path / "train" / "README.txt").write_text("not an image, ignored")
    s = load_source(str(tmp_path))
    assert s.train.x.shape == (6, 6, 6, 3) and s.test.x.shape == (4, 6, 6, 3)
    assert s.train.classes == ["cat", "dog"] and list(s.train.y) == [0, 0, 0, 1, 1, 1]


def test_unlabelled_folder_and_mixed_sizes_go_to_the_most_common(tmp_path):
    for i in range(3):
        _png(tmp_path / f"{i}.png", np.full((8, 8), 10 * i, np.uint8))
    _png(tmp_path / "big.png", np.zeros((16, 12), np.uint8))
    s = load_source(str(tmp_path))
    assert s.train.y is None and s.train.x.shape == (4, 8, 8, 1)


def test_decoded_folder_is_cached_and_refreshed_when_files_change(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    for i in range(2):
        _png(root / f"{i}.png", np.full((4, 4, 3), i, np.uint8))
    first = load_source(str(root))
    import selfsup.data.folder as folder

    monkeypatch.setattr(folder, "load_folder", lambda *a, **k: pytest.fail("decoded twice"))
    assert np.array_equal(load_source(str(root)).train.x, first.train.x)
    monkeypatch.undo()
    _png(root / "2.png", np.full((4, 4, 3), 9, np.uint8))
    assert len(load_source(str(root)).train) == 3


def test_npz_source_and_eval_split(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, (50, 5, 5), dtype=np.uint8)
    y = np.repeat(np.arange(5), 10)
    np.savez(tmp_path / "a.npz", x=x, y=y)
    s = load_source(str(tmp_path / "a.npz"))
    assert s.train.x.shape == (50, 5, 5, 1)
    bank, query = eval_splits(s)
    assert (
        len(bank) == 40
        and len(query) == 10
        and sorted(query.y.tolist()) == sorted(np.repeat(np.arange(5), 2).tolist())
    )


def _cifar_batch(path, n, seed):
    rng = np.random.default_rng(seed)
    d = {
        b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8),
        b"labels": list(rng.integers(0, 10, n)),
    }
    path.write_bytes(pickle.dumps(d))


def test_cifar10_python_batches(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for i in range(1, 6):
        _cifar_batch(root / f"data_batch_{i}", 4, i)
    _cifar_batch(root / "test_batch", 3, 9)
    (root / "batches.meta").write_bytes(
        pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]})
    )
    s = load_source(str(tmp_path))
    assert s.train.x.shape == (20, 32, 32, 3) and s.test.x.shape == (3, 32, 32, 3)
    assert s.train.classes[0] == "c0"
    # the channel planes are laid out as (R, G, B) 32x32 each
    raw = pickle.loads((root / "data_batch_1").read_bytes())[b"data"][0]
    assert np.array_equal(s.train.x[0, :, :, 1].ravel(), raw[1024:2048])


def test_cifar_batch_that_carries_code_is_refused(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    for i in range(1, 6):
        (root / f"data_batch_{i}").write_bytes(pickle.dumps({b"data": Evil()}))
    (root / "test_batch").write_bytes(b"")
    with pytest.raises(DataError, match="cannot read CIFAR batch"):
        load_source(str(tmp_path))
    assert not marker.exists()
