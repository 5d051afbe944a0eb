"""What every method is: a module that owns encoder, heads and loss and returns (loss, logs).

A method receives its parts (the encoder and its hyperparameters); it never sees the optimiser, the
data source or evaluation. Per-step updates (EMA targets, queues, predictor resets) go in
``after_step``. All state that must survive a resume is in ``state_dict()`` (parameters and
buffers) or in ``extra_state()`` (JSON-serialisable values).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from ..config import ModelConfig
from ..models.encoder import Encoder


class Params(BaseModel):
    """Base of each method's hyperparameter model (the ``loss`` section of the config)."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class Batch:
    """A batch of raw samples with their dataset indices; labels only for SupCon-like methods."""

    x: Tensor
    index: Tensor
    y: Tensor | None = None


@dataclass
class Context:
    """What a method may know about its surroundings when it is built."""

    model: ModelConfig = field(default_factory=ModelConfig)
    n_samples: int = 0
    n_views: int = 2
    extra: dict[str, Any] = field(default_factory=dict)


#: the base of every ``Params`` model (``Method.Params`` shadows the name inside the class body)
ParamsModel = Params


class Method(nn.Module):
    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    uses_labels: ClassVar[bool] = False
    #: how many encoders (towers) the method trains: 1, or 2 for paired modalities (a ``TwoTower``)
    towers: ClassVar[int] = 1
    #: optimiser defaults this method was tuned with (merged under the user's choices)
    optim_defaults: ClassVar[dict[str, Any]] = {}

    #: the validated instance of this class's ``Params`` model (each method reads its own fields)
    params: Any

    def __init__(self, encoder: Encoder, params: ParamsModel, ctx: Context) -> None:
        super().__init__()
        self.encoder = encoder
        self.params = params
        self.ctx = ctx

    def forward(self, views: list[Tensor], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        raise NotImplementedError

    def after_step(self, step: int, total_steps: int) -> None:
        """Called after each optimiser step (EMA, queues, ...). Default: nothing."""

    def prepare(self, x: Tensor, views: Any) -> None:
        """Called once before the first step of a new run (not on resume: state comes from the
        checkpoint) with the whole uint8 training set on the device and the view maker.
        For work a method does before training (G-SimCLR's autoencoder and clustering)."""

    def batch_order(self, n: int, batch_size: int, generator: torch.Generator) -> Tensor | None:
        """The order of sample indices for one epoch (consecutive ``batch_size`` chunks are the
        batches), or None for a uniform random permutation. ``generator`` is seeded per epoch."""
        return None

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def embed(self, views: list[Tensor]) -> list[Tensor]:
        """Embeddings whose collapse the trainer monitors (default: the encoder's features)."""
        return [self.encoder(v) for v in views]
