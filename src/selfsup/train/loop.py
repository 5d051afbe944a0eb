"""The one training loop, for every method and modality.

Reads top to bottom: for each epoch, a seeded permutation of the data; for each batch, views on the
device, the method's loss, backward, optional clipping, an optimiser step with the scheduled
learning rate, then the method's ``after_step``. Checkpoints after every ``checkpoint_every``
epochs (``auto``: about 100 a run at most), at the end, and when SIGINT/SIGTERM asks the run to
stop. A non-finite loss skips the step; too many in a row stop the run with the last good
checkpoint intact, or, with ``train.rollback``, reload the last checkpoint and go on at a lower
learning rate (at most ``train.max_rollbacks`` times).

Under torchrun (several processes, :mod:`.distributed`) the same loop runs on every rank: each rank
takes its slice of the global batch, the method runs inside DistributedDataParallel (BatchNorm
synchronised with ``train.sync_bn``), the loss and the stop request are summed over ranks once per
step (so every rank skips, stops and checkpoints at the same step), and only rank 0 writes
metrics, checkpoints and progress. ``train.chunk_size`` runs the step with gradient caching
(:mod:`.gradcache`); ``train.precision`` picks the autocast type (:mod:`.precision`).
"""

from __future__ import annotations

import io
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..config import Config, every_epochs
from ..errors import CheckpointError, TrainingError
from ..io import append_jsonl, remove_stale_temp
from ..methods import Batch, Method
from . import checkpoint as ckpt
from . import distributed as ddp
from . import gradcache
from .monitor import CollapseMonitor
from .optim import build_optimizer, lr_at, resolved_lr
from .precision import autocast_dtype, resolve

KEEP_CHECKPOINTS = 2


class Interrupted(Exception):
    """Raised after a requested stop (SIGINT/SIGTERM) has been checkpointed.

    ``exit_code`` is the shell's convention for the signal: 130 for SIGINT, 143 for SIGTERM.
    """

    def __init__(
        self, run_dir: Path, step: int, signum: int = signal.SIGINT, checkpoint: Path | None = None
    ):
        name = signal.Signals(signum).name
        where = f" to {checkpoint}" if checkpoint is not None else ""
        super().__init__(
            f"stopped by {name} at step {step}; checkpoint written{where}. "
            f"Continue with: selfsup train --resume {run_dir}"
        )
        self.run_dir, self.step, self.signum, self.checkpoint = run_dir, step, signum, checkpoint
        self.exit_code = 128 + int(signum)


@dataclass
class Progress:
    epoch: int = 0
    step_in_epoch: int = 0
    step: int = 0
    skipped_steps: int = 0
    train_time: float = 0.0
    rollbacks: int = 0
    lr_scale: float = 1.0


