"""UCR/UEA classification with TS2Vec's protocol (issue 9): ``svm_top1`` (an RBF SVM on frozen
instance representations, C cross-validated on the training split when it is large enough) of
``ts2vec`` and of ``simclr`` with series views, beside the same encoder at random initialisation
and the raw input (the same SVM on the flattened, padded series), and the published figures.

Each run uses the archive's own train/test split (``ucr:NAME``, shipped with sktime) and the series
defaults of ``selfsup train`` (dilated encoder, lr 1e-3, ...). ``ts2vec`` takes the authors'
schedule: batch 8 and 200 iterations (epochs = ceil(200 / (N // 8))); ``simclr`` the series
defaults (batch <= 16, ~300 steps, the ``default`` view preset). Times are process CPU seconds
(training and evaluation, this process's threads) and wall seconds; the CPU is shared, so the wall
time depends on the load.

    python benchmarks/timeseries.py --sets ArrowHead,GunPoint,ItalyPowerDemand,BasicMotions \\
        --methods ts2vec,simclr --seeds 0 --json /tmp/ts-bench.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

#: published svm accuracy (TS2Vec paper, Table 1 / the UEA table; MiniRocket: supervised, its paper)
PUBLISHED = {
    "ArrowHead": {"T-Loss": 0.766, "TS2Vec": 0.857, "MiniRocket": 0.881},
    "GunPoint": {"T-Loss": 0.980, "TS2Vec": 0.980, "MiniRocket": 0.992},
    "ItalyPowerDemand": {"T-Loss": 0.954, "TS2Vec": 0.961, "MiniRocket": 0.960},
    "BasicMotions": {"T-Loss": 1.000, "TS2Vec": 0.975},
}


def run_one(
    name: str, method: str, seed: int, work: str, threads: int, overrides: list[str]
) -> dict:
    import selfsup
    from selfsup.data import load_source

    n = len(load_source(f"ucr:{name}").train)
    cfg: dict = {
        "method": method,
        "data": {"source": f"ucr:{name}"},
        "train": {"seed": seed, "progress": "none", "threads": threads},
        "eval": {"report": False, "diagnostics": False, "protocols": ["svm", "knn", "linear"]},
        "out": f"{work}/{method}-{name}-s{seed}",
    }
    if method == "ts2vec":  # the authors' schedule: batch 8, 200 iterations
        cfg["train"].update(batch_size=8, epochs=math.ceil(200 / max(1, n // 8)))
    t0, c0 = time.perf_counter(), time.process_time()
    run = selfsup.train(cfg, overrides=overrides, overwrite=True)
    s = run.summary
    return {
        "set": name,
        "method": method,
        "seed": seed,
        "epochs": s["epochs"],
        "steps": s["steps"],
        "batch_size": run.config.train.batch_size,
        "cpu_s": round(time.process_time() - c0, 1),
        "wall_s": round(time.perf_counter() - t0, 1),
        "train_wall_s": s["train_time_s"],
        "pretrained": s["eval"],
        "random_init": s["baselines"]["random_init"],
        "raw_input": s["baselines"]["raw_input"],
        "overrides": overrides,
    }


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sets", default="ArrowHead,GunPoint,ItalyPowerDemand,BasicMotions")
    ap.add_argument("--methods", default="ts2vec,simclr")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default="/tmp/selfsup-ts-bench")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", default=None, help="append one JSON line per run to this file")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for name in a.sets.split(","):
        for method in a.methods.split(","):
            for seed in (int(s) for s in a.seeds.split(",")):
                row = run_one(name, method, seed, a.work, a.threads, a.overrides)
                rows.append(row)
                print(json.dumps(row), flush=True)
                if a.json:
                    with open(a.json, "a") as f:
                        f.write(json.dumps(row) + "\n")
    print(
        "\n| set | method | svm_top1 | random init | raw input | T-Loss | TS2Vec (paper) | "
        "MiniRocket | CPU s | wall s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    for r in rows:
        p = PUBLISHED.get(r["set"], {})
        pub = [f"{p[k]:.3f}" if k in p else "-" for k in ("T-Loss", "TS2Vec", "MiniRocket")]
        print(
            f"| {r['set']} | {r['method']} | {r['pretrained']['svm_top1']:.3f} | "
            f"{r['random_init']['svm_top1']:.3f} | {r['raw_input']['svm_top1']:.3f} | "
            f"{' | '.join(pub)} | {r['cpu_s']:.0f} | {r['wall_s']:.0f} |"
        )


if __name__ == "__main__":
    main()
