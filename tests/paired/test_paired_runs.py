"""Paired runs end to end: summary metrics, bit-identical resume, load_encoder, and bad input at the
CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import selfsup


class Kill(Exception):
    pass


def test_paired_run_reports_towers_and_retrieval(paired_config):
    run = selfsup.train(paired_config("clip"))
    ev = run.summary["eval"]
    for k in (
        "xmodal_r1",
        "xmodal_r5",
        "xmodal_r10",
        "xmodal_medr",
        "xmodal_a2b_r1",
        "xmodal_b2a_medr",
        "a_knn_top1",
        "a_linear_top1",
        "b_knn_top1",
        "b_linear_top1",
    ):
        assert k in ev, k
    assert ev["xmodal_r1"] == pytest.approx((ev["xmodal_a2b_r1"] + ev["xmodal_b2a_r1"]) / 2)
    base = run.summary["baselines"]
    assert "xmodal_r1" in base["random_init"] and "a_knn_top1" in base["raw_input"]


def test_paired_resume_is_bit_identical(paired_config, tmp_path):
    cfg = paired_config("isogclr_pair", train={"epochs": 3}, out=str(tmp_path / "a"))
    straight = selfsup.train(cfg)

    def die(epoch, method):  # epoch 1's checkpoint is written, epoch 2's is not
        if epoch == 2:
            raise Kill()

    with pytest.raises(Kill):
        selfsup.train({**cfg, "out": str(tmp_path / "b")}, on_epoch_end=die)
    resumed = selfsup.train(resume=tmp_path / "b")
    a = load_file(str(straight.dir / "encoder.safetensors"))
    b = load_file(str(resumed.dir / "encoder.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("head_b.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.summary["eval"] == straight.summary["eval"]


def test_load_encoder_of_a_paired_run_rebuilds_both_towers(paired_config):
    run = selfsup.train(paired_config("xhcl", train={"epochs": 1}))
    enc = selfsup.load_encoder(run.dir)
    assert enc.meta["modality"] == "paired" and set(enc.meta["towers"]) == {"a", "b"}
    assert enc.a.meta["in_channels"] == 2 and enc.b.meta["in_channels"] == 3
    xa, xb = torch.randn(4, 2, 24), torch.randn(4, 3, 24)
    assert enc((xa, xb)).shape == (4, enc.a.out_dim + enc.b.out_dim)
    assert enc.embed_a(xa).shape == enc.embed_b(xb).shape == (4, 16)
    again = selfsup.evaluate(run.dir, write=False)
    assert again["eval"]["xmodal_r1"] == pytest.approx(run.summary["eval"]["xmodal_r1"])


def test_paired_npz_source_trains(pair_file, paired_config, tmp_path):
    run = selfsup.train(
        paired_config(
            "clip", data={"source": pair_file, "pair_channels": None}, train={"epochs": 1}
        )
    )
    assert run.summary["eval"]["a_knn_top1"] > 0


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "selfsup", "train", *args],
        capture_output=True,
        text=True,
        timeout=900,
    )  # a guard against a hang, not a speed check


@pytest.mark.parametrize(
    "spec, words",
    [
        ("0,1,2,3,4:", "leaves modality b empty"),
        ("0,1:1,2", "in both modalities"),
        ("0,1:2,9", "out of range"),
    ],
)
def test_bad_pair_split_is_one_error_line_exit_2_nothing_written(series5, tmp_path, spec, words):
    out = tmp_path / "never"
    r = _cli("--data", series5, "--pair-channels", spec, "--method", "clip", "--out", str(out))
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], r.stderr
    assert not out.exists()


def test_mismatched_npz_is_one_error_line(tmp_path):
    import numpy as np

    p = tmp_path / "bad.npz"
    np.savez(p, x_a=np.zeros((6, 2, 8), np.float32), x_b=np.zeros((5, 3, 8), np.float32))
    out = tmp_path / "never"
    r = _cli("--data", str(p), "--method", "clip", "--out", str(out))
    assert r.returncode == 2 and r.stderr.count("error:") == 1 and "'x_b' has 5" in r.stderr
    assert not out.exists()


def test_cli_paired_run_prints_the_table(series5, tmp_path):
    out = tmp_path / "cli"
    r = _cli(
        "--data",
        series5,
        "--pair-channels",
        "0,1:2,3,4",
        "--method",
        "xhcl",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--out",
        str(out),
        "--set",
        "model.width=0.25",
        "--set",
        "eval.report=false",
        "--set",
        "train.progress=none",
    )
    assert r.returncode == 0, r.stderr
    assert "xmodal_r1" in r.stdout and "b_knn_top1" in r.stdout
    assert json.loads((out / "summary.json").read_text())["eval"]["xmodal_r1"] >= 0


def test_unlabelled_pairs_are_evaluated_by_cross_modal_retrieval(tmp_path):
    """Retrieval needs only the pairing: a paired .npz without y still gets the xmodal metrics,
    beside random init, on a fixed 20% of the pairs; the per-tower protocols need labels."""
    rng = np.random.default_rng(0)
    n = 60
    z = rng.normal(size=(n, 1, 1))  # what the two members share
    np.savez(
        tmp_path / "pairs.npz",
        x_a=(rng.normal(size=(n, 2, 16)) + z).astype(np.float32),
        x_b=(rng.normal(size=(n, 3, 16)) + z).astype(np.float32),
    )
    run = selfsup.train(
        method="clip",
        data=str(tmp_path / "pairs.npz"),
        epochs=3,
        batch_size=16,
        out=str(tmp_path / "r"),
        overrides=["eval.report=false", "eval.diagnostics=false", "train.progress=none"],
    )
    ev = run.summary["eval"]
    assert 0 <= ev["xmodal_r1"] <= 1 and ev["xmodal_medr"] >= 1
    assert not any(k.startswith(("a_", "b_")) for k in ev)
    assert "xmodal_r1" in run.summary["baselines"]["random_init"]
    assert run.summary["baselines"]["raw_input"] == {}
    # a trained pair ranks its partner higher than an untrained one does
    assert ev["xmodal_medr"] < run.summary["baselines"]["random_init"]["xmodal_medr"]


def test_param_groups_take_a_learning_rate_factor_by_name_prefix():
    from torch import nn

    from selfsup.train.optim import param_groups

    m = nn.ModuleDict({"a": nn.Linear(3, 3), "b": nn.Linear(3, 3)})
    plain = param_groups(m, 0.1)
    assert [len(g["params"]) for g in plain] == [2, 2] and "lr_factor" not in plain[0]
    groups = param_groups(m, 0.1, lr_factors={"b.": 0.25, "b.bias": 0.5})
    by = {(g["weight_decay"], g.get("lr_factor", 1.0)): len(g["params"]) for g in groups}
    # the longest matching prefix wins: b.weight 0.25 (decayed), b.bias 0.5 (no decay)
    assert by == {(0.1, 1.0): 1, (0.0, 1.0): 1, (0.1, 0.25): 1, (0.0, 0.5): 1}


def test_a_pair_trains_each_tower_at_its_modality_rate(tmp_path):
    """Member a is series (lr 1e-3), member b images (AdamW's 2e-3): tower b gets factor 2; a
    factor of 0 leaves tower b where it started while tower a trains."""
    from safetensors.torch import load_file

    rng = np.random.default_rng(0)
    n = 48
    y = np.arange(n) % 3
    img = (rng.random((n, 8, 8)) * 60).astype(np.uint8)
    for c in range(3):
        img[y == c, 2 * c : 2 * c + 2] += 150
    np.savez(
        tmp_path / "p.npz",
        x_a=(rng.normal(size=(n, 2, 16)) + y[:, None, None]).astype(np.float32),
        x_b=img,
        y=y,
    )
    quiet = ["eval.report=false", "eval.diagnostics=false", "train.progress=none"]
    common = dict(method="clip", data=str(tmp_path / "p.npz"), batch_size=16)
    run = selfsup.train(**common, epochs=1, out=str(tmp_path / "r"), overrides=quiet)
    assert run.config.optim.lr_factors == {"encoder.b.": pytest.approx(2.0)}
    frozen = [*quiet, "eval.baselines=false", "optim.lr_factors={encoder.b.: 0.0}"]
    one = selfsup.train(**common, epochs=1, out=str(tmp_path / "f1"), overrides=frozen)
    two = selfsup.train(**common, epochs=2, out=str(tmp_path / "f2"), overrides=frozen)
    w1 = load_file(str(one.dir / "encoder.safetensors"))
    w2 = load_file(str(two.dir / "encoder.safetensors"))
    stats = ("running_mean", "running_var", "num_batches_tracked")  # buffers, not trained

    def weights(w, tower):
        return {k: v for k, v in w.items() if k.startswith(tower) and not k.endswith(stats)}

    assert all(torch.equal(v, weights(w2, "b.")[k]) for k, v in weights(w1, "b.").items())
    assert not all(torch.equal(v, weights(w2, "a.")[k]) for k, v in weights(w1, "a.").items())
