"""Training: the loop, checkpoints, optimisers and schedules."""

from .loop import Interrupted, Progress, Trainer

__all__ = ["Trainer", "Progress", "Interrupted"]
