"""Every check that can be made before work starts is made then: one ``error:`` line, exit 2, and
nothing written (no run directory; the folder holding the data and the out path is unchanged, file
for file). One case per check of selfsup/validate.py, the data loaders and the run directory."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selfsup import cli

TINY = [
    "--backbone",
    "convnet_small",
    "--set",
    "model.proj_hidden=32",
    "--set",
    "model.proj_dim=16",
    "--batch-size",
    "16",
    "--epochs",
    "1",
    "--set",
    "train.progress=none",
    "--seed",
    "0",
    "--set",
    "eval.report=false",
    "--set",
    "eval.diagnostics=false",
    "--set",
    "eval.baselines=false",
]


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (the decode cache aside) with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "_cache" not in p.relative_to(root).parts
    }


def npz(path: Path, n: int = 48, y=None) -> Path:
    x = (np.random.default_rng(0).random((n, 8, 8)) * 255).astype("uint8")
    np.savez(path, **({"x": x} if y is None else {"x": x, "y": y}))
    return path


def labelled(tmp: Path) -> Path:
    return npz(tmp / "lab.npz", y=np.repeat(np.arange(3), 16))


def mixed_folder(tmp: Path) -> Path:
    root = tmp / "mixed"
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(12):
            Image.fromarray((rng.random((8, 8)) * 255).astype("uint8")).save(root / c / f"{i}.png")
    for i in range(20):  # stray images at the root of the class tree
        Image.fromarray((rng.random((8, 8)) * 255).astype("uint8")).save(root / f"stray{i}.png")
    return root


def float_tiff(tmp: Path) -> Path:
    root = tmp / "floats"
    root.mkdir()
    for i in range(20):
        a = np.random.default_rng(i).random((8, 8)).astype("float32") * 40.0  # not in [0, 1]
        Image.fromarray(a, mode="F").save(root / f"{i}.tif")
    return root


def fifo(tmp: Path) -> Path:
    p = tmp / "pipe"
    os.mkfifo(p)
    return p


def _no_package(name: str) -> bool:
    return importlib.util.find_spec(name) is None


# name -> (data maker, extra argv, words the one line must hold)
CASES = {
    "lr_inf": (labelled, ["--lr", "inf"], ["optim.lr", "finite"]),
    "warmup_inf": (labelled, ["--set", "optim.warmup_epochs=.inf"], ["optim.warmup_epochs"]),
    "lr_negative": (labelled, ["--lr", "-1"], ["learning rate"]),
    "seed_2_64": (labelled, ["--seed", str(2**64)], ["train.seed", "2**63"]),
    "seed_negative": (labelled, ["--set", "train.seed=-1"], ["train.seed"]),
    "eval_seed_huge": (labelled, ["--set", f"eval.seed={2**70}"], ["eval.seed"]),
    "threads_1e8": (labelled, ["--set", "train.threads=100000000"], ["train.threads"]),
    "fewshot_fraction_5": (
        labelled,
        ["--set", "eval.fewshot_fractions=[5.0]"],
        ["eval.fewshot_fractions"],
    ),
    "knn_sweep_k_0": (labelled, ["--set", "eval.knn_sweep_k=[0]"], ["eval.knn_sweep_k"]),
    "knn_sweep_t_negative": (labelled, ["--set", "eval.knn_sweep_t=[-0.1]"], ["eval.knn_sweep_t"]),
    "clip_grad_inf": (labelled, ["--set", "optim.clip_grad=.inf"], ["optim.clip_grad"]),
    "jitter_nan": (labelled, ["--set", "views.jitter=[.nan,0,0,0]"], ["views.image.jitter[0]"]),
    "chunk_not_dividing_batch": (labelled, ["--set", "train.chunk_size=5"], ["train.chunk_size 5"]),
    "chunk_for_byol": (
        labelled,
        ["--method", "byol", "--set", "train.chunk_size=8"],
        ["'byol' is not"],
    ),
    "fp16_without_cuda": (
        labelled,
        ["--set", "train.precision=fp16", "--device", "cpu"],
        ["fp16 needs a CUDA"],
    ),
    "allow_changes_without_resume": (
        labelled,
        ["--allow-changes"],
        ["--allow-changes only applies"],
    ),
    "device_unknown": (labelled, ["--device", "tpu9"], ["device"]),
    "device_mps": (labelled, ["--device", "mps"], ["mps"]),
    "device_cuda_99": (labelled, ["--device", "cuda:99"], ["cuda:99"]),
    "view_size_eval_batch": (
        labelled,
        ["--set", "views.size=1024", "--set", "eval.batch_size=1000000"],
        ["eval.batch_size", "1024"],
    ),
    "image_size_eval_batch": (
        labelled,
        ["--set", "data.image_size=1024", "--set", "eval.batch_size=1000000"],
        ["eval.batch_size"],
    ),
    "label_1e10": (
        lambda t: npz(t / "big.npz", y=np.repeat(np.arange(3), 16) * 10**10),
        [],
        ["label", "range"],
    ),
    "label_below_minus_1": (
        lambda t: npz(t / "neg.npz", y=np.repeat(np.arange(3), 16) - 5),
        [],
        ["label -5"],
    ),
    "labels_needed": (lambda t: npz(t / "unl.npz"), ["--method", "supcon"], ["needs labels"]),
    "batch_larger_than_data": (labelled, ["--batch-size", "4096"], ["batch size"]),
    "unknown_method": (labelled, ["--method", "nosuch"], ["nosuch"]),
    "unknown_backbone": (labelled, ["--backbone", "nosuch"], ["nosuch"]),
    "unknown_field": (labelled, ["--set", "optim.nosuch=1"], ["optim.nosuch"]),
    "data_missing": (lambda t: t / "nothing.npz", [], ["does not exist"]),
    "data_fifo": (fifo, [], ["FIFO"]),
    "data_dev_null": (lambda t: Path("/dev/null"), [], ["FIFO"]),
    "stray_images_in_class_tree": (mixed_folder, [], ["class folders", "stray0.png"]),
    "float_tiff_out_of_range": (float_tiff, [], ["float image", "[0, 1]"]),
}
if _no_package("tensorboard"):
    CASES["logger_tensorboard_missing"] = (
        labelled,
        ["--logger", "tensorboard"],
        ["tensorboard", "pip install"],
    )
if _no_package("mlflow"):
    CASES["logger_mlflow_missing"] = (labelled, ["--logger", "mlflow"], ["mlflow", "pip install"])


def _one_line(code: int, err: str, needles) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failed_check_leaves_nothing_behind(case, tmp_path, capsys):
    make, extra, needles = CASES[case]
    if case == "device_cuda_99":
        import torch

        if torch.cuda.is_available() and torch.cuda.device_count() > 99:
            pytest.skip("a machine with 100 GPUs")
    data = make(tmp_path)
    out = tmp_path / "runs" / "r1"
    before = tree(tmp_path)
    code = cli.main(["train", "--data", str(data), "--out", str(out), *TINY, *extra])
    _one_line(code, capsys.readouterr().err, needles)
    assert not out.exists() and not out.parent.exists()
    assert tree(tmp_path) == before


def test_out_under_a_file_is_refused_before_anything(tmp_path, capsys):
    data = labelled(tmp_path)
    (tmp_path / "afile").write_text("x")
    before = tree(tmp_path)
    code = cli.main(["train", "--data", str(data), "--out", str(tmp_path / "afile" / "run"), *TINY])
    _one_line(code, capsys.readouterr().err, ["is a file"])
    assert tree(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_out_in_a_read_only_place_is_refused(tmp_path, capsys):
    data = labelled(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code = cli.main(["train", "--data", str(data), "--out", str(ro / "run"), *TINY])
        _one_line(code, capsys.readouterr().err, ["not writable"])
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_compare_checks_every_method_before_the_first_trains(tmp_path, capsys, monkeypatch):
    """The second method needs labels the data lacks: refused before simclr trains a step."""
    from selfsup import api

    data = npz(tmp_path / "unl.npz")
    calls = []
    monkeypatch.setattr(api, "_train_in", lambda *a, **k: calls.append(a))
    before = tree(tmp_path)
    code = cli.main(
        [
            "compare",
            "--methods",
            "simclr,supcon",
            "--data",
            str(data),
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "cmp"),
            "--batch-size",
            "16",
            "--backbone",
            "convnet_small",
        ]
    )
    _one_line(code, capsys.readouterr().err, ["supcon", "needs labels"])
    assert calls == [] and not (tmp_path / "cmp").exists()
    assert tree(tmp_path) == before


def test_compare_refuses_a_bad_option_for_the_last_method_only(tmp_path, capsys):
    data = labelled(tmp_path)
    before = tree(tmp_path)
    code = cli.main(
        [
            "compare",
            "--methods",
            "simclr,byol",
            "--data",
            str(data),
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "cmp"),
            "--set",
            "params.momentum=0.9",
        ]
    )  # byol's, not simclr's
    _one_line(code, capsys.readouterr().err, ["params.momentum"])
    assert not (tmp_path / "cmp").exists() and tree(tmp_path) == before
