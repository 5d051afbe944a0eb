"""Every recipe in configs/ for the methods of this family loads and validates (method params
too)."""

from pathlib import Path

import pytest

from selfsup.resolve import resolve_config

ROOT = Path(__file__).resolve().parents[2] / "configs"
METHODS = [
    "simclr",
    "moco",
    "mochi",
    "mocov3",
    "byol",
    "simsiam",
    "directpred",
    "directcopy",
    "nnclr",
    "barlow",
    "vicreg",
    "gsimclr",
]


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("data", ["digits", "cifar10"])
def test_recipe_loads(name, data):
    cfg = resolve_config(ROOT / f"{name}-{data}.yaml")
    assert cfg.method == name


def test_multicrop_fields_validate():
    cfg = resolve_config({"views": {"local_crops": 4, "local_size": 16, "local_scale": [0.1, 0.4]}})
    assert cfg.views.local_crops == 4
    from selfsup.errors import ConfigError

    with pytest.raises(ConfigError, match=r"views\.image\.local_scale"):
        resolve_config({"views": {"local_scale": [0.5, 0.1]}})


def test_the_cpu_hour_recipe_runs_end_to_end(tmp_path):
    """configs/simclr-cifar10-cpu-hour.yaml (BENCHMARKS.md's one-hour run) on 64 random 32 px
    images: 24 px views with two 16 px local crops, the encoder evaluated and saved at 32 px."""
    import json

    import numpy as np

    import selfsup

    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "c.npz",
        x=rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8),
        y=np.arange(64) % 4,
    )
    cfg = resolve_config(
        ROOT / "simclr-cifar10-cpu-hour.yaml",
        [
            "train.epochs=1",
            "train.batch_size=32",
            "eval.protocols=[knn]",
            "eval.knn_k=5",
            "eval.baselines=false",
            "eval.report=false",
            "train.progress=none",
        ],
        data=str(tmp_path / "c.npz"),
        out=str(tmp_path / "run"),
    )
    assert (cfg.views.size, cfg.views.eval_size, cfg.views.local_crops) == (24, 32, 2)
    run = selfsup.train(cfg)
    enc = selfsup.load_encoder(run.dir)
    assert enc.image_size == 32 and enc.meta["view_spec"]["size"] == 24
    s = json.loads((run.dir / "summary.json").read_text())
    assert 0 <= s["eval"]["knn_top1"] <= 1


@pytest.mark.parametrize("path", sorted(ROOT.glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_in_configs_validates(path):
    """Every recipe shipped in configs/ resolves (its method's params too); its data source is
    not read."""
    cfg = resolve_config(path)
    assert cfg.method == path.name.split("-")[0]


@pytest.mark.parametrize("name", ["dino", "swav", "ibot"])
def test_the_distillation_cifar_recipes_share_the_simclr_hour_budget(name):
    """BENCHMARKS.md compares these with the one-hour SimCLR recipe at equal cost: everything but
    the method's own fields (and ibot's ViT and its optimiser) is the SimCLR recipe's."""
    ref = resolve_config(ROOT / "simclr-cifar10-cpu-hour.yaml")
    cfg = resolve_config(ROOT / f"{name}-cifar10-cpu-hour.yaml")
    assert cfg.views == ref.views and cfg.data == ref.data
    assert cfg.train == ref.train and cfg.eval == ref.eval
    if name != "ibot":
        assert cfg.model == ref.model and cfg.optim == ref.optim
    else:
        assert cfg.model.backbone == "vit_tiny"
