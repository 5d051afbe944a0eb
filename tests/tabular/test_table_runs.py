"""Table runs end to end: the table methods learn, every single-modality method trains on tables,
categorical encoding survives a saved encoder, anomaly detection for any modality, refusals."""

import json

import numpy as np
import pytest
import torch

import selfsup
from selfsup import methods
from selfsup.api import load_encoder
from selfsup.cli import main
from selfsup.data import load_source
from selfsup.data.table import encode_table
from selfsup.methods.base import Batch
from selfsup.parts import assemble
from selfsup.resolve import resolve_config

FAST = [
    "eval.report=false",
    "eval.diagnostics=false",
    "train.progress=none",
    "model.width=0.25",
    "model.proj_hidden=32",
    "model.proj_dim=16",
]


def mixed_csv(path, n=60):
    rng = np.random.default_rng(0)
    lines = ["a,b,shade,kind"]
    for i in range(n):
        k = i % 2
        lines.append(
            f"{rng.normal(3 * k, 1):.4f},{rng.normal(-k, 1):.4f},"
            f"{['dark', 'light', 'mid'][(i + k) % 3]},"
            f"{'cat' if k else 'dog'}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "name, backbone, width",
    [
        ("clan", "residual_mlp", 0.125),  # CLAN's own network (the default), 128 wide here
        ("clan", "mlp", 0.5),
        ("scarf", "auto", 0.5),
        ("vime", "auto", 0.5),
    ],
)
def test_table_methods_lower_their_loss(name, backbone, width):
    cfg = resolve_config(
        method=name,
        data="wine",
        batch_size=32,
        overrides=FAST + [f"model.width={width}", f"model.backbone={backbone}"],
    )
    tr = load_source("wine").train
    parts = assemble(cfg, tr, torch.device("cpu"))
    opt = torch.optim.Adam(parts.method.parameters(), lr=1e-3)
    torch.manual_seed(0)
    x = parts.x[:32]
    losses = []
    for _ in range(30):
        torch.manual_seed(1)  # the same views each step: the loss on them must fall
        loss, _ = parts.method(parts.views(x), Batch(x, torch.arange(32)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_clan_defaults_are_the_authors_current_script():
    """jackwilkie/CLAN train_clan.py (680ab61; last changed in b3542f2): residual 4 x 1024 MLP with
    a 64-d projection, AdamW 1e-4 with weight decay 0, warm-up for a tenth of 200 epochs then
    cosine to 1e-6, batch 8,192 (here every row of a smaller table), U(-1.7, 1.7) resampling."""
    from selfsup.parts import with_defaults
    from selfsup.views.tabular import TABLE_PRESETS

    tr = load_source("wine").train
    cfg = with_defaults(resolve_config(method="clan", data="wine"), tr)
    assert cfg.model.backbone == "residual_mlp"
    o = cfg.optim
    assert (o.name, o.lr, o.weight_decay, o.schedule) == ("adamw", 1e-4, 0.0, "cosine")
    assert (o.warmup_epochs, o.min_lr_ratio, cfg.train.epochs) == (20.0, 0.01, 200)
    assert cfg.train.batch_size == len(tr)
    p = methods.validate_params("clan", {})
    assert (p.margin, p.squared, p.alpha, p.replacement) == (0.5, False, 0.5, True)
    assert (TABLE_PRESETS["clan"].p, TABLE_PRESETS["clan"].uniform) == (0.1, 1.7)
    # what the user sets wins
    mine = with_defaults(
        resolve_config(method="clan", data="wine", batch_size=16, overrides=["model.backbone=mlp"]),
        tr,
    )
    assert (mine.model.backbone, mine.train.batch_size) == ("mlp", 16)


def test_residual_mlp_is_clans_network():
    """x -> [skip(h) + ReLU(W h + b)] x 4 (skip linear in the first block, identity after) ->
    linear projection to 64, the output; written out here in float64."""
    from selfsup.models.tabular import build_table_backbone

    torch.manual_seed(0)
    net = build_table_backbone("residual_mlp", [0, 0, 3], width=1 / 64).double()
    assert net.out_dim == 64
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -1.0]], dtype=torch.float64)
    h = torch.cat([x[:, :2], torch.tensor([[0, 0, 1.0], [0, 0, 0]], dtype=torch.float64)], 1)
    for i, blk in enumerate(net.blocks):
        lin = blk.linear
        skip = h @ blk.skip.weight.t() + blk.skip.bias if i == 0 else h
        h = skip + torch.relu(h @ lin.weight.t() + lin.bias)
    ref = h @ net.proj.weight.t() + net.proj.bias
    assert len(net.blocks) == 4 and net.blocks[0].linear.out_features == 16
    assert torch.allclose(net(x), ref, atol=1e-12)


