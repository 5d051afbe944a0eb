"""Resume that verifies and notices: a corrupt checkpoint byte is found and named (resume falls back
to the previous good one), a changed data source or edited config.yaml is refused in one line unless
--allow-changes (then recorded), --epochs below what was trained is refused, summary.json counts
the epochs trained, messages advise --resume only when a good checkpoint exists, and config.yaml
stores absolute data paths so `selfsup eval RUN` works from any directory."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from selfsup import cli
from selfsup.errors import CheckpointError, CheckpointWarning
from selfsup.train import checkpoint as ckpt

TINY = [
    "--backbone",
    "convnet_small",
    "--set",
    "model.proj_hidden=32",
    "--set",
    "model.proj_dim=16",
    "--batch-size",
    "16",
    "--set",
    "train.progress=none",
    "--seed",
    "0",
    "--set",
    "train.threads=1",
    "--set",
    "eval.report=false",
    "--set",
    "eval.diagnostics=false",
    "--set",
    "eval.baselines=false",
]


def npz(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, x=(rng.random((48, 8, 8)) * 255).astype("uint8"), y=np.repeat(np.arange(3), 16))
    return path


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def one_line(code: int, err: str, *needles: str, exit_code: int = 2) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == exit_code, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 2-epoch run (a checkpoint per epoch: step 3 and step 6) on its own data."""
    tmp = tmp_path_factory.mktemp("resume")
    data = npz(tmp / "d.npz")
    run = tmp / "run"
    assert cli.main(["train", "--data", str(data), "--out", str(run), "--epochs", "2", *TINY]) == 0
    return run


@pytest.fixture
def run(finished, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(finished, dst)
    return dst


def flip(path: Path, at: int) -> None:
    b = bytearray(path.read_bytes())
    b[at] ^= 0x01
    path.write_bytes(bytes(b))


def silent_metadata_edit(path: Path) -> None:
    """Change a number in the JSON metadata so that it stays valid JSON (lr_scale 1.0 -> 3.0)."""
    b = bytearray(path.read_bytes())
    i = b.index(b"lr_scale")
    j = next(k for k in range(i, len(b)) if chr(b[k]).isdigit())
    b[j] = ord("3")
    path.write_bytes(bytes(b))


# -- checksums -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where", ["tensor_first", "tensor_middle", "tensor_last", "metadata_number"]
)
def test_a_corrupt_checkpoint_byte_is_found_and_named(where, run):
    newest = ckpt.checkpoints(run)[-1]
    if where == "metadata_number":
        silent_metadata_edit(newest)
    else:
        size, header = newest.stat().st_size, 8 + int.from_bytes(newest.read_bytes()[:8], "little")
        at = {
            "tensor_first": header,
            "tensor_middle": (header + size) // 2,
            "tensor_last": size - 1,
        }[where]
        flip(newest, at)
    with pytest.raises(CheckpointError, match=f"{newest.name}.*corrupt.*checksum"):
        ckpt.load(newest)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert ckpt.latest(run) == ckpt.checkpoints(run)[-2]
    assert any(newest.name in str(x.message) and x.category is CheckpointWarning for x in w)


def test_resume_falls_back_to_the_previous_good_checkpoint_and_says_so(run, capsys):
    newest = ckpt.checkpoints(run)[-1]
    flip(newest, newest.stat().st_size - 5)
    code = cli.main(["train", "--resume", str(run)])
    err = capsys.readouterr().err
    assert code == 0, err
    warn = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(warn) == 1 and newest.name in warn[0] and "previous good one" in warn[0], err
    s = summary(run)
    assert s["epochs"] == 2 and s["steps"] == 6
    assert s["resumes"][-1]["from"] == "step-00000003.safetensors"
    assert s["resumes"][-1]["passed_over"] == [newest.name]
    ckpt.load(ckpt.checkpoints(run)[-1])  # the rewritten newest checkpoint is good again


def test_no_good_checkpoint_is_one_line_that_says_start_again(run, capsys):
    for p in ckpt.checkpoints(run):
        flip(p, p.stat().st_size - 1)
    before = tree(run)
    line = one_line(
        cli.main(["train", "--resume", str(run)]),
        capsys.readouterr().err,
        "no good checkpoint",
        "--overwrite",
    )
    assert "--resume" not in line.split("start again", 1)[1]
    assert tree(run) == before


def test_checkpoints_of_earlier_versions_without_a_checksum_still_load(tmp_path):
    import torch
    from safetensors.torch import save_file

    p = tmp_path / "old.safetensors"
    save_file(
        {"s.model.w": torch.ones(2)},
        str(p),
        metadata={
            "selfsup": json.dumps(
                {"__dict__": [["model", {"__dict__": [["w", {"__tensor__": "s.model.w"}]]}]]}
            )
        },
    )
    assert torch.equal(ckpt.load(p)["model"]["w"], torch.ones(2))


# -- changes under a run ---------------------------------------------------------------------------


