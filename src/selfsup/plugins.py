"""Plug-ins: code outside the package that registers modalities, sources, view sections,
backbones or methods through the public registries (see ``docs/architecture.md``, "Adding a
modality", and ``examples/custom_modality.py``).

A plug-in is a Python file (``--plugin path/to/file.py``), an importable module
(``--plugin my_package.selfsup_points``) or an installed package's entry point in the group
``selfsup.plugins`` (loaded by every command). A run records its plug-ins in ``config.yaml``
(``plugins:``), so ``selfsup eval`` and ``--resume`` load them again.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from .errors import ConfigError

ENTRY_POINT_GROUP = "selfsup.plugins"
_loaded: set[str] = set()


def load(spec: str) -> None:
    """Import the plug-in ``spec`` (a ``.py`` file or a module name) once per process."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"a plug-in is a .py file or a module name, got {spec!r}")
    key = str(Path(spec).expanduser().resolve()) if spec.endswith(".py") else spec
    if key in _loaded:
        return
    if spec.endswith(".py"):
        path = Path(key)
        if not path.is_file():
            raise ConfigError(f"plug-in file '{spec}' does not exist; give the path of a .py file")
        name = f"selfsup_plugin_{path.stem}_{abs(hash(key)) % 10**8}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"plug-in file '{spec}' cannot be imported as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:
            sys.modules.pop(name, None)
            raise ConfigError(
                f"plug-in '{spec}' failed while loading: {type(err).__name__}: {err}"
            ) from err
    else:
        try:
            importlib.import_module(spec)
        except ImportError as err:
            raise ConfigError(
                f"plug-in module '{spec}' cannot be imported ({err}); give an importable module "
                "name or the path of a .py file"
            ) from None
    _loaded.add(key)


def load_all(specs: list[str] | tuple[str, ...] = ()) -> None:
    """The installed entry points of ``selfsup.plugins``, then ``specs``."""
    load_entry_points()
    for spec in specs:
        load(spec)


def load_entry_points() -> None:
    """Import every installed package's ``selfsup.plugins`` entry point once."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        key = f"entry-point:{ep.value}"
        if key in _loaded:
            continue
        try:
            ep.load()
        except Exception as err:
            raise ConfigError(
                f"the installed selfsup plug-in '{ep.name}' ({ep.value}) failed to load: "
                f"{type(err).__name__}: {err}; fix or uninstall it"
            ) from err
        _loaded.add(key)
