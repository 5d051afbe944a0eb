"""``selfsup compare``: several methods on the same data and budget, one report ranking them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import ConfigError


def compare(
    methods: list[str] | str,
    data: str = "digits",
    epochs: int = 10,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    console=None,
    overrides: list[str] | None = None,
    **options: Any,
) -> tuple[Path, list]:
    """Train each method into ``OUT/<method>`` with the same settings; write ``OUT/report.html``.

    Returns the report path and the runs. kNN is recorded every epoch so the curves can be overlaid.
    """
    from . import api
    from . import methods as method_registry
    from .evaluation import write_run_report

    names = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods)
    names = [m for m in names if m]
    if len(names) < 2:
        raise ConfigError("compare needs at least two methods, e.g. --methods simclr,byol")
    if len(set(names)) != len(names):
        raise ConfigError(f"--methods lists a method twice: {','.join(names)}")
    unknown = [m for m in names if m not in method_registry.REGISTRY]
    if unknown:
        raise ConfigError(
            f"unknown method(s) {', '.join(unknown)}; available: "
            f"{', '.join(sorted(method_registry.REGISTRY))}"
        )
    import time

    root = (
        Path(out)
        if out
        else Path("runs") / f"compare-{Path(data).name or 'data'}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    base_overrides = ["eval.knn_every=1", "eval.report=false"] + list(overrides or [])
    _check_all(names, root, overwrite, base_overrides, data, epochs, options)
    runs = []
    for m in names:
        if console is not None:
            console.print(f"[compare] training {m} ({epochs} epochs on {data})", highlight=False)
        runs.append(
            api.train(
                overrides=base_overrides,
                overwrite=overwrite,
                console=console,
                method=m,
                data=data,
                epochs=epochs,
                out=str(root / m),
                **options,
            )
        )
    path = write_run_report([r.dir for r in runs], root / "report.html")
    return path, runs


def _check_all(
    names, root: Path, overwrite: bool, overrides: list[str], data: str, epochs: int, options: dict
) -> None:
    """Every method's config, run directory and data checks, before the first method trains: a
    mistake in the last method must not cost the training of the first ones."""
    from . import validate as validation
    from .modalities import modality_of
    from .parts import load_data
    from .resolve import protected_paths, resolve_config
    from .rundir import check_new

    cfgs = [
        resolve_config(
            None, overrides, method=m, data=data, epochs=epochs, out=str(root / m), **options
        )
        for m in names
    ]
    for cfg in cfgs:
        check_new(Path(cfg.out), overwrite, protected_paths(cfg))
    splits, bank, _ = load_data(cfgs[0])
    for cfg in cfgs:
        validation.check_data(cfg, splits.train, bank, modality_of(splits.train))
