"""Test-only fault injection for the DDP CLI tests (on PYTHONPATH only in tests/train).

``SELFSUP_TEST_KILL=RANK:STEP``: the process of that rank kills itself with SIGKILL (as ``kill -9``
would) when it starts global step STEP (0-based) of a fresh process. ``SELFSUP_TEST_STEP_SLEEP``:
seconds each step sleeps (keeps a run alive long enough to be signalled).
``SELFSUP_TEST_SIGNAL=RANK:STEP:NAME``: the process of that rank sends itself signal NAME (``TERM``)
when it starts global step STEP, as ``kill -TERM`` on that one worker would.
"""

import os

_kill = os.environ.get("SELFSUP_TEST_KILL")
_sleep = float(os.environ.get("SELFSUP_TEST_STEP_SLEEP", "0"))
_signal = os.environ.get("SELFSUP_TEST_SIGNAL")
if (_kill or _sleep or _signal) and "RANK" in os.environ:
    import signal
    import time

    from selfsup.train import loop

    _real = loop.Trainer.forward_backward

    def forward_backward(self, views, batch):
        if _kill:
            rank, step = (int(v) for v in _kill.split(":"))
            if self.rank == rank and self.state.step == step:
                os.kill(os.getpid(), signal.SIGKILL)
        if _signal:
            rank, step, name = _signal.split(":")
            if self.rank == int(rank) and self.state.step == int(step):
                os.kill(os.getpid(), getattr(signal, "SIG" + name))
        if _sleep:
            time.sleep(_sleep)
        return _real(self, views, batch)

    loop.Trainer.forward_backward = forward_backward
