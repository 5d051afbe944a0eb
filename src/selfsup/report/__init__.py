"""The visual report: one self-contained ``report.html`` (images embedded as base64 PNG).

Sections: results with baselines, training curves (loss, learning rate, kNN), an embedding map
(t-SNE, or UMAP when installed) coloured by label, positive vs negative similarity histograms, the
singular value spectrum, and the diagnostics over time. With several runs: a comparison table
ranking them and overlaid curves.

The report draws what it is given: run directories (read as files) and, for the embedding map,
points computed by :func:`embedding_points` from an encoder and labelled images that the caller
loaded. It never reaches back into :mod:`selfsup.api`; ``selfsup report`` goes through
:func:`selfsup.evaluation.write_run_report`, which loads each run's encoder and data and hands them
over.

>>> from selfsup.report import write_report
>>> write_report(["runs/simclr-digits-..."], "report.html")   # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RunDirError, SelfSupError
from ..io import write_text
from ..rundir import require_run

MAX_MAP_POINTS = 1000
RANK_KEYS = ("knn_top1", "linear_top1")


class ReportError(SelfSupError):
    """The report cannot be drawn (its plotting dependency is missing)."""


def require_plotting() -> None:
    """Raise :class:`ReportError` (one line) when matplotlib, a core dependency, is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ReportError(
            "the report needs matplotlib (a dependency of selfsup): pip install matplotlib"
        ) from None


def load_run(run_dir: str | os.PathLike) -> dict:
    """config, summary, eval.json and metrics.jsonl of a finished run."""
    d = require_run(Path(run_dir), "summary.json")
    import yaml

    metrics = []
    mp = d / "metrics.jsonl"
    if mp.is_file():
        for line in mp.read_text(encoding="utf-8").splitlines():
            try:
                metrics.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    summary = json.loads((d / "summary.json").read_text(encoding="utf-8"))
    ev = (
        json.loads((d / "eval.json").read_text(encoding="utf-8"))
        if (d / "eval.json").is_file()
        else None
    )
    cfg = (
        yaml.safe_load((d / "config.yaml").read_text(encoding="utf-8"))
        if (d / "config.yaml").is_file()
        else {}
    )
    return {
        "dir": d,
        "label": d.name,
        "summary": summary,
        "eval_json": ev,
        "config": cfg or {},
        "metrics": metrics,
        "diagnostics": summary.get("diagnostics"),
    }


def embedding_points(
    label: str,
    encoder: Any,
    images: Any,
    labels: np.ndarray,
    image_size: Any,
    max_points: int = MAX_MAP_POINTS,
    seed: int = 0,
) -> dict:
    """2-D map of ``encoder``'s features on (at most ``max_points`` of) labelled ``images``.

    ``images`` are raw samples (uint8 (N, H, W, C) images, or any modality's ``to_tensor`` output),
    ``image_size`` the image size or a callable mapping a raw batch to the encoder's input (the
    modality's ``prepare``), ``labels`` (N,) integers; the result is what :func:`write_report` draws
    as one panel of the embedding map.
    """
    import torch

    from ..eval import extract

    n = min(max_points, len(images))
    keep = np.sort(np.random.default_rng(seed).permutation(len(images))[:n])
    with torch.random.fork_rng(devices=[]):
        feats = extract(encoder, images[keep], image_size, 512, "cpu").double().numpy()
    y = np.asarray(labels)[keep]
    feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    xy, how = _project_2d(feats, seed)
    return {"xy": xy, "y": y, "how": how, "label": label}


def _project_2d(x: np.ndarray, seed: int) -> tuple[np.ndarray, str]:
    def first_two(why: str = "") -> tuple[np.ndarray, str]:
        second = x[:, 1] if x.shape[1] > 1 else np.zeros(len(x))
        return np.c_[x[:, 0], second], "first two dimensions" + why

    if len(x) < 5:
        return first_two()
    # points that (nearly) coincide, as a collapsed encoder or constant data gives: t-SNE's PCA
    # initialisation divides by a zero spread, and scikit-learn's t-SNE then crashes the process
    spread = float(np.max(np.ptp(x, axis=0))) if x.size else 0.0
    if not np.isfinite(spread) or spread <= 1e-6 * max(1.0, float(np.max(np.abs(x)))):
        return first_two(" (the embeddings nearly coincide)")
    try:
        import umap  # type: ignore

        return umap.UMAP(random_state=seed, n_neighbors=min(15, len(x) - 1)).fit_transform(
            x
        ), "UMAP"
    except ImportError:
        pass
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if x.shape[1] > 50 and len(x) > 50:
        x = PCA(n_components=50, random_state=seed).fit_transform(x)
    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
    from threadpoolctl import threadpool_limits

    ts = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, max_iter=400)
    with threadpool_limits(1):  # faster than oversubscribed threads on a busy CPU, and reproducible
        return ts.fit_transform(x), "t-SNE"


