"""Sound benchmark: the built-in ``spoken_digits`` (test voices unseen in training).

    python benchmarks/audio.py --methods cola byola simclr mae --epochs 10 --width 0.5
    python benchmarks/audio.py --data spoken_digits:rooms --methods simclr   # in rooms, mics
    python benchmarks/audio.py --time-views   # CPU s of the speech views alone, with and without

Prints, per method, kNN and linear top-1 on the unseen voices beside the raw log-mel baseline
(mean and deviation of each mel band over time) and the random-init encoder, with the run's CPU
time (process time, all threads) and wall time. Runs go to ``--out`` (one folder per method).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import selfsup


def time_views(threads: int, batch: int) -> None:
    """CPU seconds per batch of ``batch`` one-second clips (2 views of 0.96 s) of the ``speech``
    views, without and with the reverberation and equalisation views."""
    import torch

    from selfsup.models.audio import front_end
    from selfsup.views.audio import AUDIO_PRESETS, AudioViews, spec_with

    torch.set_num_threads(threads)
    fe, x = front_end(16000), torch.randn(batch, 16000) * 0.1
    for name, o in (
        ("no room, no EQ", {"reverb_p": 0.0, "eq_p": 0.0}),
        ("room p 0.5", {"reverb_p": 0.5, "eq_p": 0.0}),
        ("EQ p 0.5", {"reverb_p": 0.0, "eq_p": 0.5}),
        ("room and EQ p 0.5", {"reverb_p": 0.5, "eq_p": 0.5}),
    ):
        views = AudioViews(spec_with(AUDIO_PRESETS["speech"], o), fe, 96 * 160, 96 * 160, -5.0, 2)
        views(x)
        cpu = time.process_time()
        for _ in range(20):
            views(x)
        print(f"speech views, {name}: {(time.process_time() - cpu) / 20:.3f} CPU s per batch")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="spoken_digits", help="spoken_digits or spoken_digits:rooms")
    ap.add_argument("--methods", nargs="+", default=["cola", "byola", "simclr", "mae"])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/selfsup-audio-bench")
    ap.add_argument(
        "--set", nargs="*", action="extend", default=[], help="extra config overrides (KEY=VALUE)"
    )
    ap.add_argument("overrides", nargs="*", help="more KEY=VALUE overrides, after any option")
    ap.add_argument("--time-views", action="store_true", help="time the speech views alone")
    a = ap.parse_intermixed_args()
    a.set = [*a.set, *a.overrides]
    if a.time_views:
        return time_views(a.threads, a.batch_size)
    rows = []
    for m in a.methods:
        cpu, wall = time.process_time(), time.perf_counter()
        run = selfsup.train(
            method=m,
            data=a.data,
            epochs=a.epochs,
            batch_size=a.batch_size,
            seed=a.seed,
            out=str(Path(a.out) / m),
            overwrite=True,
            overrides=[
                f"model.width={a.width}",
                f"train.threads={a.threads}",
                "train.progress=none",
                "eval.report=false",
                "eval.diagnostics=false",
                f"eval.baselines={'true' if not rows else 'false'}",  # the first run computes them
                *a.set,
            ],
        )
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        s = run.summary
        rows.append((m, s["eval"], s.get("baselines", {}), cpu, wall))
        print(json.dumps({"method": m, "eval": s["eval"], "baselines": s.get("baselines"),
                          "cpu_s": round(cpu), "wall_s": round(wall)}), flush=True)  # fmt: skip
    print(
        f"\n{a.data} (unseen voices), {a.epochs} epochs, batch {a.batch_size}, width {a.width}"
    )
    print("| encoder | kNN top-1 | linear top-1 | CPU time |")
    print("|---|---|---|---|")
    for m, e, _, cpu, wall in rows:
        print(
            f"| {m} | {e['knn_top1']:.3f} | {e['linear_top1']:.3f} | {cpu / 60:.1f} min "
            f"({wall / 60:.1f} min wall) |"
        )
    if rows:
        for name, key in (
            ("raw log-mel (mean, std over time)", "raw_input"),
            ("random init", "random_init"),
        ):
            b = rows[0][2].get(key)
            if b:
                print(f"| {name} | {b['knn_top1']:.3f} | {b['linear_top1']:.3f} | |")


if __name__ == "__main__":
    main()
