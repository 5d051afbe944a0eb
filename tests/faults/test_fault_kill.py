"""kill -9 at random moments and inside checkpoint writes, SIGTERM and a double SIGINT, then
--resume: the run completes with the same final encoder, bit for bit, as the uninterrupted
reference run (conftest.py).

``SELFSUP_FAULT_ROUNDS=N`` runs N seeded rounds of random kills (default 1; RELIABILITY.md
quotes a longer campaign).
"""

from __future__ import annotations

import json
import os
import random
import signal
import time

import faultkit as fk
import pytest

ROUNDS = int(os.environ.get("SELFSUP_FAULT_ROUNDS", "1"))
KILLS_PER_ROUND = 2


def _record(**rec) -> None:
    """With SELFSUP_FAULT_LOG=FILE, append what happened (for the figures in RELIABILITY.md)."""
    if os.environ.get("SELFSUP_FAULT_LOG"):
        with open(os.environ["SELFSUP_FAULT_LOG"], "a") as f:
            f.write(json.dumps(rec) + "\n")


def _latest_step(run) -> int:
    cks = fk.checkpoints(run)
    return int(cks[-1].stem.split("-")[1]) if cks else -1


@pytest.mark.parametrize("seed", range(ROUNDS))
def test_kill9_at_random_moments_then_resume(reference, tmp_path, seed):
    rng = random.Random(seed)
    run = tmp_path / "run"
    landed, kills = 0, []
    for k in range(KILLS_PER_ROUND):
        start = _latest_step(run)
        args = fk.train_args(reference["data"], run) if k == 0 else fk.resume_args(run)
        p = fk.Proc(args, tmp_path, f"kill{k}")
        # training is under way once this process has written a checkpoint of its own; then a
        # random delay of up to 0.3 s lands the kill anywhere: in a step, a log write, a save
        try:
            fk.wait_for(lambda s=start: _latest_step(run) > s, p)
        except AssertionError:
            assert p.wait() == 0, p.stderr()  # it finished before we could kill it
            break
        delay = rng.uniform(0.0, 0.3)
        time.sleep(delay)
        was_running = p.kill9()
        landed += was_running
        kills.append(
            {
                "delay_s": round(delay, 3),
                "landed": was_running,
                "resumable_from": fk.assert_resumable(run),
                "temp_files_left": len(fk.temp_files(run)),
            }
        )
    assert landed >= 1
    fk.finish(run, tmp_path, "final")
    same = fk.sha(run / "encoder.safetensors") == reference["encoder"]
    _record(test="random_kill", seed=seed, kills=kills, identical=same)
    assert same
    assert fk.temp_files(run) == []


def _one_line(text: str, prefix: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith(prefix)]
    assert len(lines) == 1, text
    return lines[0]


def test_faults_inside_checkpoint_writes_then_resume(reference, tmp_path):
    """One run, interrupted five ways in turn, each time resumed from what was left:

    1. kill -9 with a half-written temporary checkpoint,
    2. kill -9 with a complete temporary checkpoint not yet renamed,
    3. kill -9 after the rename, before older checkpoints are pruned,
    4. SIGTERM in the middle of a step: the step finishes, a checkpoint is written (mid-epoch),
       exit 143 with one line telling how to resume,
    5. SIGINT twice while a checkpoint is being written: exit 130 at once, the partial write is
       dropped and the previous (mid-epoch) checkpoint is intact.

    Each time the newest complete checkpoint loads; the last resume ends exactly as the
    uninterrupted reference run, with no temporary files left.
    """
    run = tmp_path / "run"
    chain = [
        ("mid_write", 2, "kill"),
        ("before_rename", 1, "kill"),
        ("after_rename", 2, "kill"),
        ("in_step", 3, "term"),
        ("before_rename", 1, "int2"),
    ]
    for i, (phase, at, how) in enumerate(chain):
        ready, release = tmp_path / f"ready{i}", tmp_path / f"release{i}"
        args = fk.train_args(reference["data"], run) if i == 0 else fk.resume_args(run)
        p = fk.Proc(
            args,
            tmp_path,
            f"fault{i}",
            FAULT_AT=at,
            FAULT_PHASE=phase,
            FAULT_READY=ready,
            FAULT_RELEASE=release,
        )
        fk.wait_for(ready.exists, p)
        complete = [int(c.stem.split("-")[1]) for c in fk.checkpoints(run)]
        if how == "kill":
            assert p.kill9()
            if phase != "after_rename":
                assert fk.temp_files(run), (
                    "the interrupted write should have left only a temporary file"
                )
            assert fk.assert_resumable(run) == max(complete)
        elif how == "term":
            p.signal(signal.SIGTERM)
            fk.wait_for(lambda p=p: "SIGTERM: finishing this step" in p.stderr(), p)
            release.touch()
            assert p.wait() == 143, p.stderr()
            line = _one_line(p.stderr(), "interrupted: ")
            step = fk.assert_resumable(run)
            assert step == max(complete) + at  # the step under way finished, then the checkpoint
            assert f"--resume {run}" in line and f"step-{step:08d}" in line, line
        else:
            p.signal(signal.SIGINT)
            fk.wait_for(lambda p=p: "SIGINT: finishing this step" in p.stderr(), p)
            p.signal(signal.SIGINT)
            assert p.wait() == 130, p.stderr()
            assert "second signal: exiting now" in p.stderr()
            assert fk.temp_files(run) == []
            assert fk.assert_resumable(run) == max(complete)
    fk.finish(run, tmp_path, "final")
    same = fk.sha(run / "encoder.safetensors") == reference["encoder"]
    _record(test="faults_in_saves", stages=[c[2] + ":" + c[0] for c in chain], identical=same)
    assert fk.temp_files(run) == []  # leftovers of killed writers are cleaned on resume
    assert len(fk.checkpoints(run)) == 2
    assert same
