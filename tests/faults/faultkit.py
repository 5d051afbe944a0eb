"""Helpers for the fault tests: tiny data, subprocess runs of the CLI, comparisons."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RUNNER = Path(__file__).with_name("_runner.py")
EPOCHS = 6  # 96 samples / batch 16: 6 steps an epoch, 36 steps, a checkpoint every epoch
STEPS = 6 * EPOCHS
TINY = [
    "--backbone",
    "convnet_small",
    "--set",
    "model.proj_hidden=32",
    "--set",
    "model.proj_dim=16",
    "--batch-size",
    "16",
    "--set",
    "train.progress=none",
    "--set",
    "train.threads=1",
    "--seed",
    "0",
    "--set",
    "eval.report=false",
    "--set",
    "eval.diagnostics=false",
]


def make_npz(path: Path, n: int = 96) -> Path:
    """Unlabelled 8x8 grayscale images: nothing to evaluate, so a run is training only."""
    x = (np.random.default_rng(0).random((n, 8, 8)) * 255).astype("uint8")
    np.savez(path, x=x)
    return path


def train_args(data: Path, out: Path, epochs: int = EPOCHS) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--epochs", str(epochs), *TINY]


def resume_args(out: Path) -> list[str]:
    return ["train", "--resume", str(out)]


class Proc:
    """A CLI run in a subprocess; stdout/stderr go to files that can be read while it runs."""

    def __init__(self, args: list[str], workdir: Path, name: str, **fault: str):
        env = dict(os.environ)
        env.update({k: str(v) for k, v in fault.items()})
        env.setdefault("SELFSUP_CACHE", str(workdir / "_cache"))
        self.out, self.err = workdir / f"{name}.out", workdir / f"{name}.err"
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.p = subprocess.Popen(
                [sys.executable, str(RUNNER), *args], stdout=o, stderr=e, env=env, cwd=workdir
            )

    def alive(self) -> bool:
        return self.p.poll() is None

    def signal(self, sig: int) -> None:
        self.p.send_signal(sig)

    def kill9(self) -> bool:
        """SIGKILL; True if the process was still running."""
        was = self.alive()
        if was:
            os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait(60)
        return was

    def wait(self, timeout: float = 120) -> int:
        return self.p.wait(timeout)

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


def wait_for(cond, proc: Proc | None = None, timeout: float = 60.0, poll: float = 0.005) -> None:
    t0 = time.monotonic()
    while not cond():
        if proc is not None and not proc.alive():
            raise AssertionError(
                f"process ended (rc {proc.p.returncode}) first: {proc.stderr()[-2000:]}"
            )
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out waiting")
        time.sleep(poll)


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def checkpoints(run: Path) -> list[Path]:
    d = run / "checkpoints"
    return sorted(d.glob("step-*.safetensors")) if d.is_dir() else []


def temp_files(run: Path) -> list[Path]:
    return [
        p
        for d in (run, run / "checkpoints")
        if d.is_dir()
        for p in d.iterdir()
        if p.name.startswith(".") and p.name not in (".lock", ".selfsup-run")
    ]


def assert_resumable(run: Path) -> int:
    """The newest loadable checkpoint loads completely; returns its step."""
    from selfsup.train import checkpoint as ckpt

    last = ckpt.latest(run)
    assert last is not None, (
        f"no loadable checkpoint in {run}: {list((run / 'checkpoints').iterdir())}"
    )
    state = ckpt.load(last)
    assert {"progress", "model", "optimizer", "rng"} <= set(state)
    return int(state["progress"]["step"])


def finish(run: Path, workdir: Path, name: str) -> Proc:
    """Resume ``run`` without faults and wait for it to succeed."""
    p = Proc(resume_args(run), workdir, name)
    rc = p.wait()
    assert rc == 0, f"resume failed (rc {rc}): {p.stderr()[-3000:]}"
    return p
