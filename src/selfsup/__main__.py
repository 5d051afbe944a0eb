import os
import sys

from .cli import main

code = main()
if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
    # a distributed worker (`selfsup train --nproc N`, torchrun) that has finished: every file it
    # wrote is closed; leave without the interpreter's finalization, where a torch.distributed
    # backend's native threads can still abort an exit that had succeeded
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
