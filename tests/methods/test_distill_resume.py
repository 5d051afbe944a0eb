"""Kill-and-resume of the clustering and self-distillation methods (issue 20): a run stopped after
its first epoch's checkpoint and resumed ends bit-identical to an uninterrupted one, teacher,
centre, prototypes, queue, memory and word vocabulary included (the pattern of test_ssl_resume)."""

import pytest
import torch
from safetensors.torch import load_file

import selfsup
from selfsup.train import checkpoint as ckpt

CASES = {
    "swav": ({"n_prototypes": 8, "queue_size": 16, "queue_start_epochs": 1}, {}),
    "dino": ({"out_dim": 32, "warmup_teacher_temp": 0.02, "warmup_teacher_temp_epochs": 2}, {}),
    "ibot": ({"out_dim": 32}, {"backbone": "auto"}),
    "deepclusterv2": ({"n_prototypes": 4}, {}),
    "obow": ({"num_words": 32}, {}),
}


class Kill(Exception):
    pass


def _kill_at_2(epoch, method):
    if epoch == 2:
        raise Kill


def _cfg(tiny_config, name, out):
    loss, model = CASES[name]
    return tiny_config(
        method=name,
        loss=loss,
        model=model,
        views={"local_crops": 2, "local_size": 4} if name != "ibot" else {},
        out=str(out),
        eval={"protocols": ["knn"], "diagnostics": False, "report": False},
    )


@pytest.mark.parametrize("name", list(CASES))
def test_kill_and_resume_is_bit_identical(name, tiny_config, tmp_path):
    straight = selfsup.train(_cfg(tiny_config, name, tmp_path / "a"))
    with pytest.raises(Kill):
        selfsup.train(_cfg(tiny_config, name, tmp_path / "b"), on_epoch_end=_kill_at_2)
    resumed = selfsup.train(resume=tmp_path / "b")
    ea = load_file(straight.dir / "encoder.safetensors")
    eb = load_file(resumed.dir / "encoder.safetensors")
    assert ea.keys() == eb.keys() and all(torch.equal(ea[k], eb[k]) for k in ea)
    sa, sb = ckpt.load(ckpt.latest(straight.dir)), ckpt.load(ckpt.latest(resumed.dir))
    assert sa["progress"]["step"] == sb["progress"]["step"] > 0
    assert sa["model"].keys() == sb["model"].keys()
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k
    assert sa["method_extra"] == sb["method_extra"]