def test_clan_draws_rows_with_replacement():
    cfg = resolve_config(method="clan", data="wine", batch_size=8, overrides=FAST)
    parts = assemble(cfg, load_source("wine").train, torch.device("cpu"))
    order = parts.method.batch_order(100, 8, torch.Generator().manual_seed(0))
    assert order is not None and len(order) == 100 and len(set(order.tolist())) < 100
    cfg = resolve_config(method="clan", data="wine", overrides=FAST + ["params.replacement=false"])
    parts = assemble(cfg, load_source("wine").train, torch.device("cpu"))
    assert parts.method.batch_order(100, 8, torch.Generator().manual_seed(0)) is None


# not here: what a method declares it needs and a table lacks (two modalities, edges, a backbone
# capability such as ViT tokens), TS2Vec (per-time-step series encoders) and OBoW (visual words
# from local features: a table row has none, refused in one line)
SINGLE = [
    n
    for n, cls in methods.REGISTRY.items()
    if n not in ("ts2vec", "obow")
    and cls.needs.towers == 1
    and not cls.needs.edges
    and cls.needs.encoder is None
]  # graph methods: tests/graph


@pytest.mark.parametrize("name", SINGLE)
def test_single_modality_methods_train_on_tables(name, tmp_path):
    run = selfsup.train(
        method=name,
        data="wine",
        epochs=1,
        batch_size=32,
        out=str(tmp_path / "r"),
        overrides=FAST + ["eval.baselines=false"],
    )
    assert np.isfinite(run.summary["eval"]["knn_top1"])


@pytest.mark.parametrize("backbone", ["mlp", "ft_transformer"])
def test_categorical_encoding_round_trips_through_a_saved_encoder(tmp_path, backbone):
    csv = mixed_csv(tmp_path / "m.csv")
    run = selfsup.train(
        method="scarf",
        data=str(csv),
        epochs=2,
        batch_size=16,
        out=str(tmp_path / "r"),
        backbone=backbone,
        overrides=FAST + ["data.label_column=kind", "eval.baselines=false"],
    )
    enc = load_encoder(run.dir)
    splits = load_source(str(csv), label_column="kind")
    assert enc.meta["categories"] == {"shade": ["dark", "light", "mid"]}
    assert enc.meta["columns"] == ["a", "b", "shade"]
    # the same rows, read again from the file with the saved vocabulary, give the same codes and
    # features
    x_file = encode_table(csv, enc.meta)
    full = np.concatenate([splits.train.x, splits.test.x])
    assert sorted(map(tuple, x_file.tolist())) == sorted(map(tuple, full.tolist()))
    with torch.no_grad():
        f_mem = run_encoder(run)(torch.from_numpy(splits.test.x))
        f_load = enc(
            torch.from_numpy(
                encode_table(
                    {
                        "a": [f"{v:.4f}" for v in splits.test.x[:, 0]],
                        "b": [f"{v:.4f}" for v in splits.test.x[:, 1]],
                        "shade": [
                            enc.meta["categories"]["shade"][int(c)] for c in splits.test.x[:, 2]
                        ],
                    },
                    enc.meta,
                )
            )
        )
    assert torch.allclose(f_mem, f_load, atol=1e-4)
    # a category the training rows never had is encoded as unknown (-1), not as another category
    assert encode_table({"a": ["0"], "b": ["0"], "shade": ["neon"]}, enc.meta)[0, 2] == -1


def run_encoder(run):
    return run.encoder


