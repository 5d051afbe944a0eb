"""Optional experiment trackers beside ``metrics.jsonl``: TensorBoard and MLflow (local file store).

Each logger has ``log(record)`` (a metrics.jsonl record: ``step`` plus numbers) and ``close()``.
Both packages are optional extras; asking for one that is not installed is a ConfigError that says
what to install. Files go inside the run directory: ``tensorboard/`` and ``mlruns/``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError

NAMES = ("tensorboard", "mlflow")


def _scalars(record: dict) -> dict[str, float]:
    out = {}
    for k, v in record.items():
        if k == "step" or isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if math.isfinite(v):
            out[k] = float(v)
    return out


def _flatten(d: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = str(v)[:250]
    return out


class TensorBoardLogger:
    """Scalars to ``RUN_DIR/tensorboard`` (view with ``tensorboard --logdir RUN_DIR``)."""

    def __init__(self, run_dir: Path, config: dict | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "--logger tensorboard needs the tensorboard package; "
                "pip install selfsup[tensorboard]"
            ) from None
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        if config:
            text = "\n".join(f"    {k}: {v}" for k, v in _flatten(config).items())
            self.writer.add_text("config", text, 0)

    def log(self, record: dict) -> None:
        step = int(record.get("step", 0))
        for k, v in _scalars(record).items():
            self.writer.add_scalar(k, v, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class MLflowLogger:
    """Params and metrics to a local MLflow file store ``RUN_DIR/mlruns`` (``mlflow ui`` reads
    it)."""

    def __init__(self, run_dir: Path, config: dict | None = None, experiment: str = "selfsup"):
        try:
            from mlflow.entities import Metric, Param
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ConfigError(
                "--logger mlflow needs the mlflow package; pip install selfsup[mlflow]"
            ) from None
        self._metric = Metric
        uri = (Path(run_dir).resolve() / "mlruns").as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        exp = self.client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(experiment)
        self.run_id = self.client.create_run(exp_id, run_name=Path(run_dir).name).info.run_id
        params = [Param(k, v) for k, v in _flatten(config or {}).items()]
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def log(self, record: dict) -> None:
        step, ts = int(record.get("step", 0)), int(time.time() * 1000)
        metrics = [
            self._metric(k.replace("@", "_at_"), v, ts, step) for k, v in _scalars(record).items()
        ]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def build_loggers(names: list[str], run_dir: Path, config: dict[str, Any] | None = None) -> list:
    """Loggers for the names in ``train.logger`` (an unknown name is a ConfigError)."""
    out = []
    for n in names:
        if n == "tensorboard":
            out.append(TensorBoardLogger(run_dir, config))
        elif n == "mlflow":
            out.append(MLflowLogger(run_dir, config))
        else:
            raise ConfigError(f"unknown logger '{n}'; choose from: {', '.join(NAMES)}")
    return out


def close_all(loggers: list) -> None:
    for lg in loggers:
        close = getattr(lg, "close", None)
        if close is not None:
            close()
