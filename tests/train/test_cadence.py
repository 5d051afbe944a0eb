"""How often a run writes checkpoints and diagnostics: every epoch in short runs, about 100 records
in long ones (a 1,500-epoch full-graph run spent a third of its time on them when both ran every
epoch), always at the last epoch."""

import json

import pytest

import selfsup
from selfsup import config as conf
from selfsup.errors import ConfigError
from selfsup.resolve import resolve_config
from selfsup.train import loop


@pytest.mark.parametrize(
    "setting, epochs, every",
    [("auto", 1, 1), ("auto", 100, 1), ("auto", 101, 2), ("auto", 1500, 15), (3, 1500, 3)],
)
def test_every_epochs(setting, epochs, every):
    assert conf.every_epochs(setting, epochs) == every


@pytest.mark.parametrize("bad", [0, -1, "often"])
def test_cadence_refuses_what_is_not_a_positive_count(bad):
    for key in ("train.checkpoint_every", "eval.diagnostics_every"):
        with pytest.raises(ConfigError):
            resolve_config(None, [f"{key}={bad}"])


def test_checkpoints_and_diagnostics_follow_their_cadence(tiny_config, tmp_path, monkeypatch):
    saved: list[int] = []
    save = loop.Trainer.save_checkpoint

    def spy(self):
        saved.append(self.state.epoch)
        return save(self)

    monkeypatch.setattr(loop.Trainer, "save_checkpoint", spy)
    cfg = tiny_config(
        train={"epochs": 5, "checkpoint_every": 2},
        eval={"diagnostics": True, "diagnostics_every": 3},
    )
    run = selfsup.train(cfg, out=str(tmp_path / "r"))
    assert saved == [2, 4, 5]
    rows = [json.loads(s) for s in (run.dir / "metrics.jsonl").read_text().splitlines()]
    diag = [r["epoch"] for r in rows if "diag_rankme" in r]
    assert diag == [3, 5]
    assert [r["epoch"] for r in rows if "epoch_time_s" in r] == [1, 2, 3, 4, 5]


def test_diagnostics_do_not_change_what_is_trained(tiny_config, tmp_path):
    from safetensors.torch import load_file

    def weights(every, name):
        cfg = tiny_config(
            train={"epochs": 3}, eval={"diagnostics": True, "diagnostics_every": every}
        )
        run = selfsup.train(cfg, out=str(tmp_path / name))
        return load_file(str(run.dir / "encoder.safetensors"))

    a, b = weights(1, "every"), weights(3, "last")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
