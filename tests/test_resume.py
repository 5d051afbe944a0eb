"""A run killed after a checkpoint and resumed ends with bit-identical weights on CPU."""

import pytest
from safetensors.torch import load_file

import selfsup


class Kill(Exception):
    pass


def test_resume_after_kill_gives_identical_weights(tiny_config, tmp_path):
    cfg = tiny_config(train={"epochs": 3}, optim={"warmup_epochs": 1})
    straight = selfsup.train(cfg, out=str(tmp_path / "a"))

    def die_after_first(epoch, method):  # epoch 1's checkpoint is written; epoch 2's is not
        if epoch == 2:
            raise Kill()

    with pytest.raises(Kill):
        selfsup.train(cfg, out=str(tmp_path / "b"), on_epoch_end=die_after_first)
    resumed = selfsup.train(resume=tmp_path / "b")
    a = load_file(str(straight.dir / "encoder.safetensors"))
    b = load_file(str(resumed.dir / "encoder.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), k
    assert resumed.summary["eval"] == straight.summary["eval"]
    # the log of the resumed run has each step once
    import json

    steps = [
        json.loads(line)["step"]
        for line in (resumed.dir / "metrics.jsonl").read_text().splitlines()
        if "loss" in json.loads(line)
    ]
    assert steps == sorted(set(steps))


def test_resume_can_extend_the_number_of_epochs(tiny_config, tmp_path):
    run = selfsup.train(tiny_config(train={"epochs": 1}), out=str(tmp_path / "c"))
    more = selfsup.train(resume=run.dir, epochs=2)
    assert more.summary["epochs"] == 2 and more.summary["steps"] == 2 * run.summary["steps"]


def test_load_encoder_returns_a_plain_module(tiny_config):
    import torch

    run = selfsup.train(tiny_config())
    enc = selfsup.load_encoder(run.dir)
    assert isinstance(enc, torch.nn.Module)
    feats = enc(torch.rand(3, 1, enc.image_size, enc.image_size))
    assert feats.shape == (3, enc.out_dim)
