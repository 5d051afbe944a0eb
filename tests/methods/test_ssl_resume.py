"""Kill-and-resume: a run stopped after its first epoch's checkpoint and resumed ends bit-identical
(encoder file, every state-dict tensor, extra state) to an uninterrupted run."""

import pytest
import torch
from safetensors.torch import load_file

import selfsup
from selfsup.train import checkpoint as ckpt

LOSS = {
    "moco": {"queue_size": 24},
    "mochi": {"queue_size": 24, "n_hard": 8, "n_mix": 4, "n_mix_query": 2, "warmup_steps": 2},
    "nnclr": {"queue_size": 24},
    "gsimclr": {"ae_epochs": 1},
    "directpred": {"freq": 2},
}
METHODS = [
    "simclr",
    "moco",
    "mochi",
    "mocov3",
    "byol",
    "simsiam",
    "directpred",
    "directcopy",
    "nnclr",
    "barlow",
    "vicreg",
    "gsimclr",
]


class Kill(Exception):
    pass


def _kill_at_2(epoch, method):
    if epoch == 2:  # before epoch 2's checkpoint is written: the last one is epoch 1's
        raise Kill


def _cfg(tiny_config, name, out):
    return tiny_config(
        method=name,
        loss=LOSS.get(name, {}),
        out=str(out),
        eval={"protocols": ["knn"], "diagnostics": False, "report": False},
    )


@pytest.mark.parametrize("name", METHODS)
def test_kill_and_resume_is_bit_identical(name, tiny_config, tmp_path):
    straight = selfsup.train(_cfg(tiny_config, name, tmp_path / "a"))
    with pytest.raises(Kill):
        selfsup.train(_cfg(tiny_config, name, tmp_path / "b"), on_epoch_end=_kill_at_2)
    resumed = selfsup.train(resume=tmp_path / "b")
    ea, eb = (
        load_file(straight.dir / "encoder.safetensors"),
        load_file(resumed.dir / "encoder.safetensors"),
    )
    assert ea.keys() == eb.keys() and all(torch.equal(ea[k], eb[k]) for k in ea)
    sa, sb = ckpt.load(ckpt.latest(straight.dir)), ckpt.load(ckpt.latest(resumed.dir))
    assert sa["progress"]["step"] == sb["progress"]["step"] == 6
    assert sa["model"].keys() == sb["model"].keys()
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k
    assert sa["method_extra"] == sb["method_extra"]