def test_data_changed_under_a_run_is_refused_then_allowed_and_recorded(tmp_path, capsys):
    data = npz(tmp_path / "d.npz")
    run = tmp_path / "run"
    assert cli.main(["train", "--data", str(data), "--out", str(run), "--epochs", "2", *TINY]) == 0
    npz(data, seed=1)  # same name and shape, other images
    before = tree(run)
    one_line(
        cli.main(["train", "--resume", str(run)]),
        capsys.readouterr().err,
        "changed",
        str(data),
        "--allow-changes",
    )
    assert tree(run) == before  # nothing touched
    assert cli.main(["train", "--resume", str(run), "--allow-changes", "--epochs", "3"]) == 0
    rec = summary(run)["resumes"][-1]
    assert rec["allowed_changes"] is True and str(data) in rec["changed"][0]
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run)]) == 0  # the new checkpoint records the new data
    assert summary(run)["resumes"][0]["allowed_changes"] is True  # the record stays


@pytest.mark.parametrize(
    "edit",
    [
        ("weight_decay: null", "weight_decay: 0.1"),
        ("knn_k: 200", "knn_k: 7"),
        ("batch_size: 16", "batch_size: 8"),
    ],
)
def test_an_edited_config_yaml_is_refused_in_one_line(edit, run, capsys):
    cfg = run / "config.yaml"
    text = cfg.read_text()
    assert edit[0] in text
    cfg.write_text(text.replace(edit[0], edit[1]))
    before = tree(run)
    field = edit[0].split(":")[0]
    one_line(
        cli.main(["train", "--resume", str(run)]), capsys.readouterr().err, field, "--allow-changes"
    )
    assert tree(run) == before


# -- epochs ----------------------------------------------------------------------------------------


def test_resume_with_fewer_epochs_than_trained_is_refused(run, capsys):
    before = tree(run)
    one_line(
        cli.main(["train", "--resume", str(run), "--epochs", "1"]),
        capsys.readouterr().err,
        "already trained 2 epoch",
        "at least 2",
    )
    assert tree(run) == before and summary(run)["epochs"] == 2


def test_resume_cannot_shorten_the_schedule_of_an_unfinished_run(run, capsys):
    ckpt.checkpoints(run)[-1].unlink()  # as if stopped after epoch 1 of 2
    (run / "summary.json").unlink()
    before = tree(run)
    one_line(
        cli.main(["train", "--resume", str(run), "--epochs", "1"]),
        capsys.readouterr().err,
        "scheduled for 2 epochs",
        "not shorten it to 1",
    )
    assert tree(run) == before and not (run / "summary.json").exists()


def test_resume_with_more_epochs_extends_the_schedule_and_says_so(run, capsys):
    assert cli.main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    s = summary(run)
    assert s["epochs"] == 3 and s["steps"] == 9
    assert s["resumes"][-1]["epochs"] == {"before": 2, "after": 3}
    assert "epochs: 3" in (run / "config.yaml").read_text()
    lrs = [
        r["lr"]
        for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        if "lr" in r
    ]
    assert all(np.isfinite(lrs))


def test_summary_never_claims_fewer_epochs_than_trained(run, capsys):
    assert cli.main(["train", "--resume", str(run)]) == 0  # a finished run resumed: nothing to add
    assert summary(run)["epochs"] == 2


# -- messages that tell the truth ------------------------------------------------------------------


def test_advice_names_a_good_checkpoint_or_says_start_again(run, tmp_path):
    assert "--resume" in ckpt.advice(run) and "step-00000006" in ckpt.advice(run)
    empty = tmp_path / "empty"
    (empty / "checkpoints").mkdir(parents=True)
    assert "--resume" not in ckpt.advice(empty) and "--overwrite" in ckpt.advice(empty)
    for p in ckpt.checkpoints(run):
        flip(p, p.stat().st_size - 1)
    assert "--resume" not in ckpt.advice(run)


def test_a_run_stopped_before_its_first_checkpoint_says_start_again(tmp_path, capsys):
    data = npz(tmp_path / "d.npz")
    run = tmp_path / "run"
    code = cli.main(
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(run),
            "--epochs",
            "2",
            "--lr",
            "1e30",
            "--set",
            "train.max_bad_steps=1",
            *TINY,
        ]
    )
    line = one_line(code, capsys.readouterr().err)
    assert ckpt.latest(run) is None  # the first step already diverged (seed 0)
    assert "--resume" not in line and "no good checkpoint" in line and "start again" in line


# -- eval from anywhere ----------------------------------------------------------------------------


def test_eval_works_from_another_directory(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    npz(work / "d.npz")
    monkeypatch.chdir(work)
    assert cli.main(["train", "--data", "d.npz", "--out", "run", "--epochs", "1", *TINY]) == 0
    assert "source: " + str(work / "d.npz") in (work / "run" / "config.yaml").read_text()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert cli.main(["eval", str(work / "run"), "--protocol", "knn", "--device", "cpu"]) == 0
    assert "knn_top1" in capsys.readouterr().out


def test_a_disk_full_before_the_first_checkpoint_says_start_again(tmp_path, monkeypatch, capsys):
    import errno

    from selfsup.io import storage_error

    data = npz(tmp_path / "d.npz")
    run = tmp_path / "run"

    def full(path, state):
        raise storage_error(OSError(errno.ENOSPC, "No space left on device"), path)

    monkeypatch.setattr(ckpt, "save", full)
    line = one_line(
        cli.main(["train", "--data", str(data), "--out", str(run), "--epochs", "1", *TINY]),
        capsys.readouterr().err,
        "No space left on device",
        "no good checkpoint",
        "start again",
    )
    assert "--resume" not in line and ckpt.latest(run) is None
