"""Every recipe in configs/ for the methods of this family loads and validates (method params too)."""

from pathlib import Path

import pytest

from selfsup.api import resolve_config

ROOT = Path(__file__).resolve().parents[2] / "configs"
METHODS = ["simclr", "moco", "mochi", "mocov3", "byol", "simsiam", "directpred", "directcopy", "nnclr",
           "barlow", "vicreg", "gsimclr"]


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("data", ["digits", "cifar10"])
def test_recipe_loads(name, data):
    cfg = resolve_config(ROOT / f"{name}-{data}.yaml")
    assert cfg.method == name


def test_multicrop_fields_validate():
    cfg = resolve_config({"views": {"local_crops": 4, "local_size": 16, "local_scale": [0.1, 0.4]}})
    assert cfg.views.local_crops == 4
    from selfsup.errors import ConfigError
    with pytest.raises(ConfigError, match="views.local_scale"):
        resolve_config({"views": {"local_scale": [0.5, 0.1]}})
