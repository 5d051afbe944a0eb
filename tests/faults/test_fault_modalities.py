"""Issue 26: every modality as safe as images. Bad files, odd shapes and misuse on series, pairs,
tables, graphs and the masked branch end in one ``error:`` line (exit 2), with no traceback, no run
directory, and no file changed (the folder holding the data and the out path is compared file for
file). Each case goes through the CLI (``selfsup train``); the loader-level cases below check what
a message says and what a source decodes to."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from selfsup import cli
from selfsup.data import load_source
from selfsup.errors import ConfigError, DataError
from selfsup.eval import protocols as EP

TINY = [
    "--set",
    "model.proj_hidden=32",
    "--set",
    "model.proj_dim=16",
    "--batch-size",
    "8",
    "--epochs",
    "1",
    "--set",
    "train.progress=none",
    "--set",
    "eval.report=false",
    "--set",
    "eval.diagnostics=false",
    "--set",
    "eval.baselines=false",
]
RNG = np.random.default_rng(0)
Y24 = np.arange(24) % 2


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (the decode cache aside) with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "_cache" not in p.relative_to(root).parts
    }


def series(*shape) -> np.ndarray:
    return RNG.normal(size=shape).astype(np.float32)


def npz(**arrays):
    def make(tmp: Path) -> str:
        path = tmp / "data.npz"
        np.savez(path, **arrays)
        return str(path)

    return make


def text(name: str, body: str | bytes):
    def make(tmp: Path) -> str:
        path = tmp / name
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body, encoding="utf-8")
        return str(path)

    return make


def graph_csv(edges: str, nodes: str):
    def make(tmp: Path) -> str:
        (tmp / "edges.csv").write_text(edges, encoding="utf-8")
        (tmp / "nodes.csv").write_text(nodes, encoding="utf-8")
        return f"graph:{tmp / 'edges.csv'},{tmp / 'nodes.csv'}"

    return make


def _with(a: np.ndarray, idx, value) -> np.ndarray:
    a = a.copy()
    a[idx] = value
    return a


def rows(n: int, fmt) -> str:
    return "".join(fmt(i) for i in range(n))


E4 = np.array([[0, 1, 1, 2], [1, 0, 2, 1]])
OVERLAP_TRAIN = np.arange(30) < 20
OVERLAP_TEST = np.arange(30) >= 10
NODES = "id,f1,f2,label\n" + rows(20, lambda i: f"{i},{i},{i * 2},{i % 2}\n")
EDGES = "s,t\n" + rows(20, lambda i: f"{i},{(i + 1) % 20}\n")

#: modality -> case -> (make data, extra options, words the one line must hold)
CASES: dict[str, dict[str, tuple]] = {
    "image": {
        "zero_by_zero": (npz(x=np.zeros((40, 0, 0), np.uint8), y=np.zeros(40, int)), [], ["0x0"]),
        "zero_width": (npz(x=np.zeros((40, 8, 0), np.uint8)), [], ["8x0"]),
        "complex_dtype": (npz(x=np.zeros((24, 8, 8), np.complex64)), [], ["complex64"]),
        "two_channels": (npz(x=np.zeros((24, 8, 8, 2), np.uint8)), [], ["C 1 or 3"]),
        "float_nan": (npz(x=np.full((24, 8, 8), np.nan)), [], ["NaN"]),
        "test_split_of_other_channels": (
            npz(
                x=np.zeros((24, 8, 8), np.uint8),
                y=Y24,
                x_test=np.zeros((8, 8, 8, 3), np.uint8),
                y_test=np.arange(8) % 2,
            ),
            [],
            ["x_test", "3 channel(s)"],
        ),
        "renamed_npy": (text("data.npz", b"\x93NUMPY" + b"\0" * 40), [], ["not a readable .npz"]),
    },
    "timeseries": {
        "no_samples": (npz(x=np.zeros((0, 2, 16), np.float32)), [], ["empty"]),
        "no_steps": (npz(x=np.zeros((24, 2, 0), np.float32), y=Y24), [], ["empty"]),
        "no_channels": (npz(x=np.zeros((24, 0, 16), np.float32), y=Y24), [], ["empty"]),
        "inf": (npz(x=_with(series(24, 2, 16), (3, 1, 4), np.inf), y=Y24), [], ["infinite"]),
        "beyond_float32": (
            npz(x=_with(series(24, 2, 16).astype(np.float64), (3, 1, 4), 1e300), y=Y24),
            [],
            ["32-bit float range"],
        ),
        "all_nan_series": (
            npz(x=_with(series(24, 2, 16), 5, np.nan), y=Y24),
            [],
            ["all-NaN series"],
        ),
        "labels_2d": (npz(x=series(24, 2, 16), y=np.zeros((24, 2))), [], ["'y'", "(24, 2)"]),
        "test_of_another_shape": (
            npz(x=series(24, 2, 16), y=Y24, x_test=series(8, 16), y_test=np.arange(8) % 2),
            [],
            ["x_test", "channel"],
        ),
        "one_sample_per_class": (  # needs the eval_splits check in data/__init__.py
            npz(x=series(24, 2, 16), y=np.arange(24)),
            [],
            ["too few to hold out a 20% evaluation split"],
        ),
        "label_out_of_range": (npz(x=series(24, 2, 16), y=Y24 * 2**40), [], ["out of range"]),
        "garbage_ts": (text("data.ts", os.urandom(300)), [], ["cannot read"]),
        "empty_ts": (text("data.ts", ""), [], ["@data"]),
        "method_for_images": (
            npz(x=series(24, 2, 16), y=Y24),
            ["--method", "graphmae"],
            ["graphmae"],
        ),
    },
    "table": {
        "header_only": (text("t.csv", "a,b,label\n"), [], ["no rows"]),
        "semicolons": (
            text("t.csv", "a;b;label\n" + rows(40, lambda i: f"{i};{i * 2};{i % 2}\n")),
            [],
            ["';'", "comma-separated"],
        ),
        "finite_beyond_float32": (
            text("t.csv", "a,b\n" + rows(40, lambda i: f"{1e308 if i == 7 else i},{i}\n")),
            [],
            ["row 8", "32-bit float range"],
        ),
        "too_few_rows_per_class": (
            text("t.csv", "a,b,label\n" + rows(40, lambda i: f"{i},{i},c{i}\n")),
            ["--label-column", "label"],
            ["too few", "test split"],
        ),
        "garbage": (text("t.csv", bytes(range(256)) * 2), [], ["UTF-8"]),
        "ragged_row": (
            text("t.csv", "a,b\n" + rows(40, lambda i: "1,2,3\n" if i == 5 else f"{i},{i}\n")),
            [],
            ["row 6", "fields"],
        ),
        "npz_no_features": (npz(x=np.zeros((24, 0), np.float32), y=Y24), [], ["empty"]),
        "npz_nan": (npz(x=_with(series(24, 4), (2, 2), np.nan), y=Y24), [], ["NaN"]),
        "npz_beyond_float32": (
            npz(x=_with(series(24, 4).astype(np.float64), (2, 2), -1e200), y=Y24),
            [],
            ["row 3, column 3", "32-bit float range"],
        ),
        "npz_text": (npz(x=np.array([["a", "b"]] * 24), y=Y24), [], ["dtype <U1"]),
    },
    "graph": {
        "two_nodes": (
            npz(x=series(2, 4), edge_index=np.array([[0, 1], [1, 0]]), y=np.array([0, 1])),
            ["--method", "grace"],
            ["too few to hold out"],
        ),
        "overlapping_masks": (
            npz(
                x=series(30, 4),
                edge_index=E4,
                y=np.arange(30) % 2,
                train_mask=OVERLAP_TRAIN,
                test_mask=OVERLAP_TEST,
            ),
            ["--method", "grace"],
            ["share 10", "never both"],
        ),
        "fractional_edge": (
            npz(x=series(30, 4), edge_index=np.array([[0.5, 1], [1, 0]]), y=np.arange(30) % 2),
            ["--method", "grace"],
            ["edge_index must be integers"],
        ),
        "edges_transposed": (
            npz(x=series(30, 4), edge_index=np.array([[0, 1], [1, 2], [2, 3]])),
            ["--method", "grace"],
            ["(2, E)"],
        ),
        "edge_past_the_nodes": (
            npz(x=series(30, 4), edge_index=np.array([[0, 1], [1, 99]])),
            ["--method", "grace"],
            ["points past the 30 nodes"],
        ),
        "no_features": (
            npz(x=np.zeros((30, 0), np.float32), edge_index=E4),
            ["--method", "grace"],
            ["empty"],
        ),
        "nan_features": (
            npz(x=np.full((30, 4), np.nan, np.float32), edge_index=E4),
            ["--method", "grace"],
            ["NaN"],
        ),
        "scalar_edge_index": (
            npz(x=series(30, 4), edge_index=np.array(3)),
            ["--method", "grace"],
            ["(2, E)"],
        ),
        "edge_list_unknown_node": (
            graph_csv("s,t\n0,1\n1,zz\n", NODES),
            ["--label-column", "label", "--method", "grace"],
            ["'zz'"],
        ),
        "edge_list_no_edges": (
            graph_csv("s,t\n", NODES),
            ["--label-column", "label", "--method", "grace"],
            ["data row"],
        ),
        "edge_list_one_file": (
            lambda t: graph_csv(EDGES, NODES)(t).split(",")[0],
            ["--method", "grace"],
            ["graph:EDGES.csv,NODES.csv"],
        ),
        "method_for_images_on_a_graph": (
            npz(x=series(30, 4), edge_index=E4, y=np.arange(30) % 2),
            ["--method", "mae"],
            ["mae"],
        ),
    },
    "paired": {
        "scalar_member": (
            npz(x_a=np.array(1.0), x_b=series(24, 3, 16)),
            ["--method", "clip"],
            ["()"],
        ),
        "zero_by_zero_images": (
            npz(x_a=series(24, 2, 16), x_b=np.zeros((24, 0, 0), np.uint8), y=Y24),
            ["--method", "clip"],
            ["0x0"],
        ),
        "all_nan_series": (
            npz(x_a=_with(series(24, 2, 16), 4, np.nan), x_b=series(24, 3, 16), y=Y24),
            ["--method", "clip"],
            ["all-NaN"],
        ),
        "unequal_samples": (
            npz(x_a=series(24, 2, 16), x_b=series(20, 3, 16), y=Y24),
            ["--method", "clip"],
            ["24", "20"],
        ),
        "inf": (
            npz(x_a=series(24, 2, 16) * np.inf, x_b=series(24, 3, 16), y=Y24),
            ["--method", "clip"],
            ["infinite"],
        ),
        "empty": (
            npz(x_a=series(0, 2, 16), x_b=series(0, 3, 16)),
            ["--method", "clip"],
            ["empty"],
        ),
        "table_member": (
            npz(x_a=series(24, 4), x_b=series(24, 3, 16), y=Y24),
            ["--method", "clip"],
            ["x_a", "(24, 4)"],
        ),
        "labels_2d": (
            npz(x_a=series(24, 2, 16), x_b=series(24, 3, 16), y=np.zeros((24, 1))),
            ["--method", "clip"],
            ["'y'"],
        ),
        "labels_out_of_range": (
            npz(x_a=series(24, 2, 16), x_b=series(24, 3, 16), y=np.arange(24) * 10**9),
            ["--method", "clip"],
            ["out of range"],
        ),
        "test_of_other_length": (
            npz(
                x_a=series(24, 2, 16),
                x_b=series(24, 3, 16),
                y=Y24,
                x_a_test=series(8, 2, 16),
                x_b_test=series(7, 3, 16),
                y_test=np.arange(8) % 2,
            ),
            ["--method", "clip"],
            ["x_a_test", "x_b_test"],
        ),
        "channels_overlap": (
            npz(x=series(24, 6, 16), y=Y24),
            ["--pair-channels", "0,1:1,2", "--method", "clip"],
            ["--pair-channels"],
        ),
        "channel_out_of_range": (
            npz(x=series(24, 6, 16), y=Y24),
            ["--pair-channels", "0,1:7", "--method", "clip"],
            ["--pair-channels"],
        ),
        "channels_one_side_empty": (
            npz(x=series(24, 6, 16), y=Y24),
            ["--pair-channels", "0,1:", "--method", "clip"],
            ["empty"],
        ),
    },
}
FLAT = [(m, c) for m in CASES for c in sorted(CASES[m])]


def _one_line(code: int, err: str, needles) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err and "internal error" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize("modality,case", FLAT, ids=[f"{m}-{c}" for m, c in FLAT])
def test_bad_input_is_one_line_and_leaves_nothing(modality, case, tmp_path, capsys):
    make, extra, needles = CASES[modality][case]
    data = make(tmp_path)
    out = tmp_path / "runs" / "r1"
    before = tree(tmp_path)
    code = cli.main(["train", "--data", data, "--out", str(out), *TINY, *extra])
    _one_line(code, capsys.readouterr().err, needles)
    assert not out.exists() and not out.parent.exists()
    assert tree(tmp_path) == before


# -- what the loaders decode (no training) ------------------------------------------------------
def test_an_empty_graph_label_is_an_unlabelled_node_not_a_class(tmp_path):
    nodes = "id,f1,f2,label\n" + rows(
        20, lambda i: f"{i},{i},{i * 2},{'' if i % 3 == 0 else i % 2}\n"
    )
    spec = graph_csv(EDGES, nodes)(tmp_path)
    s = load_source(spec, label_column="label")
    assert s.train.classes == ["0", "1"]
    assert (s.train.node_y[::3] == -1).all() and (s.train.node_y >= -1).all()


def test_a_bom_is_not_part_of_the_first_column(tmp_path):
    path = tmp_path / "bom.csv"
    body = "a,b,label\n" + rows(40, lambda i: f"{i % 4},{i * 2},{i % 2}\n")
    path.write_text(body, encoding="utf-8-sig")
    s = load_source(str(path), label_column="label")
    assert s.train.columns == ["a", "b"]  # not '\ufeffa'
    with pytest.raises(DataError, match="label column 'nosuch'"):
        load_source(str(path), label_column="nosuch")
    s = load_source(str(path), label_column="a")  # the first column is found by its name
    assert s.train.columns == ["b", "label"]


def test_finite_beyond_float32_is_skipped_by_skip_corrupt(tmp_path):
    path = Path(
        text("t.csv", "a,b\n" + rows(40, lambda i: f"{1e308 if i == 7 else i},{i}\n"))(tmp_path)
    )
    with pytest.warns(Warning, match="row 8"):
        s = load_source(str(path), skip_corrupt=True)
    assert len(s.train) == 39 and np.isfinite(s.train.x).all()


@pytest.mark.parametrize("names", ["", ",", " , ", []])
def test_an_empty_protocol_list_is_refused(names):
    with pytest.raises(ConfigError, match="no evaluation protocol given"):
        EP.parse(names)


def test_an_unknown_protocol_is_named():
    with pytest.raises(ConfigError, match="'nosuch'"):
        EP.parse("knn,nosuch")


@pytest.mark.parametrize("given", ["", ",", "nosuch"])
def test_eval_refuses_an_empty_or_unknown_protocol_before_loading(given, tmp_path, capsys):
    run = tmp_path / "not-even-a-run"  # the protocol list is read before the run is
    code = cli.main(["eval", str(run), "--protocol", given])
    _one_line(code, capsys.readouterr().err, ["protocol"])
    assert not run.exists()


def test_graph_loader_refuses_leaking_masks_in_the_api():
    from selfsup.data.graph import graph_splits

    with pytest.raises(DataError, match="never both"):
        graph_splits(
            series(30, 4),
            E4,
            np.arange(30) % 2,
            {"train_mask": OVERLAP_TRAIN, "test_mask": OVERLAP_TEST},
        )


def test_an_edge_list_graph_is_fingerprinted_for_resume(tmp_path):
    """A resume of a ``graph:EDGES.csv,NODES.csv`` run compares both files (it used to record no
    fingerprint, so a resume continued on changed files)."""
    from selfsup.config import validate
    from selfsup.resume import data_fingerprint

    spec = graph_csv(EDGES, NODES)(tmp_path)
    cfg = validate({"data": {"source": spec}})
    before = data_fingerprint(cfg)
    assert "data.source" in before
    (tmp_path / "nodes.csv").write_text(NODES + "20,1,2,0\n", encoding="utf-8")
    assert data_fingerprint(cfg) != before


# -- classes found by the reliability sweep and fixed in their owners' files -----------------------


@pytest.mark.parametrize("scale", [0.0, 1e-30])
def test_coinciding_embeddings_do_not_crash_the_report_projection(scale):
    """Constant or collapsed embeddings made scikit-learn's t-SNE crash the process (SIGSEGV)."""
    from selfsup.report import _project_2d

    x = np.ones((80, 16), np.float32) + scale * np.random.RandomState(0).randn(80, 16)
    xy, how = _project_2d(x.astype(np.float32), 0)
    assert xy.shape == (80, 2) and "coincide" in how


