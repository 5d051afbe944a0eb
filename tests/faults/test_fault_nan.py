"""Non-finite losses and gradients: each step is skipped and counted; ``train.max_bad_steps`` in a
row stop the run with the last good checkpoint intact, or (``train.rollback``) reload it and go
on at a lower learning rate.

The faults come from a test-only method registered here: SimCLR whose loss is NaN (or whose
gradient is NaN while the loss is finite) at chosen calls.
"""

from __future__ import annotations

import json

import pytest
import torch

import selfsup
from selfsup.errors import TrainingError
from selfsup.methods import register
from selfsup.methods.simclr import SimCLR
from selfsup.train import checkpoint as ckpt

#: call numbers (1-based, counted across the process) at which the test method misbehaves
FAULTS: dict[str, set[int]] = {"nan": set(), "nan_grad": set(), "nan_weights": set()}


@register
class FaultySimCLR(SimCLR):
    name = "test_faulty_simclr"
    paper = "test only"

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.calls = 0

    def forward(self, views, batch):
        self.calls += 1
        loss, logs = super().forward(views, batch)
        if self.calls in FAULTS["nan"]:
            loss = loss * float("nan")
        if self.calls in FAULTS["nan_grad"]:  # finite loss, NaN gradient: d sqrt(u)/du at 0 is inf
            w = next(self.parameters())
            loss = loss + 0.0 * torch.sqrt(w.sum() * 0.0)
        return loss, logs

    def after_step(self, step, total_steps):
        if self.calls in FAULTS["nan_weights"]:  # as if the optimiser step overflowed
            with torch.no_grad():
                next(self.head.parameters()).fill_(float("nan"))


@pytest.fixture
def faults():
    yield FAULTS
    for v in FAULTS.values():
        v.clear()


def _cfg(tiny_config, **train):
    # tiny_npz: 48 images, batch 16 -> 3 steps an epoch; 2 epochs -> 6 steps
    return tiny_config(
        method="test_faulty_simclr",
        train=train,
        eval={"protocols": ["knn"], "diagnostics": False, "report": False},
    )


def _records(run):
    return [json.loads(x) for x in (run.dir / "metrics.jsonl").read_text().splitlines()]


def test_nonfinite_steps_are_skipped_and_counted(tiny_config, faults):
    faults["nan"].update({2, 5})
    faults["nan_grad"].add(4)
    run = selfsup.train(_cfg(tiny_config))
    assert run.summary["skipped_steps"] == 3 and run.summary["steps"] == 6
    ends = [r for r in _records(run) if "epoch_loss" in r]
    assert [r["skipped_steps"] for r in ends] == [1, 3]
    assert all(torch.isfinite(v).all() for v in run.encoder.state_dict().values())


def test_too_many_in_a_row_stop_with_last_checkpoint_intact(tiny_config, faults):
    faults["nan"].update(range(4, 100))
    with pytest.raises(TrainingError) as e:
        selfsup.train(_cfg(tiny_config, max_bad_steps=2))
    msg = str(e.value)
    assert (
        "\n" not in msg
        and "2 non-finite losses or gradients in a row" in msg
        and "checkpoints" in msg
    )
    run_dir = tiny_config()["out"]
    from pathlib import Path

    last = ckpt.latest(Path(run_dir))
    assert last is not None and last.name == "step-00000003.safetensors"
    state = ckpt.load(last)
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_rollback_reloads_last_checkpoint_with_lower_lr(tiny_config, faults):
    faults["nan"].update(
        {5, 6}
    )  # steps 5 and 6 of the first pass; the replay after rollback is clean
    run = selfsup.train(_cfg(tiny_config, max_bad_steps=2, rollback=True, rollback_lr_factor=0.5))
    recs = _records(run)
    rb = [r for r in recs if "rollback" in r]
    assert (
        len(rb) == 1 and rb[0]["from"] == "step-00000003.safetensors" and rb[0]["lr_scale"] == 0.5
    )
    assert run.summary["steps"] == 6 and run.summary["skipped_steps"] == 2
    state = ckpt.load(ckpt.latest(run.dir))
    assert state["progress"]["rollbacks"] == 1 and state["progress"]["lr_scale"] == 0.5
    # the learning rate after the rollback is half that of a clean run at the same step
    faults["nan"].clear()
    clean = selfsup.train(_cfg(tiny_config), overwrite=True)
    lr = {r["step"]: r["lr"] for r in recs if "lr" in r}
    lr_clean = {r["step"]: r["lr"] for r in _records(clean) if "lr" in r}
    assert lr[6] == pytest.approx(0.5 * lr_clean[6], rel=1e-12) and lr[3] == lr_clean[3]


def test_rollback_gives_up_after_max_rollbacks(tiny_config, faults):
    faults["nan"].update(range(4, 100))
    with pytest.raises(TrainingError, match="after 2 rollback"):
        selfsup.train(_cfg(tiny_config, max_bad_steps=2, rollback=True, max_rollbacks=2))


def test_nonfinite_weights_are_never_checkpointed(tiny_config, faults):
    faults["nan_weights"].add(6)  # the last step of epoch 2, just before its checkpoint
    with pytest.raises(TrainingError, match="weights became non-finite"):
        selfsup.train(_cfg(tiny_config))
    from pathlib import Path

    run = Path(tiny_config()["out"])
    assert [p.name for p in ckpt.checkpoints(run)] == ["step-00000003.safetensors"]
