"""The results table `selfsup train` prints: metrics as columns while they fit the console, one row
per metric when they do not (rich would otherwise cut the headers to "node_ad…")."""

from __future__ import annotations

import pytest

from selfsup.cli import print_summary


def _summary(metrics: list[str]) -> dict:
    res = {m: 0.5 for m in metrics}
    return {
        "method": "grace",
        "data": "g.npz",
        "epochs": 5,
        "eval_data": {"bank_size": 40, "query_size": 200},
        "eval": res,
        "baselines": {"random_init": res, "raw_input": res},
    }


def _lines(capsys, metrics: list[str]) -> list[str]:
    print_summary(_summary(metrics), "/tmp/run")
    return capsys.readouterr().out.splitlines()


@pytest.fixture(autouse=True)
def _eighty_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")


def test_two_metrics_are_columns(capsys):
    out = _lines(capsys, ["knn_top1", "linear_top1"])
    header = next(line for line in out if "encoder" in line)
    assert "knn_top1" in header and "linear_top1" in header


def test_metrics_too_wide_for_the_console_are_rows_and_never_cut(capsys):
    metrics = [
        "node_top1",
        "node_adam_top1",
        "node_adam_val_top1",
        "node_adam_last_top1",
        "cluster_nmi",
        "cluster_ari",
    ]
    out = "\n".join(_lines(capsys, metrics))
    assert "…" not in out
    for m in metrics:
        assert m in out
    assert "metric" in out and "pretrained (grace)" in out
