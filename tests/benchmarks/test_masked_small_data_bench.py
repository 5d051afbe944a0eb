"""benchmarks/masked_small_data.py: the epochs spend the budget on the samples an epoch really
trains, and every row carries the training CPU it actually used (issue 24)."""

import importlib.util
import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location(
        "masked_small_data_bench", ROOT / "benchmarks" / "masked_small_data.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


B = _script()


def test_an_epoch_trains_whole_batches_only():
    assert B.epoch_samples(1000, 128) == 896
    assert B.epoch_samples(5000, 128) == 4992
    with pytest.raises(ValueError):
        B.epoch_samples(100, 128)


def test_epochs_spend_the_budget_on_the_samples_trained():
    # 1,000 images at batch 128 train 896 a epoch: 540 CPU-s at 5.9 ms a sample is 102 epochs
    # (the old count, from 1,000 a epoch, was 92: 10% short of the budget)
    e = B.epochs_for(540, 5.9e-3, 1000, 128)
    assert e == 102
    assert abs(e * 896 * 5.9e-3 - 540) <= 0.5 * 896 * 5.9e-3
    assert B.epochs_for(1, 1.0, 1000, 128) == 1  # at least one


def test_run_cost_skips_the_first_epoch():
    assert B.run_cost([10.0], 256, 128) is None
    assert B.run_cost([10.0, 12.56, 15.12], 256, 128) == pytest.approx(0.01)


def test_a_row_carries_the_cpu_it_used_its_epochs_and_steps(monkeypatch, tmp_path):
    def fake_train(cfg, overwrite, on_epoch_end):  # each epoch burns a little CPU
        epochs = cfg["train"]["epochs"]
        for e in range(epochs):
            t = time.process_time()
            while time.process_time() - t < 0.02:
                pass
            on_epoch_end(e + 1, None)
        ev = {"knn_top1": 0.3, **{f"fewshot_{k}pct_top1": 0.2 for k in ("1", "10", "100")}}
        steps = epochs * (1000 // 128)
        return SimpleNamespace(
            summary={"epochs": epochs, "steps": steps, "train_time_s": 0.1, "eval": ev}
        )

    monkeypatch.setattr(B.selfsup, "train", fake_train)
    a = SimpleNamespace(budget=0.2, batch_size=128, lr=1e-3, precision="fp32", ft_steps=1)
    row = B.pretrain("simclr", tmp_path / "x.npz", 1000, 0, 0.02 / 896, a, tmp_path)
    assert row["epochs"] == 10 and row["steps"] == 70
    assert row["train_cpu_s"] >= 0.2 - 0.05
    assert row["run_cost_ms"] == pytest.approx(1e3 * 0.02 / 896, rel=0.5)
    assert row["cost_ms"] == pytest.approx(1e3 * 0.02 / 896, abs=1e-4)


def test_the_summary_states_the_cpu_used_beside_the_budget(tmp_path):
    rows = [
        {"method": "simclr", "backbone": "convnet", "size": 1000, "seed": s, "budget": 540,
         "epochs": 102, "steps": 714, "train_cpu_s": c, "knn": 0.4, "1": 0.2, "10": 0.3,
         "100": 0.4}
        for s, c in ((0, 530.0), (1, 560.0))
    ] + [
        {"method": "random init (convnet)", "backbone": "convnet", "size": 1000, "seed": s,
         "budget": 0, "epochs": 0, "steps": 0, "train_cpu_s": 0, "knn": 0.3, "1": 0.2,
         "10": 0.3, "100": 0.35}
        for s in (0, 1)
    ]  # fmt: skip
    p = tmp_path / "grid.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = B.summary([str(p)])
    assert "training CPU-s used" in table
    assert "| 1,000 | simclr | 540 | 545 (530-560) | 102 | 714 | 2 |" in table
    assert "| 1,000 | random init (convnet) | 0 | - | 0 | 0 | 2 |" in table
    assert "| 1,000 | simclr | 540 | +0.0 ± 0.0 (2) | +0.0 ± 0.0 (2) | +5.0 ± 0.0 (2) |" in table
