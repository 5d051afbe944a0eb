"""Run the selfsup CLI with test-only fault injection. Used by tests/faults; never by the library.

Environment (all optional):

FAULT_AT        which checkpoint save of this process to act on (1-based)
FAULT_PHASE     where to stop inside that save:
                ``mid_write``     the temporary file holds half of the checkpoint
                ``before_rename`` the temporary file is complete but not yet renamed
                ``after_rename``  renamed, older checkpoints not yet pruned
                ``in_step``       (not a save) inside the FAULT_AT-th training step of this process
FAULT_READY     a file created once the process has stopped there (holds the pid)
FAULT_RELEASE   a file whose appearance lets the process go on (default: wait to be killed)
FAULT_FSIZE_AFTER, FAULT_FSIZE
                after that many saves, limit the size of any file written to FAULT_FSIZE bytes
                (RLIMIT_FSIZE): the kernel then fails the writes, as on a full disk
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time
from pathlib import Path


def main() -> int:
    from selfsup import cli
    from selfsup.train import checkpoint as ckpt
    from selfsup.train import loop

    at = int(os.environ.get("FAULT_AT", "0"))
    phase = os.environ.get("FAULT_PHASE", "")
    ready, release = os.environ.get("FAULT_READY"), os.environ.get("FAULT_RELEASE")
    fsize_after = int(os.environ.get("FAULT_FSIZE_AFTER", "0"))
    count = 0
    real_save_file, real_save = ckpt.save_file, ckpt.save

    def pause() -> None:
        if ready:
            Path(ready).write_text(str(os.getpid()))
        while not (release and os.path.exists(release)):
            time.sleep(0.01)

    def save_file(tensors, filename, metadata=None):
        real_save_file(tensors, filename, metadata=metadata)
        if count == at and phase == "mid_write":
            os.truncate(filename, os.path.getsize(filename) // 2)
            pause()
        elif count == at and phase == "before_rename":
            pause()

    def save(path, state):
        nonlocal count
        count += 1
        real_save(path, state)
        if count == at and phase == "after_rename":
            pause()
        if fsize_after and count == fsize_after:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG instead
            limit = int(os.environ.get("FAULT_FSIZE", "4096"))
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    steps = 0
    real_lr_at = loop.lr_at

    def lr_at(*args, **kwargs):  # called once in every training step, before the forward pass
        nonlocal steps
        steps += 1
        if steps == at and phase == "in_step":
            pause()
        return real_lr_at(*args, **kwargs)

    ckpt.save_file, ckpt.save, loop.lr_at = save_file, save, lr_at
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
