"""Anomaly detection on tables (issue 10): clan, scarf and vime beside classical detectors.

Each method trains on the normal rows of a training split (``--normal-label``) and scores the test
split (normal rows + every other class as anomalies): AUROC/AUPRC of the method's own score (CLAN:
negative cosine to the mean normal embedding) or, without one, the kNN distance. The classical
baselines (IsolationForest, LocalOutlierFactor, distance to the mean, on the raw standardised
features) come from the same runs' summary.json. CPU minutes are the process's user + system time.

Each method runs with its recipe ``configs/<method>-breast_cancer.yaml`` (optimiser settings; the
data, normal label and epochs are set here) unless ``--no-recipe``.

Sets (nothing is downloaded; both ship inside scikit-learn's wheel):

- ``breast_cancer``: the built-in (569 rows, 30 features), benign rows normal, malignant anomalous.
- ``optdigits``: scikit-learn's bundled copy of the UCI optical digits table (1797 rows, 64
  pixel-count features 0-16), written to a CSV first (so the CSV source is exercised); digit 0
  normal, the other nine digits anomalous.
- ``shuttle`` (with ``--shuttle PATH``): the ODDS version of the UCI Statlog (Shuttle) table as
  river's wheel ships it (``river/datasets/shuttle.csv.gz``: 49,097 rows, 9 integer sensor
  features, 3,511 anomalies); PATH is the wheel itself or the extracted ``.csv.gz``. ``--rows N``
  keeps a stratified random sample of N rows (drawn once with seed 0, the same for every run).
  Written to a CSV with a ``class`` column (``normal`` / ``anomaly``); its batch is each method's
  own default (CLAN: the authors' 8,192, or every training row of a smaller table).

    python benchmarks/tabular.py --sets breast_cancer,optdigits --methods clan,scarf,vime \\
        --epochs 30 --seeds 0,1,2
    pip download --no-deps river==0.26.1 -d /tmp/pkgs   # only to get the file; not installed
    python benchmarks/tabular.py --sets shuttle --shuttle /tmp/pkgs/river-0.26.1-*.whl \\
        --rows 4000 --methods clan --epochs 200 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import statistics
import tempfile
from pathlib import Path

import selfsup


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def optdigits_csv(folder: Path) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    path = folder / "optdigits.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"p{i}" for i in range(64)] + ["digit"])
        for row, y in zip(d.data.astype(int), d.target):
            w.writerow(list(row) + [int(y)])
    return path


def shuttle_csv(src: Path, folder: Path, rows: int | None) -> Path:
    """The ODDS shuttle table (river's ``shuttle.csv.gz``, from the wheel or extracted) as a CSV
    whose ``class`` column is ``normal`` or ``anomaly``; ``rows``: a stratified sample, seed 0."""
    import gzip
    import io
    import zipfile

    import numpy as np

    if zipfile.is_zipfile(src):
        with zipfile.ZipFile(src) as z:
            raw = z.read("river/datasets/shuttle.csv.gz")
    else:
        raw = Path(src).read_bytes()
    lines = list(csv.reader(io.StringIO(gzip.decompress(raw).decode())))
    head, body = lines[0], lines[1:]
    assert head[-1] == "anomaly", head
    if rows and rows < len(body):
        y = np.array([r[-1] == "1" for r in body])
        rng = np.random.default_rng(0)
        keep = []
        for cls in (False, True):
            idx = np.flatnonzero(y == cls)
            keep += list(rng.choice(idx, round(rows * len(idx) / len(body)), replace=False))
        body = [body[i] for i in sorted(keep)]
    path = folder / "shuttle.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(head[:-1] + ["class"])
        for r in body:
            w.writerow(r[:-1] + ["anomaly" if r[-1] == "1" else "normal"])
    return path


def centroid_cos(run) -> dict:
    """Mean cosine to the normal training rows' mean feature: training rows, normal and anomalous
    test rows."""
    import torch

    from selfsup.parts import load_data
    from selfsup.resolve import resolve_config

    enc = run.encoder
    _, bank, query = load_data(resolve_config(run.config.to_dict()))
    with torch.no_grad():
        fb, fq = enc(torch.from_numpy(bank.x)), enc(torch.from_numpy(query.x))
    cos = torch.nn.functional.cosine_similarity(torch.cat([fb, fq]), fb.mean(0, keepdim=True))
    cb, cq = cos[: len(fb)], cos[len(fb) :]
    an = torch.from_numpy(query.y != bank.y[0])
    return {
        "cos_train_normal": float(cb.mean()),
        "cos_test_normal": float(cq[~an].mean()),
        "cos_anomalies": float(cq[an].mean()),
        "n_train_normal": len(fb),
        "n_test": len(fq),
        "n_anomalies": int(an.sum()),
    }


SETS = {  # name -> (source, label column, normal label, batch size; None: the method's own)
    "breast_cancer": ("breast_cancer", None, "benign", 64),
    "wine": ("wine", None, "class_0", 32),
    "optdigits": ("optdigits", "digit", "0", 64),
    "shuttle": ("shuttle", "class", "normal", None),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="breast_cancer,optdigits")
    ap.add_argument("--methods", default="clan,scarf,vime")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument(
        "--centroid-cos",
        action="store_true",
        help="also print each run's mean cosine to the mean "
        "normal training feature, for the normal training rows, the normal test "
        "rows and the anomalies",
    )
    ap.add_argument(
        "--normals", help="comma-separated normal labels, one run each (default: the set's own)"
    )
    ap.add_argument(
        "--no-recipe",
        action="store_true",
        help="the project's defaults instead of the recipes "
        "configs/<method>-breast_cancer.yaml (their optimiser settings)",
    )
    ap.add_argument("--shuttle", help="river's wheel, or its shuttle.csv.gz (set 'shuttle')")
    ap.add_argument("--rows", type=int, help="shuttle: a stratified sample of this many rows")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="selfsup-tab-"))
    rows = []
    for name in args.sets.split(","):
        source, label_col, default_normal, bs = SETS[name]
        if source == "optdigits":
            source = str(optdigits_csv(tmp))
        if source == "shuttle":
            if not args.shuttle:
                ap.error("--sets shuttle needs --shuttle PATH (river's wheel or shuttle.csv.gz)")
            source = str(shuttle_csv(Path(args.shuttle), tmp, args.rows))
        for normal in args.normals.split(",") if args.normals else [default_normal]:
            key = name if not args.normals else f"{name} (normal {normal})"
            bases = []
            for method in args.methods.split(","):
                for seed in [int(s) for s in args.seeds.split(",")]:
                    t0 = cpu_s()
                    over = [
                        "eval.report=false",
                        "eval.diagnostics=false",
                        "train.progress=none",
                        f"data.normal_label={normal}",
                    ] + (["data.label_column=" + label_col] if label_col else [])
                    recipe = (
                        Path(__file__).resolve().parents[1]
                        / "configs"
                        / f"{method}-breast_cancer.yaml"
                    )
                    run = selfsup.train(
                        recipe if recipe.is_file() and not args.no_recipe else None,
                        method=method,
                        data=source,
                        epochs=args.epochs,
                        batch_size=bs,
                        seed=seed,
                        out=str(tmp / f"{name}-{normal}-{method}-{seed}"),
                        overrides=over + args.overrides,
                    )
                    s = run.summary
                    e = s["eval"]
                    rows.append(
                        {
                            "set": key,
                            "method": method,
                            "seed": seed,
                            "score": s["anomaly"]["score"],
                            "auroc": e["anomaly_auroc"],
                            "auprc": e["anomaly_auprc"],
                            "knn_auroc": e["anomaly_knn_auroc"],
                            "knn_l2_auroc": e["anomaly_knn_l2_auroc"],
                            "knn_l2_auprc": e["anomaly_knn_l2_auprc"],
                            "cpu_min": (cpu_s() - t0) / 60,
                        }
                    )
                    bases.append((seed, s["baselines"]))
                    if args.centroid_cos:
                        rows[-1].update(centroid_cos(run))
                    print(json.dumps(rows[-1]), flush=True)
            seen = set()
            for (
                seed,
                base,
            ) in bases:  # the baselines of each seed once (they depend on the seed, not the method)
                if seed in seen:
                    continue
                seen.add(seed)
                for b in (
                    "isolation_forest",
                    "lof",
                    "distance_to_mean",
                    "raw_knn",
                    "raw_knn_l2",
                    "random_init",
                ):
                    r = base[b]
                    rows.append(
                        {
                            "set": key,
                            "method": b,
                            "seed": seed,
                            "score": "baseline",
                            "auroc": r["anomaly_auroc"],
                            "auprc": r["anomaly_auprc"],
                            "knn_l2_auroc": r.get("anomaly_knn_l2_auroc"),
                            "knn_l2_auprc": r.get("anomaly_knn_l2_auprc"),
                            "cpu_min": 0.0,
                        }
                    )
    if args.normals:  # one more group per (set, method): the mean over the normal classes
        for r in list(rows):
            rows.append({**r, "set": r["set"].split(" (normal")[0] + " (mean over normal classes)"})
    print("\n| set | method | runs | AUROC | AUPRC | L2-kNN AUROC | L2-kNN AUPRC | CPU min / run |")
    print("|---|---|---|---|---|---|---|---|")
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["set"], r["method"], r["score"]), []).append(r)
    for (st, m, score), rs in groups.items():

        def cell(k, rs=rs):
            v = [r[k] for r in rs if r.get(k) is not None]
            if not v:
                return "-"
            sd = f" +- {statistics.stdev(v):.3f}" if len(v) > 1 else ""
            return f"{statistics.mean(v):.3f}{sd}"

        label = f"{m} ({score})" if score != "baseline" else m
        print(
            f"| {st} | {label} | {len(rs)} | {cell('auroc')} | {cell('auprc')} | "
            f"{cell('knn_l2_auroc')} | {cell('knn_l2_auprc')} | "
            f"{statistics.mean(r['cpu_min'] for r in rs):.2f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