def epoch_order(
    n: int, seed: int, epoch: int, device, method: Method | None = None, batch_size: int = 1
) -> torch.Tensor:
    """The epoch's sample order: derived from (seed, epoch) alone, so a resumed run sees the
    same."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**64)  # any seed 0 .. 2**63-1
    order = method.batch_order(n, batch_size, g) if method is not None else None
    if order is None:
        order = torch.randperm(n, generator=g)
    return order.to(device)


class StopFlag:
    """SIGINT/SIGTERM set the flag (the step finishes and a checkpoint is written); a second
    exits."""

    def __init__(self):
        self.requested = False
        self.signum = signal.SIGINT
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            sys.stderr.write("\nsecond signal: exiting now; the last checkpoint is intact\n")
            raise SystemExit(128 + int(signum))
        self.requested, self.signum = True, signum
        sys.stderr.write(
            f"\n{signal.Signals(signum).name}: finishing this step and writing a checkpoint "
            "(signal again to exit at once)\n"
        )

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False


class Trainer:
    def __init__(
        self,
        method: Method,
        views: Callable,
        x: torch.Tensor,
        cfg: Config,
        run_dir: Path,
        device: torch.device,
        labels: torch.Tensor | None = None,
        on_epoch_end: Callable[[int, Method], dict | None] | None = None,
        console=None,
        loggers: list | None = None,
        identity: dict | None = None,
    ):
        """``loggers``: each has ``log(record: dict)`` and optionally ``close()`` (metrics.jsonl is
        always kept); ``identity``: what each checkpoint records of the run (its config and
        data)."""
        self.method, self.views, self.x, self.labels = method, views, x, labels
        self.identity = identity
        self.cfg, self.run_dir, self.device = cfg, Path(run_dir), device
        self.on_epoch_end = on_epoch_end
        self.console = console
        tc = cfg.train
        self.rank, self.world_size = ddp.world()
        self.main = self.rank == 0
        ddp.check_batch(tc.batch_size, self.world_size)
        self.local_batch = tc.batch_size // self.world_size
        self.steps_per_epoch = len(x) // tc.batch_size
        self.precision, self.precision_reason = resolve(tc.precision, device)
        self.amp_dtype = autocast_dtype(self.precision)
        self.bf16 = self.precision == "bf16"
        # always present: disabled (every call a pass-through) unless fp16 needs loss scaling
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        gradcache.check(method, tc.chunk_size, self.local_batch)
        if self.world_size > 1 and tc.sync_bn and ddp.has_batchnorm(method):
            method = ddp.convert_sync_batchnorm(
                method, device
            )  # same parameter objects, same state keys
            self.method = method
        if tc.channels_last:
            method.to(memory_format=torch.channels_last)
        if tc.compile:
            method.encoder.compile()
        #: what the step calls: the method, or its DistributedDataParallel wrapper
        self.model = ddp.wrap(method, device) if self.world_size > 1 else method
        self.loggers: list = list(loggers or [])
        self.total_steps = self.steps_per_epoch * tc.epochs
        self.optimizer = build_optimizer(method, cfg.optim, tc.batch_size)
        self.base_lr = resolved_lr(cfg.optim, tc.batch_size)
        self.warmup = int(round(cfg.optim.warmup_epochs * self.steps_per_epoch))
        self.state = Progress()
        self.resumed = (
            False  # set by load_checkpoint: prepare() state then comes from the checkpoint
        )
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.timing = {"data": 0.0, "views": 0.0, "forward_backward": 0.0, "optimizer": 0.0}
        #: collapse statistics of the step's encoder features every 10 steps (one warning at most)
        self.monitor = CollapseMonitor(
            method, every=10, stream=None if self.main else io.StringIO()
        )
        #: how this run computes (for the summary): precision and why, processes, chunking
        self.setup = {
            "precision": self.precision,
            "precision_reason": self.precision_reason,
            "nproc": self.world_size,
            "chunk_size": tc.chunk_size,
            "compile": tc.compile,
            "channels_last": tc.channels_last,
        }

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Rank 0 writes the checkpoint; every rank returns its path after rank 0 is done."""
        path = self.run_dir / "checkpoints" / f"step-{self.state.step:08d}.safetensors"
        if self.main:
            self._write_checkpoint(path)
        ddp.barrier("a checkpoint")
        return path

    def _write_checkpoint(self, path: Path) -> None:
        model = self.method.state_dict()
        bad = [
            k
            for k, v in model.items()
            if v.is_floating_point() and not bool(torch.isfinite(v).all())
        ]
        if bad:
            raise TrainingError(
                f"weights became non-finite ({bad[0]}) at step {self.state.step}; lower the "
                "learning rate (--lr) or set optim.clip_grad; "
                f"{ckpt.advice(self.run_dir)}"
            )
        ckpt.save(
            path,
            {
                "progress": asdict(self.state),
                "model": model,
                "optimizer": self.optimizer.state_dict(),
                "method_extra": self.method.extra_state(),
                "rng": ckpt.rng_state(),
                "run": self.identity or {},  # config + data fingerprint (selfsup.resume)
            },
        )
        for old in ckpt.checkpoints(self.run_dir)[:-KEEP_CHECKPOINTS]:
            old.unlink(missing_ok=True)

    def load_checkpoint(self, path: Path) -> None:
        s = ckpt.load(path, "cpu")
        try:
            self.method.load_state_dict(s["model"])
            self.optimizer.load_state_dict(s["optimizer"])
            self.method.load_extra_state(s.get("method_extra", {}))
            ckpt.set_rng_state(s["rng"])
            state = Progress(**s["progress"])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as err:
            first = (str(err).splitlines() or [""])[0][:160]
            model_state = s.get("model") if isinstance(s, dict) else None
            hint = self.method.resume_hint(model_state) if isinstance(model_state, dict) else None
            raise CheckpointError(
                f"checkpoint '{path}' does not fit this run ({type(err).__name__}: {first}); "
                + (hint or "resume with the config it was written with")
            ) from None
        self.state, self.resumed = state, True
        if self.main:
            for d in (
                self.run_dir,
                self.run_dir / "checkpoints",
            ):  # we hold the lock: leftovers are stale
                remove_stale_temp(d)
            self._truncate_metrics(self.state.step)

    def _roll_back(self, bad: int) -> Progress:
        """After ``bad`` non-finite steps in a row: reload the last checkpoint with a lower learning
        rate (``train.rollback``), or stop with :class:`TrainingError`."""
        tc, st = self.cfg.train, self.state
        what = f"{bad} non-finite losses or gradients in a row at step {st.step}"
        last = (
            ckpt.latest(self.run_dir) if tc.rollback and st.rollbacks < tc.max_rollbacks else None
        )
        if last is None:
            tried = f" after {st.rollbacks} rollback(s)" if tc.rollback else ""
            raise TrainingError(
                f"{what}{tried}; lower the learning rate (--lr) or set optim.clip_grad (or "
                f"train.rollback=true); {ckpt.advice(self.run_dir)}"
            )
        skipped, n, scale = st.skipped_steps, st.rollbacks + 1, st.lr_scale * tc.rollback_lr_factor
        self.load_checkpoint(last)
        self.state.skipped_steps, self.state.rollbacks, self.state.lr_scale = skipped, n, scale
        self.log(
            {
                "step": self.state.step,
                "rollback": n,
                "from": last.name,
                "lr_scale": scale,
                "reason": what,
            }
        )
        if self.console is not None and tc.progress != "none" and self.main:
            self.console.print(
                f"{what}: rolled back to {last.name} with the learning rate x{scale:g} "
                f"(rollback {n}/{tc.max_rollbacks})",
                highlight=False,
            )
        return self.state

    def _truncate_metrics(self, step: int) -> None:
        """Drop log lines written after the checkpoint, so a resumed log has no duplicates."""
        import json

        from ..io import write_text

        if not self.metrics_path.is_file():
            return
        keep = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("step", 0) <= step:
                keep.append(line)
        write_text(self.metrics_path, "".join(k + "\n" for k in keep))

    def log(self, rec: dict) -> None:
        if not self.main:
            return
        append_jsonl(self.metrics_path, rec)
        for lg in self.loggers:
            lg.log(rec)

    # -- one step ------------------------------------------------------------------------------
    def batch_at(
        self, order: torch.Tensor, step_in_epoch: int, step: int
    ) -> tuple[Batch, list[torch.Tensor]]:
        """This rank's batch and views for one step of the global order.

        Views are drawn under a generator keyed by (seed, step) (and the rank with
        ``view_sharding=local``), so they depend neither on the process count nor on resuming.
        """
        tc = self.cfg.train
        gidx = order[step_in_epoch * tc.batch_size : (step_in_epoch + 1) * tc.batch_size]
        lo, hi = ddp.slice_of(tc.batch_size)
        idx = gidx[lo:hi]
        labels = None if self.labels is None else self.labels[idx]
        t0 = time.perf_counter()
        if self.world_size == 1 or tc.view_sharding == "global":
            xg = self.x[gidx]
            t0 = time.perf_counter()
            with ddp.keyed_rng(ddp.view_seed(tc.seed, step), self.device):
                views = self.views(xg)
            views = [v[lo:hi] for v in views] if self.world_size > 1 else views
            batch = Batch(xg[lo:hi] if self.world_size > 1 else xg, idx, labels)
        else:
            xl = self.x[idx]
            t0 = time.perf_counter()
            with ddp.keyed_rng(ddp.view_seed(tc.seed, step, self.rank), self.device):
                views = self.views(xl)
            batch = Batch(xl, idx, labels)
        self._views_time = time.perf_counter() - t0
        if self.cfg.train.channels_last:
            views = [
                v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
                for v in views
            ]
        return batch, views

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _no_sync(self):
        return self.model.no_sync() if self.model is not self.method else nullcontext()

    def forward_backward(
        self, views: list[torch.Tensor], batch: Batch
    ) -> tuple[torch.Tensor, dict, bool]:
        """Loss (this rank's), logs, and whether the *global* loss was finite; gradients (averaged
        over ranks) are in ``.grad`` when it was. Every rank takes the same decision."""
        tc = self.cfg.train
        if tc.chunk_size is not None and tc.chunk_size < len(views[0]):
            loss, logs = gradcache.method_step(
                self.model,
                self.method,
                views,
                batch,
                tc.chunk_size,
                self._autocast,
                self._no_sync,
                self.scaler.scale if self.scaler.is_enabled() else None,
            )
            return loss, logs, self._globally_finite(loss)
        with self._autocast():
            loss, logs = self.model(views, batch)
        loss = loss.float()
        finite = self._globally_finite(loss)
        if finite:
            self.scaler.scale(loss).backward()
        elif (
            self.world_size > 1
        ):  # DDP expects a backward after its forward; the step is skipped anyway
            (loss * 0).backward()
        return loss, logs, finite

    def _globally_finite(self, loss: torch.Tensor) -> bool:
        if self.world_size == 1:
            return bool(torch.isfinite(loss))
        self._loss_sum = ddp.reduce_sum(loss.detach().reshape(1), "the step's loss")
        return bool(torch.isfinite(self._loss_sum).all())

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> Progress:
        """Train to the end (or to a requested stop); under several processes a collective that
        fails because another rank died becomes one :class:`TrainingError`."""
        try:
            return self._fit()
        except RuntimeError as err:
            if self.world_size > 1 and ddp.is_comm_error(err):
                raise ddp.lost(err, f"step {self.state.step}") from None
            raise
        finally:
            # the collapse monitor's hook must not follow the encoder into evaluation (deepcopy)
            self.monitor.close()
            if self.model is not self.method:
                # free the DDP wrapper (and its reducer) now, while the process group is alive: one
                # left to the interpreter's exit, after destroy_process_group, can abort the
                # process ("terminate called without an active exception") after a good run
                import gc

                self.model = self.method
                gc.collect()

    def _fit(self) -> Progress:
        tc = self.cfg.train
        method, st = self.method, self.state
        if st.step == 0 and not self.resumed:
            method.prepare(self.x, self.views)
            if tc.rollback:  # something to roll back to even before the first epoch ends
                self.save_checkpoint()
        method.train()
        if self.console is not None and tc.progress != "none" and self.main:
            extra = f", {self.world_size} processes" if self.world_size > 1 else ""
            self.console.print(
                f"precision: {self.precision} ({self.precision_reason}){extra}", highlight=False
            )
        bar = _ProgressBar(
            tc.progress if self.main else "none", tc.epochs, self.steps_per_epoch, st, self.console
        )
        self._bad_in_a_row = 0
        with StopFlag() as stop, bar:
            while self.state.epoch < tc.epochs:
                st = self.state
                order = epoch_order(
                    len(self.x), tc.seed, st.epoch, self.device, method, tc.batch_size
                )
                epoch = _Epoch(time.perf_counter())
                while self.state.step_in_epoch < self.steps_per_epoch:
                    step = self._step(order)
                    if (
                        step is None
                    ):  # rolled back: the epoch (and its order) comes from the checkpoint
                        break
                    epoch.add(step)
                    bar.update(self.state, step.loss, step.lr, step.rate)
                    self._log_step(step)
                    if self._stop_requested(stop):
                        raise Interrupted(
                            self.run_dir, self.state.step, self._stop_signum, self.save_checkpoint()
                        )
                else:
                    self._end_epoch(epoch, bar, stop)
        return self.state

    def _step(self, order: torch.Tensor) -> _Step | None:
        """One optimisation step at the current position (the state advances), or None when a run
        of bad steps rolled the run back to its last checkpoint."""
        tc, method, opt, st = self.cfg.train, self.method, self.optimizer, self.state
        t0 = time.perf_counter()
        batch, views = self.batch_at(order, st.step_in_epoch, st.step)
        t2 = time.perf_counter()
        t1 = t2 - self._views_time
        lr = self._lr_at(st)
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_factor", 1.0)
        opt.zero_grad(set_to_none=True)
        loss, logs, finite = self.forward_backward(views, batch)
        overflow = False
        if finite:
            self.scaler.unscale_(opt)
            if self.cfg.optim.clip_grad:
                gn = torch.nn.utils.clip_grad_norm_(method.parameters(), self.cfg.optim.clip_grad)
            else:  # a finite loss can still give an Inf/NaN gradient: never step on one
                gn = _grad_norm(method)
            finite = bool(torch.isfinite(gn))  # gradients are averaged: the same on every rank
            overflow = not finite and self.scaler.is_enabled()
        t3 = time.perf_counter()
        if finite:
            self.scaler.step(opt)  # opt.step() when the scaler is disabled
            self.scaler.update()
            method.after_step(st.step, self.total_steps)
            self._bad_in_a_row = 0
        else:
            opt.zero_grad(set_to_none=True)
            st.skipped_steps += 1
            if overflow:  # fp16 gradients overflowed: the scaler lowers its scale (not a bad step)
                self.scaler.update()
            else:
                self._bad_in_a_row += 1
                if self._bad_in_a_row >= tc.max_bad_steps:
                    self._roll_back(self._bad_in_a_row)  # TrainingError unless rollback is on
                    self._bad_in_a_row = 0
                    return None
        t4 = time.perf_counter()
        for k, dt in zip(self.timing, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            self.timing[k] += dt
        st.step += 1
        st.step_in_epoch += 1
        st.train_time += t4 - t0
        if not finite:
            value = float("nan")
        elif self.world_size > 1:
            value = float(self._loss_sum[0]) / self.world_size
        else:
            value = float(loss.detach())
        collapse = self.monitor(views, st.step) if finite else {}
        rate = tc.batch_size / max(t4 - t0, 1e-9)
        return _Step(value, lr, rate, finite, {**logs, **collapse})

    def _lr_at(self, st: Progress) -> float:
        o = self.cfg.optim
        base = lr_at(
            st.step, self.total_steps, self.base_lr, self.warmup, o.schedule, o.min_lr_ratio
        )
        return base * st.lr_scale

    def _log_step(self, step: _Step) -> None:
        """Every 10th step and an epoch's last go to the loggers."""
        st = self.state
        if st.step % 10 == 0 or st.step_in_epoch == self.steps_per_epoch:
            rec = {
                "step": st.step,
                "epoch": st.epoch + st.step_in_epoch / self.steps_per_epoch,
                "loss": step.loss,
                "lr": step.lr,
                "samples_per_s": step.rate,
            }
            rec.update({k: float(v) for k, v in step.logs.items()})
            self.log(rec)

    def _end_epoch(self, epoch: _Epoch, bar: _ProgressBar, stop: StopFlag) -> None:
        """The epoch's record, the evaluation hook (rank 0), the checkpoint, a pending stop."""
        tc, st = self.cfg.train, self.state
        st.epoch += 1
        st.step_in_epoch = 0
        dt = time.perf_counter() - epoch.started
        rec = {
            "step": st.step,
            "epoch": st.epoch,
            "epoch_loss": epoch.loss / max(epoch.n, 1),
            "epoch_time_s": dt,
            "epoch_samples_per_s": epoch.n * tc.batch_size / max(dt, 1e-9),
            "skipped_steps": st.skipped_steps,
        }
        if self.on_epoch_end is not None and self.main:  # evaluation: rank 0 only
            extra = self.on_epoch_end(st.epoch, self.method)
            self.method.train()
            if extra:
                rec.update(extra)
        self.log(rec)
        bar.epoch_done(st, rec)
        saved = None
        if st.epoch % every_epochs(tc.checkpoint_every, tc.epochs) == 0 or st.epoch == tc.epochs:
            saved = self.save_checkpoint()  # every rank waits for rank 0 (and its evaluation)
        else:
            ddp.barrier("the end of an epoch")
        if self._stop_requested(stop):  # asked during the epoch's end (evaluation, checkpoint)
            raise Interrupted(
                self.run_dir, st.step, self._stop_signum, saved or self.save_checkpoint()
            )

    _stop_signum = signal.SIGTERM

    def _stop_requested(self, stop: StopFlag) -> bool:
        """Whether any rank was asked to stop (one small all-reduce per step under several
        processes)."""
        if self.world_size == 1:
            self._stop_signum = stop.signum
            return stop.requested
        flags = torch.zeros(2)
        if stop.requested:
            flags[0], flags[1] = 1.0, float(int(stop.signum))
        flags = ddp.reduce_sum(flags, "a stop request")
        n, total = int(flags[0]), int(flags[1])
        if n == 0:
            return False
        if stop.requested:
            self._stop_signum = stop.signum
        else:  # the signal the other ranks got (SIGTERM when they got different ones)
            self._stop_signum = signal.Signals(total // n) if total % n == 0 else signal.SIGTERM
        return True


@dataclass
class _Step:
    """What one step gives the epoch, the progress bar and the loggers."""

    loss: float  #: the global loss (NaN for a skipped step)
    lr: float
    rate: float  #: samples per second
    finite: bool
    logs: dict  #: the method's logs and the collapse monitor's statistics


@dataclass
class _Epoch:
    """The running sums of one epoch."""

    started: float
    loss: float = 0.0
    n: int = 0

    def add(self, step: _Step) -> None:
        if step.finite:
            self.loss += step.loss
            self.n += 1


def _grad_norm(method: Method) -> torch.Tensor:
    """The total 2-norm of the gradients (Inf or NaN if any is), without changing them."""
    grads = [p.grad for p in method.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads)


class _ProgressBar:
    """A rich progress bar on a terminal; one line per epoch otherwise."""

    def __init__(self, mode: str, epochs: int, steps: int, st: Progress, console=None):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        if mode == "auto":
            mode = "bar" if self.console.is_terminal else "lines"
        self.mode, self.epochs, self.steps = mode, epochs, steps
        self.bar = None
        self.task = None
        if mode == "bar":
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("epoch {task.fields[ep]}/{task.fields[eps]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}"),
                TextColumn("lr {task.fields[lr]:.2e}"),
                TextColumn("{task.fields[rate]:.0f} samples/s"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self.task = self.bar.add_task(
                "train",
                total=epochs * steps,
                completed=st.step,
                ep=st.epoch + 1,
                eps=epochs,
                loss=math.nan,
                lr=0.0,
                rate=0.0,
            )

    def __enter__(self):
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False

    def update(self, st: Progress, loss: float, lr: float, rate: float):
        if self.bar is not None:
            self.bar.update(
                self.task,
                completed=st.step,
                ep=min(st.epoch + 1, self.epochs),
                loss=loss,
                lr=lr,
                rate=rate,
            )

    def epoch_done(self, st: Progress, rec: dict):
        if self.mode == "lines":
            extra = "".join(f" {k} {v:.4f}" for k, v in rec.items() if k.startswith("knn"))
            remaining = (self.epochs - st.epoch) * rec["epoch_time_s"]
            self.console.print(
                f"epoch {st.epoch}/{self.epochs} loss {rec['epoch_loss']:.4f} "
                f"{rec['epoch_samples_per_s']:.0f} samples/s {rec['epoch_time_s']:.1f}s "
                f"eta {remaining:.0f}s{extra}",
                highlight=False,
            )
