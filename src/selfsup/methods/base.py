"""What every method is: a module that owns encoder, heads and loss and returns (loss, logs).

A method receives its parts (the encoder and its hyperparameters); it never sees the optimiser, the
data source or evaluation. Per-step updates (EMA targets, queues, predictor resets) go in
``after_step``. All state that must survive a resume is in ``state_dict()`` (parameters and
buffers) or in ``extra_state()`` (JSON-serialisable values).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from ..config import ModelConfig
from ..models.encoder import Encoder


class Params(BaseModel):
    """Base of each method's hyperparameter model (the ``params`` section of the config)."""

    model_config = ConfigDict(extra="forbid")


@runtime_checkable
class InputBatch(Protocol):
    """What a modality's raw batch is (``Modality.to_tensor``): a Tensor, or a structure with the
    same small surface (a graph's :class:`~selfsup.models.graph.GraphBatch`, a pair's
    :class:`~selfsup.models.two_tower.PairTensor`): its number of samples, indexing by sample
    indices, and ``.to`` a device."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: Any) -> Any: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...


@dataclass
class Batch:
    """A batch of raw samples with their dataset indices; labels only for SupCon-like methods."""

    x: InputBatch
    index: Tensor
    y: Tensor | None = None


@dataclass
class Context:
    """What a method may know about its surroundings when it is built.

    ``batch_size``: the global batch; ``local_crops``: multi-crop's small views after the global
    ones; ``input_shape``: one raw training sample's shape; ``view_size``: the training views' side
    in pixels where the modality has one (images); ``reconstruction``: the modality's small
    autoencoder for the raw samples, ``(x, dim, hidden, max_size) -> Reconstruction`` (see
    :meth:`selfsup.modalities.Modality.reconstruction`; None: a flat MLP). ``extra``: anything else
    a modality or plug-in passes (it also repeats the typed fields under their names, for plug-ins
    written before them).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    n_samples: int = 0
    n_views: int = 2
    batch_size: int | None = None
    local_crops: int = 0
    input_shape: tuple[int, ...] = ()
    view_size: int | None = None
    reconstruction: Callable[..., Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # a Context built the older way (these fields inside ``extra``) reads the same
        old = {**self.extra, "view_size": self.extra.get("view_size", self.extra.get("image_size"))}
        if self.batch_size is None and old.get("batch_size") is not None:
            self.batch_size = int(old["batch_size"])
        if not self.local_crops and old.get("local_crops"):
            self.local_crops = int(old["local_crops"])
        if not self.input_shape and old.get("input_shape"):
            self.input_shape = tuple(old["input_shape"])
        if self.view_size is None and old.get("view_size") is not None:
            self.view_size = int(old["view_size"])


#: a capability a backbone declares in its ``capabilities`` attribute and a method may need, by
#: name; the built-in ones: ``tokens``: a patch-token transformer (masking drops tokens: MAE, CMAE,
#: iBOT); ``feature_maps``: a convolutional network whose feature maps can run sparse (SparK).
#: Modalities add their own with :func:`selfsup.methods.register_capability` (the words a one-line
#: error uses for it), e.g. ``point_patches``: a transformer over tokens of local point groups that
#: encodes any subset of them (Point-MAE, Point-CMAE).
Capability = str


@dataclass(frozen=True)
class Needs:
    """What a method needs from the data and the encoder: the one declaration that modalities,
    validation and the builder read (``Method.needs``, or ``Method.requirements(params)`` where it
    depends on the hyper-parameters). A method never names a modality; a modality maps each need
    to what it has (its view preset, its backbone with a capability), or refuses it in one line.

    Attributes
    ----------
    towers : 1, or 2 for a method that trains two encoders on paired data (a two-tower encoder).
    labels : the method reads labels in training (SupCon); the data must have them.
    edges : the views are graphs (node features with edges) and the encoder passes messages.
    view_preset : the view preset the method was tuned with; a modality that has a preset of this
        name uses it when ``views.preset`` is ``auto``, else its own default.
    n_views : the method uses exactly this many views and no multi-crop (a query and a key, a
        per-step state updated once); others are refused in one line when it is built.
    exact_views : the method works only on ``view_preset``'s views (VIME: view 0 the sample itself,
        the others corrupted copies of the same shape); data whose modality picks other views is
        refused in one line before anything is written.
    encoder : a capability the backbone must have; with ``--backbone auto`` the modality picks
        its backbone with it (:meth:`selfsup.modalities.Modality.backbone_for`).
    min_length : inputs along a sequence axis must be at least this long (TS2Vec's crops).
    defaults : config sections the method was tuned with (``{"train": {"epochs": 1500}}``),
        applied where the user left a field unset.
    """

    towers: int = 1
    labels: bool = False
    edges: bool = False
    view_preset: str | None = None
    n_views: int | None = None
    exact_views: bool = False
    encoder: Capability | None = None
    min_length: int | None = None
    defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Needs:
        """A copy with ``changes`` (e.g. a minimum length computed from the parameters)."""
        return replace(self, **changes)


#: the base of every ``Params`` model (``Method.Params`` shadows the name inside the class body)
ParamsModel = Params


class Method(nn.Module):
    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    #: what the method needs from the data and the encoder (see :class:`Needs`)
    needs: ClassVar[Needs] = Needs()
    #: optimiser defaults this method was tuned with (merged under the user's choices)
    optim_defaults: ClassVar[dict[str, Any]] = {}

    #: the validated instance of this class's ``Params`` model (each method reads its own fields)
    params: Any

    def __init__(self, encoder: Encoder, params: ParamsModel, ctx: Context) -> None:
        super().__init__()
        self.encoder = encoder
        self.params = params
        self.ctx = ctx

    @classmethod
    def requirements(cls, params: ParamsModel) -> Needs:
        """:attr:`needs` for these hyper-parameters (override where a need depends on them)."""
        return cls.needs

    @classmethod
    def data_defaults(
        cls, params: ParamsModel, n_samples: int, sample_shape: tuple[int, ...], epochs: int
    ) -> dict[str, dict[str, Any]]:
        """Config defaults that depend on the training data's size (``n_samples`` samples of
        ``sample_shape``) or on the run's length (``epochs``: the user's, else the defaults'),
        applied over :attr:`Needs.defaults` where the user left a field unset:
        a rule of the authors' such as TS2Vec's 200 or 600 iterations by the data's size."""
        return {}

    @property
    def uses_labels(self) -> bool:
        """Whether the trainer hands this method the labels of each batch."""
        return self.needs.labels

    def forward(self, views: list[Any], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        """The loss of one batch and the values to log. ``views`` holds the views the view maker
        made, each an :class:`InputBatch` of the modality (a Tensor for most; a method over
        another kind declares it in its own signature, e.g. ``list[GraphBatch]``)."""
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

    def resume_hint(self, state: dict[str, Tensor]) -> str | None:
        """Where a checkpoint's weights (``state``, a state dict) do not fit this method: what to
        change so that they do, when the method knows (a default that changed since the checkpoint
        was written), or None. The trainer adds it to its one-line error."""
        return None

    def embed(self, views: list[Tensor]) -> list[Tensor]:
        """Embeddings whose collapse the trainer monitors (default: the encoder's features)."""
        return [self.encoder(v) for v in views]