def test_anomaly_job_on_a_table(tmp_path):
    run = selfsup.train(
        method="clan",
        data="wine",
        epochs=2,
        batch_size=16,
        out=str(tmp_path / "r"),
        overrides=FAST + ["data.normal_label=class_1"],
    )
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["anomaly"]["score"] == "method" and s["anomaly"]["train_normal"] == len(
        load_source("wine").train.y[load_source("wine").train.y == 1]
    )
    for k in (
        "anomaly_auroc",
        "anomaly_auprc",
        "anomaly_knn_auroc",
        "anomaly_knn_l2_auroc",
        "anomaly_method_auroc",
    ):
        assert 0 <= s["eval"][k] <= 1
    assert set(s["baselines"]) >= {
        "isolation_forest",
        "lof",
        "distance_to_mean",
        "random_init",
        "raw_knn",
        "raw_knn_l2",
    }
    ev = selfsup.evaluate(run.dir, write=False)
    assert ev["eval"]["anomaly_auroc"] == pytest.approx(s["eval"]["anomaly_auroc"], abs=1e-6)
    # the score goes through the authors' 64-d projection: the saved encoder's output
    enc = load_encoder(run.dir)
    assert enc.meta["backbone"] == "residual_mlp"
    assert enc(torch.from_numpy(load_source("wine").train.x[:3])).shape == (3, 64)


def test_anomaly_job_on_images(tmp_path):
    run = selfsup.train(
        method="simclr",
        data="digits",
        epochs=1,
        batch_size=32,
        backbone="convnet_small",
        out=str(tmp_path / "r"),
        overrides=FAST + ["data.normal_label=3", "data.limit=400"],
    )
    assert (
        run.summary["anomaly"]["score"] == "knn" and 0 <= run.summary["eval"]["anomaly_auroc"] <= 1
    )
    assert "isolation_forest" in run.summary["baselines"]


def one_line_error(capsys, argv, *needles):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    for n in needles:
        assert n in err[0], (n, err[0])


def test_refusals_one_line_nothing_written(capsys, tmp_path):
    csv = mixed_csv(tmp_path / "m.csv")
    out = tmp_path / "r"
    base = ["train", "--method", "clan", "--epochs", "1", "--batch-size", "8", "--out", str(out)]
    one_line_error(
        capsys,
        base + ["--data", str(csv), "--label-column", "species"],
        "label column 'species'",
        "m.csv",
    )
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(
        csv.read_text().replace("\n", "\n1.0,2.0\n", 3).replace("\n1.0,2.0\n", "\n", 2)
    )
    one_line_error(
        capsys,
        base + ["--data", str(ragged), "--label-column", "kind"],
        "ragged.csv",
        "row 3",
        "fields but the header has 4",
    )
    one_line_error(
        capsys,
        base + ["--data", str(csv), "--label-column", "kind", "--normal-label", "cow"],
        "--normal-label 'cow' matches no row",
        "cat, dog",
    )
    one_line_error(capsys, base + ["--data", "wine", "--normal-label", "7"], "--normal-label '7'")
    assert not out.exists()
    code = main(
        base
        + [
            "--data",
            str(ragged),
            "--label-column",
            "kind",
            "--skip-corrupt",
            "--set",
            FAST[0],
            "--set",
            FAST[1],
            "--set",
            "eval.baselines=false",
        ]
    )
    assert code == 0 and json.loads((out / "summary.json").read_text())["skipped_corrupt"] == 1


def test_cli_anomaly_run_prints_its_table(capsys, tmp_path):
    csv = mixed_csv(tmp_path / "m.csv")
    code = main(
        [
            "train",
            "--method",
            "clan",
            "--data",
            str(csv),
            "--label-column",
            "kind",
            "--normal-label",
            "dog",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--out",
            str(tmp_path / "r"),
        ]
        + sum((["--set", f] for f in FAST), [])
    )
    out = capsys.readouterr().out
    assert code == 0 and "run directory" in out
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert (
        s["anomaly"]["normal_label"] == "dog"
        and s["eval_data"]["bank_size"] == s["anomaly"]["train_normal"]
    )
