"""Figures of the report, drawn with matplotlib's Agg canvas (no pyplot, no GUI) as base64 PNGs."""

from __future__ import annotations

import base64
import io

import numpy as np

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _series(records: list[dict], key: str, x: str = "step") -> tuple[list, list]:
    pts = [(r[x], r[key]) for r in records if key in r and x in r and r[key] is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def curves(runs: list[dict]) -> str:
    """Training loss and learning rate per step, kNN top-1 per epoch; runs overlaid."""
    fig = _figure(12, 3.4)
    axes = fig.subplots(1, 3)
    for i, run in enumerate(runs):
        c = COLORS[i % len(COLORS)]
        recs = [r for r in run["metrics"] if "loss" in r]
        axes[0].plot(*_series(recs, "loss"), color=c, label=run["label"], lw=1.2)
        axes[1].plot(*_series(recs, "lr"), color=c, label=run["label"], lw=1.2)
        ex, ey = _series(run["metrics"], "knn_top1", "epoch")
        if ex:
            axes[2].plot(ex, ey, "o-", color=c, label=run["label"], ms=3)
    for ax, title, xl in zip(
        axes,
        ("training loss", "learning rate", "kNN top-1 during training"),
        ("step", "step", "epoch"),
    ):
        ax.set_title(title)
        ax.set_xlabel(xl)
        ax.grid(alpha=0.3)
    if not any(ax.lines for ax in axes[2:]):
        axes[2].text(
            0.5,
            0.5,
            "not recorded\n(set eval.knn_every=1)",
            ha="center",
            va="center",
            transform=axes[2].transAxes,
            color="gray",
        )
    if len(runs) > 1:
        axes[0].legend(fontsize=8)
    return to_png(fig)


def embedding_map(maps: list[dict]) -> str:
    """2-D embedding maps (t-SNE or UMAP) coloured by label, one panel per run."""
    n = len(maps)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig = _figure(4.6 * cols, 4.2 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, m in zip(axes, maps):
        xy, y = np.asarray(m["xy"]), np.asarray(m["y"])
        sc = ax.scatter(
            xy[:, 0],
            xy[:, 1],
            c=y,
            cmap="tab10" if y.max() < 10 else "tab20",
            s=7,
            vmin=0,
            vmax=max(9, int(y.max())),
        )
        ax.set_title(f"{m['label']} ({m['how']}, {len(y)} points)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if len(np.unique(y)) <= 20:
            handles, _ = sc.legend_elements(num=None)
            ax.legend(
                handles, [str(v) for v in np.unique(y)], fontsize=6, loc="best", markerscale=0.6
            )
    for ax in axes[n:]:
        ax.axis("off")
    return to_png(fig)


def similarity_hist(runs: list[dict]) -> str:
    """Positive vs negative cosine similarity histograms of the held-out batch, one panel per
    run."""
    n = len(runs)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig = _figure(4.6 * cols, 3.2 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, run in zip(axes, runs):
        d = run["diagnostics"]
        for key, color, name in (
            ("neg_hist", "#d62728", "negatives"),
            ("pos_hist", "#1f77b4", "positives"),
        ):
            h = d[key]
            edges, counts = np.asarray(h["edges"]), np.asarray(h["counts"], dtype=float)
            dens = counts / max(counts.sum(), 1) / np.diff(edges)
            ax.stairs(dens, edges, fill=True, alpha=0.45, color=color, label=name)
        ax.set_title(run["label"], fontsize=9)
        ax.set_xlabel("cosine similarity")
        ax.legend(fontsize=8)
    for ax in axes[n:]:
        ax.axis("off")
    return to_png(fig)


def spectrum(runs: list[dict]) -> str:
    """Normalised eigenvalues of the embedding covariance (log scale); runs overlaid."""
    fig = _figure(6, 3.6)
    ax = fig.subplots()
    for i, run in enumerate(runs):
        s = np.asarray(run["diagnostics"]["spectrum"], dtype=float)
        s = np.clip(s, 1e-12, None)
        ax.semilogy(np.arange(1, len(s) + 1), s, color=COLORS[i % len(COLORS)], label=run["label"])
    ax.set_xlabel("index")
    ax.set_ylabel("eigenvalue / largest")
    ax.set_title("singular value spectrum of the embeddings")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return to_png(fig)


DIAG_PANELS = [
    ("diag_alignment", "alignment (lower: views closer)"),
    ("diag_uniformity", "uniformity (lower: more uniform)"),
    ("diag_rankme", "effective rank (RankMe)"),
    ("diag_std_mean", "per-dim std of normalised embeddings"),
    ("diag_pos_sim", "mean positive / negative similarity"),
    ("diag_directpred_align", "DirectPred eigenspace alignment"),
    ("diag_tau_mean", "per-sample temperature (mean, min-max)"),
]


def diagnostics_over_time(runs: list[dict]) -> str:
    """The per-epoch diagnostics from metrics.jsonl, runs overlaid."""
    panels = [p for p in DIAG_PANELS if any(p[0] in r for run in runs for r in run["metrics"])]
    cols = min(len(panels), 3)
    rows = (len(panels) + cols - 1) // cols
    fig = _figure(4.3 * cols, 3.0 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, (key, title) in zip(axes, panels):
        for i, run in enumerate(runs):
            c = COLORS[i % len(COLORS)]
            x, y = _series(run["metrics"], key, "epoch")
            ax.plot(x, y, "o-", color=c, ms=3, label=run["label"])
            if key == "diag_pos_sim":
                ax.plot(*_series(run["metrics"], "diag_neg_sim", "epoch"), "s--", color=c, ms=3)
            if key == "diag_std_mean":
                xi, yi = _series(run["metrics"], "diag_std_ideal", "epoch")
                if yi:
                    ax.axhline(yi[-1], color=c, ls=":", lw=1)
            if key == "diag_tau_mean":
                _, lo = _series(run["metrics"], "diag_tau_min", "epoch")
                _, hi = _series(run["metrics"], "diag_tau_max", "epoch")
                if lo and hi and len(lo) == len(x):
                    ax.fill_between(x, lo, hi, color=c, alpha=0.2)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if len(runs) > 1 and panels:
        axes[0].legend(fontsize=7)
    for ax in axes[len(panels) :]:
        ax.axis("off")
    return to_png(fig)