def test_svm_ends_on_duplicate_features_with_different_labels():
    """A hard margin (C=inf, banks under 50 samples) never converged on such a bank: capped now."""
    import torch

    from selfsup.eval.svm import svm_accuracy

    f, y = torch.ones(24, 8), torch.arange(24) % 2
    assert svm_accuracy(f, y, f, y)["svm_top1"] == pytest.approx(0.5)


def test_series_statistics_do_not_overflow_near_float32_max():
    """Per-channel mean and standard deviation of float32 values near 1e38 are taken in float64."""
    from selfsup import methods, resolve
    from selfsup.data import SeriesData
    from selfsup.modalities import get

    rng = np.random.RandomState(0)
    x = (rng.randn(32, 2, 16) * 1e37).astype(np.float32)
    x[:, 0] += 1e38
    cfg = resolve.resolve_config(data="s.npz")
    mod = get("timeseries")
    _, meta = mod.input_meta(cfg, SeriesData(x=x, name="s"), methods.requirements("simclr", {}))
    assert np.all(np.isfinite(meta["std"])) and np.all(np.isfinite(meta["mean"]))
    assert meta["std"][0] == pytest.approx(float(np.std(x[:, 0].astype(np.float64))), rel=1e-6)


def test_a_method_that_needs_its_own_views_is_refused_before_the_run(tmp_path, capsys):
    """VIME on images used to fail in its loss after the run directory was made."""
    out = tmp_path / "r"
    code = cli.main(["train", "--method", "vime", "--out", str(out), *TINY])
    _one_line(code, capsys.readouterr().err, ["'vime'", "views"])
    assert not out.exists()


