"""``--resume``: which checkpoint to continue from, and whether the run is still the run it was.

Each checkpoint records the run's identity (:func:`identity`: its config and a fingerprint of its
data, see :func:`selfsup.data.cache.fingerprint`). :func:`plan` picks the newest *good* checkpoint
(a damaged newer one is named and passed over), then compares: a data source that changed, or a
``config.yaml`` edited in any field that shapes training, is refused in one line unless
``allow_changes`` is given (the change is then recorded); ``train.epochs`` may be raised or kept,
never lowered (the cosine schedule is then stretched to the new total from the current step on).
Nothing is written before these checks pass.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CheckpointError, CheckpointWarning, ConfigError
from .train import checkpoint as ckpt

#: config fields that may differ between the start of a run and its resume
FREE = {
    "train.epochs",
    "train.device",
    "train.threads",
    "train.progress",
    "train.nproc",
    "train.dist_timeout",
    "out",
}


def data_fingerprint(cfg) -> dict[str, str]:
    """A fingerprint of each data source (path, names, sizes and modification times of its
    files)."""
    from .data import BUILTIN
    from .data.cache import fingerprint
    from .data.graph import PREFIX as GRAPH_PREFIX

    out = {}
    for key, spec in (("data.source", cfg.data.source), ("data.eval_source", cfg.data.eval_source)):
        if not spec:
            continue
        if spec in BUILTIN:
            out[key] = f"builtin:{spec}"
            continue
        if spec.startswith(GRAPH_PREFIX):  # graph:EDGES.csv,NODES.csv: both files, in order
            files = [Path(q).expanduser() for q in spec[len(GRAPH_PREFIX) :].split(",")]
            out[key] = ",".join(fingerprint(q, {}) if q.is_file() else "missing" for q in files)
            continue
        p = Path(spec).expanduser()
        if p.is_file() or p.is_dir():
            out[key] = fingerprint(p, {})
    return out


def identity(cfg) -> dict[str, Any]:
    """What a checkpoint records about its run: the config and the data fingerprint."""
    return {"config": cfg.to_dict(), "data": data_fingerprint(cfg)}


@dataclass
class Plan:
    """The checkpoint to resume from and what ``summary.json`` records about this resume."""

    checkpoint: Path
    record: dict = field(default_factory=dict)


def plan(run_dir: Path, cfg, allow_changes: bool = False) -> Plan:
    """Choose the checkpoint and check the run against it (see the module docstring)."""
    skipped: list[tuple[Path, str]] = []
    last = ckpt.latest(run_dir, on_skip=lambda p, r: skipped.append((p, r)))
    if last is None:
        if skipped:
            p, why = skipped[0]
            raise CheckpointError(
                f"'{run_dir}' has no good checkpoint to resume from ({why}); start again "
                f"with --out {run_dir} --overwrite"
            )
        raise CheckpointError(
            f"'{run_dir}' has no checkpoint to resume from (it stopped before its first "
            f"one); start again with --out {run_dir} --overwrite"
        )
    for p, why in skipped:
        warnings.warn(
            f"checkpoint '{p.name}' is damaged and was passed over ({why}); resuming from the "
            f"previous good one, '{last.name}'",
            CheckpointWarning,
            stacklevel=2,
        )
    state = ckpt.load(last)
    prog = state.get("progress") or {}
    epoch, in_epoch, step = (
        int(prog.get("epoch", 0)),
        int(prog.get("step_in_epoch", 0)),
        int(prog.get("step", 0)),
    )
    least = epoch + (1 if in_epoch else 0)
    if cfg.train.epochs < least:
        raise ConfigError(
            f"'{run_dir}' has already trained {epoch} "
            f"epoch(s){' and part of the next' if in_epoch else ''} (checkpoint {last.name}), so "
            f"it cannot stop at {cfg.train.epochs}; --epochs sets the total number of epochs: "
            f"give at least {least}"
        )
    record: dict[str, Any] = {"from": last.name, "step": step, "epoch": epoch}
    if skipped:
        record["passed_over"] = [p.name for p, _ in skipped]
    run = state.get("run") if isinstance(state.get("run"), dict) else None
    if run:
        from .config import former_views, upgrade

        # a checkpoint of an older version: former section and views field names
        before = upgrade(run.get("config") or {})
        if isinstance(before.get("views"), dict):
            before = {**before, "views": former_views(before["views"])}
        epochs_before = (before.get("train") or {}).get("epochs")
        if epochs_before is not None and cfg.train.epochs < epochs_before:
            raise ConfigError(
                f"'{run_dir}' was scheduled for {epochs_before} epochs; --resume can keep or "
                f"extend that schedule, not shorten it to {cfg.train.epochs} (its learning-rate "
                "schedule was already following the longer one): give --epochs "
                f"{epochs_before} or more, or start a new run"
            )
        if epochs_before is not None and epochs_before != cfg.train.epochs:
            record["epochs"] = {"before": epochs_before, "after": cfg.train.epochs}
        changes = _changes(before, cfg.to_dict())
        now = data_fingerprint(cfg)
        changes += [
            f"the data of {k} ('{_get(cfg.to_dict(), k)}')"
            for k, v in (run.get("data") or {}).items()
            if k in now and now[k] != v
        ]
        if changes:
            if not allow_changes:
                raise ConfigError(
                    f"'{run_dir}' changed since its checkpoint {last.name} was written: "
                    f"{'; '.join(changes)}. Restore it, start a new run, or pass --allow-changes "
                    "to continue anyway (recorded in summary.json)"
                )
            record["changed"] = changes
            record["allowed_changes"] = True
    return Plan(last, record)


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(_flat(v, key) if isinstance(v, dict) and v else {key: v})
    return out


def _get(d: dict, key: str) -> Any:
    for part in key.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def _changes(before: dict, now: dict) -> list[str]:
    """The fields that differ; a field the checkpoint's version did not have is a change only when
    it is not at its default now."""
    from .config import Config

    a, b, default = _flat(before), _flat(now), _flat(Config().to_dict())
    out = []
    for k in sorted(set(a) | set(b)):
        if k in FREE or a.get(k) == b.get(k):
            continue
        if k not in a and k in default and b.get(k) == default[k]:
            continue
        out.append(f"config.yaml field '{k}' is {b.get(k)!r} (was {a.get(k)!r})")
    return out