# -- HTML ------------------------------------------------------------------------------------------
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;\
max-width:1200px;
color:#222;padding:0 16px} h1{font-size:1.5em} h2{font-size:1.2em;border-bottom:1px solid #ddd;\
padding-bottom:4px;
margin-top:32px} table{border-collapse:collapse;margin:8px 0;font-size:0.9em} th,td{border:1px \
solid #ccc;
padding:4px 8px;text-align:right} th:first-child,td:first-child{text-align:left} \
th{background:#f3f3f3}
img{max-width:100%;height:auto} .note{color:#666;font-size:0.9em} code{background:#f3f3f3;\
padding:1px 4px}
tr.best td{font-weight:bold}
"""


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return "-" if v is None else str(v)
    if isinstance(v, float):
        return f"{v:.4f}"
    return html.escape(str(v))


def _table(header: list[str], rows: list[list], best: int | None = None) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = []
    for i, r in enumerate(rows):
        cls = ' class="best"' if best is not None and i == best else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>")
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{html.escape(title)}</h2>\n{body}\n</section>'


def _scalar_keys(d: dict) -> list[str]:
    return [k for k, v in d.items() if isinstance(v, int | float) and not isinstance(v, bool)]


def results_table(run: dict) -> str:
    s = run["summary"]
    ev = s.get("eval")
    if not ev:
        return '<p class="note">No labelled data: nothing was evaluated.</p>'
    extra = (run["eval_json"] or {}).get("eval", {})
    keys = _scalar_keys(ev) + [k for k in _scalar_keys(extra) if k not in ev]
    rows = [[f"pretrained ({s.get('method')})"] + [ev.get(k, extra.get(k)) for k in keys]]
    for name, res in s.get("baselines", {}).items():
        rows.append([name.replace("_", " ")] + [res.get(k) for k in keys])
    info = s.get("eval_data", {})
    note = (
        f'<p class="note">{html.escape(str(s.get("method")))} on '
        f"{html.escape(str(s.get('data')))}, "
        f"{s.get('epochs')} epochs, {s.get('steps')} steps, training {s.get('train_time_s')} s; "
        f"evaluated on {info.get('bank_size', '?')} bank / {info.get('query_size', '?')} query "
        f"samples{' (extra metrics from eval.json)' if extra else ''}.</p>"
    )
    return note + _table(["encoder"] + keys, rows)


def rank_key(runs: list[dict]) -> str | None:
    for k in RANK_KEYS:
        if all(k in (r["summary"].get("eval") or {}) for r in runs):
            return k
    return None


def comparison_table(runs: list[dict]) -> str:
    key = rank_key(runs)
    keys = []
    for r in runs:
        keys += [k for k in _scalar_keys(r["summary"].get("eval") or {}) if k not in keys]
    order = (
        sorted(range(len(runs)), key=lambda i: -(runs[i]["summary"].get("eval") or {}).get(key, -1))
        if key
        else list(range(len(runs)))
    )
    rows = []
    for rank, i in enumerate(order, 1):
        s = runs[i]["summary"]
        ev = s.get("eval") or {}
        d = s.get("diagnostics") or {}
        rows.append(
            [rank, runs[i]["label"], s.get("method"), s.get("epochs"), s.get("train_time_s")]
            + [ev.get(k) for k in keys]
            + [d.get("rankme"), d.get("uniformity")]
        )
    note = f'<p class="note">Ranked by <code>{key}</code> (higher is better).</p>' if key else ""
    return note + _table(
        ["rank", "run", "method", "epochs", "train s"] + keys + ["RankMe", "uniformity"],
        rows,
        best=0 if key else None,
    )


def build_html(runs: list[dict], maps: list[dict]) -> str:
    from . import plots

    title = "selfsup report: " + ", ".join(r["label"] for r in runs)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if len(runs) > 1:
        parts.append(_section("comparison", "Comparison", comparison_table(runs)))
    parts.append(
        _section(
            "results",
            "Results and baselines",
            "\n".join(
                (f"<h3>{html.escape(r['label'])}</h3>" if len(runs) > 1 else "") + results_table(r)
                for r in runs
            ),
        )
    )
    parts.append(
        _section("curves", "Training curves", _img(plots.curves(runs), "loss, lr and kNN curves"))
    )
    if maps:
        parts.append(
            _section(
                "embedding",
                "Embedding map",
                _img(plots.embedding_map(maps), "embedding map coloured by label"),
            )
        )
    else:
        parts.append(
            _section(
                "embedding",
                "Embedding map",
                '<p class="note">Not available: no encoder or no labelled evaluation data.</p>',
            )
        )
    with_diag = [r for r in runs if r.get("diagnostics")]
    if with_diag:
        parts.append(
            _section(
                "similarity",
                "Positive vs negative similarities",
                '<p class="note">Cosine similarities on the fixed held-out batch after training: '
                "two views of one sample (positives) against other samples (negatives).</p>"
                + _img(plots.similarity_hist(with_diag), "similarity histograms"),
            )
        )
        parts.append(
            _section(
                "spectrum",
                "Singular value spectrum",
                _img(plots.spectrum(with_diag), "singular value spectrum"),
            )
        )
        diag_rows = [
            [r["label"]]
            + [
                r["diagnostics"].get(k)
                for k in (
                    "alignment",
                    "uniformity",
                    "rankme",
                    "std_mean",
                    "std_ideal",
                    "pos_sim",
                    "neg_sim",
                    "directpred_align",
                    "tau_mean",
                )
            ]
            for r in with_diag
        ]
        parts.append(
            _section(
                "diagnostics",
                "Diagnostics over time",
                _img(plots.diagnostics_over_time(with_diag), "diagnostics over time")
                + "<h3>after training</h3>"
                + _table(
                    [
                        "run",
                        "alignment",
                        "uniformity",
                        "RankMe",
                        "std mean",
                        "std ideal",
                        "pos sim",
                        "neg sim",
                        "DirectPred align",
                        "tau mean",
                    ],
                    diag_rows,
                ),
            )
        )
    else:
        for sid, t in (
            ("similarity", "Positive vs negative similarities"),
            ("spectrum", "Singular value spectrum"),
            ("diagnostics", "Diagnostics over time"),
        ):
            parts.append(
                _section(
                    sid,
                    t,
                    '<p class="note">No diagnostics recorded (eval.diagnostics was off).</p>',
                )
            )
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        f'<link rel="icon" href="data:,"><style>{CSS}</style></head>'
        f"<body>\n{body}\n</body></html>\n"
    )


def load_runs(run_dirs: list[str | os.PathLike]) -> list[dict]:
    """:func:`load_run` for each directory; runs with the same name get their parent's name too."""
    if not run_dirs:
        raise RunDirError("give at least one run directory to report on")
    runs = [load_run(d) for d in run_dirs]
    labels = [r["label"] for r in runs]
    for r in runs:
        if labels.count(r["label"]) > 1:
            r["label"] = f"{r['dir'].parent.name}/{r['label']}"
    return runs


def write_report(
    runs: list[str | os.PathLike] | list[dict],
    out: str | os.PathLike | None = None,
    maps: list[dict] | None = None,
) -> Path:
    """Write ``report.html`` for one or more finished runs; returns its path.

    ``runs`` are run directories or runs already read by :func:`load_runs`; ``maps`` are the
    embedding-map panels (from :func:`embedding_points`), none by default. ``out`` defaults to
    ``RUN_DIR/report.html`` for one run and ``./report.html`` for several.
    """
    require_plotting()
    if runs and all(isinstance(r, dict) for r in runs):
        loaded = [r for r in runs if isinstance(r, dict)]
    else:
        loaded = load_runs([r for r in runs if not isinstance(r, dict)])
    out = (
        Path(out)
        if out is not None
        else (loaded[0]["dir"] / "report.html" if len(loaded) == 1 else Path("report.html"))
    )
    write_text(out, build_html(loaded, list(maps or [])))
    return out


__all__ = [
    "write_report",
    "load_run",
    "load_runs",
    "build_html",
    "embedding_points",
    "ReportError",
    "require_plotting",
]