@pytest.mark.parametrize("given", [[], ["knn", "nope"]])
def test_api_evaluate_refuses_an_empty_or_unknown_protocol_list(given, tmp_path):
    """``api.evaluate(protocols=[])`` used to fall back to the run's defaults."""
    from selfsup import api

    with pytest.raises(ConfigError, match="protocol"):
        api.evaluate(tmp_path / "no-run", protocols=given)


def test_a_damaged_encoder_file_is_refused_by_its_checksum(tmp_path, capsys):
    """A corrupted ``encoder.safetensors`` used to be evaluated (no checksum, unlike
    checkpoints)."""
    from selfsup import load_encoder
    from selfsup.errors import CheckpointError

    out = tmp_path / "r"
    assert cli.main(["train", "--out", str(out), *TINY, "--set", "eval.baselines=false"]) == 0
    load_encoder(out)  # intact
    f = out / "encoder.safetensors"
    raw = bytearray(f.read_bytes())
    raw[-5] ^= 0xFF  # a byte of the last tensor's data
    f.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum"):
        load_encoder(out)
    assert cli.main(["eval", str(out)]) == 2
    assert "checksum" in capsys.readouterr().err


def test_a_single_training_row_is_refused_with_true_advice(tmp_path, capsys):
    """One row used to get "use --batch-size 2 or less", which cannot work either."""
    p = tmp_path / "one.csv"
    p.write_text("a,b\n1,2\n")
    out = tmp_path / "r"
    code = cli.main(["train", "--data", str(p), "--out", str(out)])
    _one_line(code, capsys.readouterr().err, ["1 training sample", "at least 2"])
    assert not out.exists()
