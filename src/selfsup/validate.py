"""The one validation pass before anything is written.

:func:`check_config` runs on a resolved :class:`~selfsup.config.Config` before the run directory is
looked at, data decoded or a model built: every number finite, seeds in range, the device present
in this build, the optional packages the options name installed (the caller,
:func:`selfsup.resolve.resolve_config`, then runs each modality's own
:meth:`~selfsup.modalities.Modality.check_config`: images, the evaluation batch at the configured
size fits). :func:`check_data` runs once the data is decoded and before the run directory is
created: labels the method needs and the checks of the data's modality (``check_input``,
``check_run``); :func:`check_training` once the method is built: the trainer's own refusals
(precision, processes, gradient caching).
Each failure is one :class:`~selfsup.errors.ConfigError` (or :class:`~selfsup.errors.DataError`)
line naming the field and what to do; nothing has been written when it is raised.

Also here: :func:`path_arg` for the Python API's path arguments.
"""

from __future__ import annotations

import importlib.util
import math
import os
from typing import Any

from .errors import ConfigError, DataError

#: seeds feed numpy and torch generators: both take 0 .. 2**63 - 1
MAX_SEED = 2**63 - 1
#: optional packages named by options: option value -> (import name, extra)
LOGGER_PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def check_config(cfg) -> None:
    """Everything about ``cfg`` that can be known before data is read (see the module docstring)."""
    _finite(cfg.to_dict(), "")
    for name, seed in (("train.seed", cfg.train.seed), ("eval.seed", cfg.eval.seed)):
        if not 0 <= seed <= MAX_SEED:
            raise ConfigError(
                f"config field '{name}': seed {seed} is out of range; use an integer "
                f"from 0 to 2**63 - 1 ({MAX_SEED})"
            )
    device(cfg.train.device)
    cores = os.cpu_count() or 1
    if cfg.train.threads is not None and cfg.train.threads > 4 * cores:
        raise ConfigError(
            f"config field 'train.threads': {cfg.train.threads} threads on a machine with {cores} "
            f"CPU core(s); use at most {4 * cores} (or leave it unset)"
        )
    ec = cfg.eval
    for name, values, ok, rule in (
        ("eval.fewshot_fractions", ec.fewshot_fractions, lambda v: 0 < v <= 1, "in (0, 1]"),
        ("eval.knn_sweep_k", ec.knn_sweep_k, lambda v: v >= 1, ">= 1"),
        ("eval.knn_sweep_t", ec.knn_sweep_t, lambda v: v > 0, "> 0"),
    ):
        bad = [v for v in values if not ok(v)]
        if bad:
            raise ConfigError(
                f"config field '{name}': {bad[0]} is out of range; every value must be {rule}"
            )
    for name in cfg.train.logger:
        module, extra = LOGGER_PACKAGES[name]
        if not _installed(module):
            raise ConfigError(
                f"--logger {name} needs the {module} package, which is not installed; "
                f"pip install selfsup[{extra}] (or drop --logger {name})"
            )


def check_data(cfg, train, bank, mod) -> None:
    """What needs the decoded data, before the run directory is created: the method's labels, the
    checks of the data's modality ``mod`` (its input, its views fields, its own run checks)."""
    from . import methods

    if methods.requirements(cfg.method, cfg.params).labels and not train.labelled:
        raise DataError(
            f"method '{cfg.method}' needs labels but '{train.name}' has none; give labelled data "
            "(class folders, CIFAR, or an .npz with y) or choose a self-supervised method"
        )
    for d in (train, bank):
        if d is not None:
            mod.check_input(d)
    reads = mod.reads_views(train) | {"preset", "n_views"}
    for name in given_views(cfg.views):
        if name.split(".")[0] not in reads:
            raise ConfigError(
                f"views.{name} does not apply to {mod.name} data ('{train.name}'); drop "
                f"--set views.{name} (this data reads views.{', views.'.join(sorted(reads))})"
            )
    if cfg.model.pretrained and not mod.loads_pretrained:
        raise ConfigError(
            f"model.pretrained applies to modalities whose backbones start from a checkpoint "
            f"folder, and {mod.name} data ('{train.name}') has none; drop model.pretrained"
        )
    mod.check_run(cfg, train, bank)


def given_views(views) -> list[str]:
    """The fields of a ``views`` section whose values differ from their defaults (a section's as
    ``section.field``)."""
    from .config import VIEWS_SECTIONS

    out = []
    for name, value in views:
        if name in VIEWS_SECTIONS:
            default = VIEWS_SECTIONS[name]()
            out += [f"{name}.{k}" for k, v in value if v != getattr(default, k)]
        elif value != type(views).model_fields[name].get_default(call_default_factory=True):
            out.append(name)
    return out


def device(name: str):
    """The torch device ``name`` stands for, refused in one line when this build or machine lacks
    it."""
    import torch

    if not isinstance(name, str):
        raise ConfigError(
            f"device must be a string such as 'cpu' or 'cuda:0', got {type(name).__name__}"
        )
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device '{name}' was asked for but CUDA is not available; use --device cpu"
            )
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ConfigError(
                f"device '{name}' does not exist: this machine has {n} CUDA device(s) "
                f"(cuda:0 .. cuda:{n - 1})"
            )
        return dev
    if dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError(
                f"device '{name}' is not available in this build of torch; use --device cpu"
            )
        return dev
    raise ConfigError(f"device '{name}' is not supported; use auto, cpu, cuda or cuda:N")


def gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB"


def free_memory(device_name: str) -> int | None:
    import torch

    if device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available()):
        try:
            dev = device(device_name)
            return int(torch.cuda.mem_get_info(dev)[0])
        except Exception:  # noqa: BLE001 - a bound we cannot measure is not a reason to refuse
            return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _finite(obj: Any, where: str) -> None:
    if isinstance(obj, bool):
        return
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ConfigError(
            f"config field '{where}': {obj} is not a finite number; give a finite value"
        )
    if isinstance(obj, dict):
        for k, v in obj.items():
            _finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _finite(v, f"{where}[{i}]")


def path_arg(value, what: str):
    """``value`` as a :class:`~pathlib.Path`, or a one-line :class:`ConfigError` saying what was
    expected."""
    from pathlib import Path

    if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes):
        return Path(value)
    raise ConfigError(f"{what} must be a path (a str or os.PathLike), got {type(value).__name__}")


def check_training(cfg, method, device) -> None:
    """The trainer's own refusals (precision for the device, the process count for the batch,
    gradient-caching chunks for the method), made before the run directory is created."""
    from .train import distributed as ddp
    from .train import gradcache
    from .train.precision import resolve

    tc = cfg.train
    resolve(tc.precision, device)
    _, world = ddp.world()
    ddp.check_batch(tc.batch_size, world)
    gradcache.check(method, tc.chunk_size, tc.batch_size // world)
