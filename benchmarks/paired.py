"""Paired modalities on a multichannel series set split into two sensors (default: BasicMotions,
accelerometer channels 0,1,2 and gyroscope channels 3,4,5): cross-modal retrieval on the test split
(recall@1/5/10, median rank, both directions; chance recall@1 = 1/N) and each tower's kNN / linear
/ SVM top-1, beside the same tower trained alone by a single-modality method, a random-init tower
and the raw input.

    python benchmarks/paired.py --threads 1
    python benchmarks/paired.py --methods clip xhcl --single simclr ts2vec --seeds 0 1

Every run takes the series defaults (dilated encoder, batch 16, about 300 steps, AdamW 1e-3; see
``selfsup.modalities.timeseries``); the single-tower runs read that tower's channels of the same
splits (written to a temporary .npz). Prints Markdown tables; runs go to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import selfsup
from selfsup.data import load_source
from selfsup.data.paired import split_channels


def tower_npz(source: str, spec: str, tower: str, path: Path) -> str:
    """One tower's channels of ``source``'s splits as an .npz (x, y, x_test, y_test)."""
    s = split_channels(load_source(source), spec)
    tr, te = s.train.member(tower), s.test.member(tower)
    np.savez(path, x=tr.x, y=tr.y, x_test=te.x, y_test=te.y)
    return str(path)


def run(cfg: dict, overrides: list[str]) -> tuple[dict, float]:
    t0 = time.perf_counter()
    r = selfsup.train(cfg, overrides=overrides)  # unset fields take the modality's defaults
    return r.summary, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="ucr:BasicMotions")
    ap.add_argument("--pair-channels", default="0,1,2:3,4,5")
    ap.add_argument("--methods", nargs="*", default=["clip", "isogclr_pair", "xhcl"])
    ap.add_argument(
        "--single", nargs="*", default=["simclr"], help="single-modality methods per tower"
    )
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="append one JSON line per run (its summary) to this file")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args()
    base = {
        "train": {"threads": a.threads, "progress": "none"},
        "eval": {"diagnostics": False, "report": False},
    }
    paired_rows, tower_rows = [], []
    log = open(a.json, "a") if a.json else None

    def record(rec: dict) -> None:
        if log is not None:
            log.write(json.dumps(rec) + "\n")
            log.flush()

    with tempfile.TemporaryDirectory() as tmp:
        for seed in a.seeds:
            # the first paired method, then each tower alone, then the other paired methods: the
            # comparison the benchmark is for comes first
            jobs = (
                [("paired", m, None) for m in a.methods[:1]]
                + [("single", m, t) for t in ("a", "b") for m in a.single]
                + [("paired", m, None) for m in a.methods[1:]]
            )
            for kind, m, tower in jobs:
                if kind == "paired":
                    cfg = {
                        **base,
                        "method": m,
                        "data": {"source": a.data, "pair_channels": a.pair_channels},
                        "train": {**base["train"], "seed": seed},
                        "out": f"{tmp}/{m}-{seed}",
                    }
                    s, wall = run(cfg, a.overrides)
                    ev, rnd = s["eval"], s["baselines"]["random_init"]
                    paired_rows.append(
                        (m, seed, ev, rnd, s["baselines"]["raw_input"], s["train_time_s"], wall)
                    )
                    record({"kind": kind, "method": m, "seed": seed, "summary": s, "wall_s": wall})
                    print(
                        f"{m} seed {seed}: xmodal_r1 {ev['xmodal_r1']:.3f} (random init "
                        f"{rnd['xmodal_r1']:.3f}) train {s['train_time_s']:.0f}s",
                        flush=True,
                    )
                else:
                    npz = tower_npz(
                        a.data, a.pair_channels, tower, Path(tmp) / f"tower_{tower}.npz"
                    )
                    cfg = {
                        **base,
                        "method": m,
                        "data": {"source": npz},
                        "train": {**base["train"], "seed": seed},
                        "out": f"{tmp}/{m}-{tower}-{seed}",
                    }
                    s, wall = run(cfg, a.overrides)
                    tower_rows.append((tower, m, seed, s["eval"], s["train_time_s"]))
                    record(
                        {
                            "kind": kind,
                            "method": m,
                            "tower": tower,
                            "seed": seed,
                            "summary": s,
                            "wall_s": wall,
                        }
                    )
                    print(f"{m} on tower {tower} alone, seed {seed}: {s['eval']}", flush=True)
    if log is not None:
        log.close()

    if not paired_rows:
        for tw, m, seed, ev, t in tower_rows:
            print(f"| {tw} | {m} (this tower alone) | {seed} | {ev} | {t:.0f}s |")
        return
    print(
        "\n| method | seed | xmodal_r1 | r5 | r10 | medr | a->b r1 | b->a r1 | "
        "random-init r1 | train s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m, seed, ev, rnd, _, t, _ in paired_rows:
        print(
            f"| {m} | {seed} | {ev['xmodal_r1']:.3f} | {ev['xmodal_r5']:.3f} | "
            f"{ev['xmodal_r10']:.3f} | {ev['xmodal_medr']:.1f} | {ev['xmodal_a2b_r1']:.3f} | "
            f"{ev['xmodal_b2a_r1']:.3f} | {rnd['xmodal_r1']:.3f} | {t:.0f} |"
        )
    protos = [p for p in ("knn_top1", "linear_top1", "svm_top1") if f"a_{p}" in paired_rows[0][2]]
    print("\n| tower | encoder | seed | " + " | ".join(protos) + " |")
    print("|---|---|---|" + "---|" * len(protos))
    for tower in ("a", "b"):
        for m, seed, ev, _rnd, _raw, _, _ in paired_rows:
            print(
                f"| {tower} | {m} (paired) | {seed} | "
                + " | ".join(f"{ev[f'{tower}_{p}']:.3f}" for p in protos)
                + " |"
            )
        for tw, m, seed, ev, _ in tower_rows:
            if tw == tower:
                print(
                    f"| {tower} | {m} (this tower alone) | {seed} | "
                    + " | ".join(f"{ev[p]:.3f}" if p in ev else "-" for p in protos)
                    + " |"
                )
        _, seed, _, rnd, raw, _, _ = paired_rows[0]
        print(
            f"| {tower} | random init | {seed} | "
            + " | ".join(f"{rnd[f'{tower}_{p}']:.3f}" for p in protos)
            + " |"
        )
        print(
            f"| {tower} | raw input | - | "
            + " | ".join(f"{raw.get(f'{tower}_{p}', float('nan')):.3f}" for p in protos)
            + " |"
        )


if __name__ == "__main__":
    main()
