"""The interface every modality implements (see :mod:`selfsup.modalities`)."""

from __future__ import annotations

import math
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Required

import torch
from pydantic import TypeAdapter, ValidationError
from torch import Tensor, nn
from typing_extensions import TypedDict

if TYPE_CHECKING:
    from ..methods.base import Capability, InputBatch, Needs


class EncoderMeta(TypedDict, total=False):
    """The fields every saved encoder's ``meta`` may hold (see :class:`Modality`); each modality
    extends it with its own (:attr:`Modality.meta_type`). Fields a version added later are not
    required, so files written before them keep loading."""

    format: str
    #: absent from image encoders written before modalities existed (they load as images)
    modality: str
    backbone: Required[str]
    cifar_stem: Required[bool | None]
    width: Required[float]
    method: str
    plugins: list[str]
    data_options: dict[str, Any]
    in_channels: int
    mean: list[float]
    std: list[float]
    preset: str
    view_spec: dict[str, Any]


@cache
def _adapter(meta_type: type) -> TypeAdapter[Any]:
    return TypeAdapter(meta_type)


def meta_problem(meta_type: type, meta: Any) -> str | None:
    """What is wrong with ``meta`` as a ``meta_type`` (one line naming the first bad field), or
    None when it fits."""
    try:
        _adapter(meta_type).validate_python(meta, strict=False)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(k) for k in first["loc"]) or "meta"
        return f"field '{where}': {first['msg']}"
    return None


class Modality:
    """One kind of data. Subclasses implement each method for their container type.

    ``meta`` is the JSON-able description of the encoder's input that a run writes beside the
    encoder weights (``encoder.safetensors``): it holds at least ``modality``, ``backbone``,
    ``in_channels`` and the input statistics (``mean``, ``std``), plus what the modality needs
    (``image_size`` for images, ``length`` for series); :meth:`build_encoder` rebuilds the
    encoder from it alone. Its fields are declared by :attr:`meta_type`, a :class:`EncoderMeta`
    subclass, and checked when a run records it and when a file is loaded.
    """

    #: the TypedDict of this modality's ``meta`` (:class:`EncoderMeta` and its own fields)
    meta_type: ClassVar[type] = EncoderMeta

    name: str = ""
    #: the number of dimensions of a batch of model inputs (images: N, C, H, W -> 4)
    input_ndim: int = 2
    #: how a loaded encoder's input looks, for its input check (empty: not checked)
    input_layout: str = ""
    #: whether dimension 1 of the input is the channel axis (``meta["in_channels"]``)
    input_channels_dim: bool = True
    #: the range input values must lie in (None: any)
    input_range: tuple[float, float] | None = None
    #: how many encoders its data needs (2: a paired modality's two towers)
    towers: int = 1
    #: whether its views are graphs with edges (methods declare ``Needs(edges=True)`` for them)
    edges: bool = False
    #: the fields of the ``views`` config section it reads besides the shared ``preset`` and
    #: ``n_views`` (a field of another modality given for this data is refused in one line); a
    #: modality with parameters of its own registers a section
    #: (:func:`selfsup.config.register_views`)
    views_fields: frozenset[str] = frozenset()
    #: whether a run on unlabelled data of this kind is still evaluated (paired data: cross-modal
    #: retrieval needs only the pairing); its ``evaluate`` then gets unlabelled (bank, query)
    evaluates_unlabelled: bool = False
    #: whether its backbones can start from a local checkpoint folder (``model.pretrained``; the
    #: others refuse the field in one line)
    loads_pretrained: bool = False

    def check_meta(self, meta: Any) -> None:
        """Raise ValueError (one line: the first field that does not fit :attr:`meta_type`) when
        ``meta`` cannot describe an encoder of this modality."""
        problem = meta_problem(self.meta_type, meta)
        if problem is not None:
            raise ValueError(f"not the metadata of a '{self.name}' encoder: {problem}")

    # -- configuration -------------------------------------------------------------------------
    def backbone_names(self) -> list[str]:
        """The backbone names this modality builds (``--backbone`` accepts any modality's)."""
        return []

    def config_defaults(self, cfg, train) -> dict:
        """Defaults for this kind of data, as nested sections (``{"train": {"epochs": 100}}``): each
        applies only where the user (options, recipe, ``--set``) left the field unset. Evaluation
        protocols belong here too (``{"eval": {"protocols": [...]}}``). Default: none."""
        return {}

    # -- training ------------------------------------------------------------------------------
    def reads_views(self, data) -> frozenset[str]:
        """The ``views`` fields a run on ``data`` reads (default :attr:`views_fields`)."""
        return self.views_fields

    def check_config(self, cfg) -> None:
        """Checks of this modality's own config fields before any data is read (images: the
        evaluation batch at the configured size fits in memory); called for every registered
        modality, so it must look only at fields that are set. Default: none."""

    def check_run(self, cfg, train, bank) -> None:
        """Checks of a run on this modality's decoded data, before the run directory is created
        (images: the evaluation batch fits in memory at the real size). Default: none."""

    def check_input(self, data) -> None:
        """Raise :class:`~selfsup.errors.DataError` (one line naming the data and what to do) when
        ``data`` (a container of this modality, training or evaluation data) cannot be trained or
        evaluated on. The validation pass calls it before the run directory is created. Default:
        nothing beyond the container's own checks."""

    def input_meta(self, cfg, train, needs: Needs) -> tuple[str, dict[str, Any]]:
        """``(view preset name, meta)`` for training on ``train`` under ``cfg`` (a Config) for a
        method with ``needs`` (its view preset where this modality has one, a minimum length)."""
        raise NotImplementedError

    def build_views(self, cfg, meta: dict) -> nn.Module:
        """The training view maker: a module mapping a raw batch to ``cfg.views.n_views`` views."""
        raise NotImplementedError

    def default_backbone(self, meta: dict) -> str:
        raise NotImplementedError

    def backbone_for(self, capability: Capability, meta: dict) -> str | None:
        """This modality's backbone with ``capability`` (see :class:`selfsup.methods.Needs`) for
        inputs of ``meta``, or None when it has none. Default: none."""
        return None

    def resolve_backbone(self, name: str, meta: dict, needs: Needs, method: str = "") -> str:
        """The backbone a run builds: ``name`` unless it is ``auto``; then the backbone with the
        capability the method needs, else :meth:`default_backbone`."""
        from ..errors import ConfigError

        if name != "auto":
            return name
        if needs.encoder is None:
            return self.default_backbone(meta)
        found = self.backbone_for(needs.encoder, meta)
        if found is None:
            from ..methods import capability_words

            raise ConfigError(
                f"{f'method {method!r}' if method else 'the method'} needs a backbone with "
                f"{capability_words(needs.encoder)}, and no "
                f"{self.name} backbone has them; choose another method"
            )
        return found

    def build_backbone(self, name: str, meta: dict, model_cfg) -> nn.Module:
        """A backbone by name, with ``out_dim``; ``auto`` resolved by :meth:`default_backbone`."""
        raise NotImplementedError

    def build_encoder(self, meta: dict, model_cfg) -> nn.Module:
        """The encoder for ``meta``: :meth:`build_backbone` behind the input normalisation (a
        composite modality, such as ``paired``, returns its own module). The caller seeds torch."""
        from ..models.encoder import Encoder

        backbone = self.build_backbone(model_cfg.backbone, meta, model_cfg)
        mean, std = self.normalisation(meta)
        return Encoder(backbone, mean, std)

    def reconstruction(self, x: Tensor, dim: int, hidden: int, max_size: int):
        """A small autoencoder for the raw training samples ``x`` (as :meth:`to_tensor` gives
        them), for methods that pretrain one before their own training (G-SimCLR): a
        :class:`selfsup.models.autoencoder.Reconstruction`. Default: an MLP on flattened samples
        (``hidden`` wide, ``dim`` features); a modality with spatial structure overrides it
        (images: a small ConvNet on images resized to ``max_size`` px at most)."""
        from ..models.autoencoder import flat_reconstruction

        return flat_reconstruction(x, dim, hidden)

    def to_tensor(self, data) -> InputBatch:
        """The samples as one CPU tensor indexed by sample (the trainer moves it to the device)."""
        raise NotImplementedError

    # -- evaluation ----------------------------------------------------------------------------
    def prepare(self, x: Any, meta: dict) -> Any:
        """The deterministic model input for a raw batch (as :meth:`to_tensor` gives it)."""
        raise NotImplementedError

    def raw_features(self, data, meta: dict) -> Tensor:
        """The raw-input baseline: one flat, standardised feature vector per sample."""
        raise NotImplementedError

    def evaluate(
        self,
        encoder: nn.Module,
        bank,
        query,
        meta: dict,
        ec,
        device: torch.device,
        protocols: list[str],
    ) -> dict:
        """The protocols on ``encoder``'s features of a labelled (bank, query) pair (``ec``: an
        EvalConfig). Features come from :meth:`prepare` and :func:`selfsup.eval.extract`."""
        from ..eval import extract
        from ..eval import protocols as EP

        def prepare(x):
            return self.prepare(x, meta)

        xb, xq = self.to_tensor(bank), self.to_tensor(query)
        fb = extract(encoder, xb, prepare, ec.batch_size, device)
        fq = extract(encoder, xq, prepare, ec.batch_size, device)
        inputs = EP.EvalInputs(
            fb,
            torch.from_numpy(bank.y),
            fq,
            torch.from_numpy(query.y),
            ec,
            encoder,
            xb,
            xq,
            prepare,
            device,
        )
        return EP.run(protocols, inputs)

    def raw_baseline(self, bank, query, meta: dict, ec, protocols: list[str]) -> dict:
        """The feature protocols on :meth:`raw_features` (the raw-input baseline)."""
        from ..eval import protocols as EP

        inputs = EP.EvalInputs(
            self.raw_features(bank, meta),
            torch.from_numpy(bank.y),
            self.raw_features(query, meta),
            torch.from_numpy(query.y),
            ec,
        )
        return EP.run(protocols, inputs, skip_unavailable=True)

    # -- shared helpers --------------------------------------------------------------------------
    def check_eval_data(self, data, meta: dict) -> None:
        """Raise :class:`DataError` when ``data`` cannot be evaluated by an encoder of ``meta``."""
        from ..errors import DataError

        if type(data).modality != self.name:
            raise DataError(
                f"evaluation data '{data.name}' is {type(data).modality} data but the encoder "
                f"takes {self.name}; give --eval-data of the same kind"
            )
        if data.channels != meta["in_channels"]:
            raise DataError(
                f"evaluation data '{data.name}' has {data.channels} channel(s) but the encoder "
                f"takes {meta['in_channels']}; give --eval-data of the same kind"
            )

    def normalisation(self, meta: dict) -> tuple[Tensor, Tensor]:
        """``(mean, std)`` shaped to broadcast over a batch of model inputs."""
        shape = (1, len(meta["mean"])) + (1,) * (self.input_ndim - 2)
        return (
            torch.tensor(meta["mean"], dtype=torch.float32).view(shape),
            torch.tensor(meta["std"], dtype=torch.float32).view(shape),
        )


def step_budget(n: int, max_batch: int, steps: int, max_epochs: int = 1000) -> dict:
    """``train`` defaults for ``n`` training samples: a batch of at most ``max_batch`` (half the
    data on small sets, at least 2) and the epochs that make about ``steps`` optimisation steps."""
    batch = max(2, min(max_batch, n // 2))
    return {
        "batch_size": batch,
        "epochs": max(1, min(max_epochs, math.ceil(steps / max(1, n // batch)))),
    }


def fill_unset(cfg, defaults: dict):
    """``cfg`` (a Config) with ``defaults`` (:meth:`Modality.config_defaults`) applied to the fields
    its user did not set (pydantic's ``model_fields_set`` of each section); the result is
    validated."""
    from ..config import validate

    d = cfg.to_dict()
    changed = False
    for section, fields in defaults.items():
        sec = getattr(cfg, section)
        for k, v in fields.items():
            if k not in sec.model_fields_set and d[section][k] != v:
                d[section][k], changed = v, True
    return validate(d) if changed else cfg


REGISTRY: dict[str, Modality] = {}
#: the modality of encoder files written before the modality was recorded
LEGACY_MODALITY = "image"


def check_encoder_input(module, args) -> None:
    """Forward pre-hook of :func:`selfsup.load_encoder`'s module: refuse an input of the wrong
    layout, channels, dtype or range with a message that says what the encoder expects (the
    modality's :attr:`Modality.input_layout`, :attr:`Modality.input_ndim` and
    :attr:`Modality.input_range`)."""
    from ..errors import ConfigError

    meta = getattr(module, "meta", None) or {}
    mod = REGISTRY.get(meta.get("modality", LEGACY_MODALITY))
    if mod is None or not mod.input_layout or not args:
        return
    ndim, c, x = mod.input_ndim, meta.get("in_channels"), args[0]
    channels = mod.input_channels_dim
    expect = f"this encoder expects {mod.input_layout}" + (
        f" with C = {c}" if channels and c else ""
    )
    if not isinstance(x, torch.Tensor):
        raise ConfigError(f"{expect}; got a {type(x).__name__} (convert with torch.as_tensor)")
    if x.dim() != ndim:
        raise ConfigError(f"{expect}; got a tensor of shape {tuple(x.shape)}")
    if channels and c and x.shape[1] != c:
        hint = (
            " (channels last? use x.permute(0, 3, 1, 2))" if ndim == 4 and x.shape[-1] == c else ""
        )
        raise ConfigError(f"{expect}; got {x.shape[1]} channels in shape {tuple(x.shape)}{hint}")
    if not x.is_floating_point():
        hint = " (divide uint8 images by 255)" if x.dtype == torch.uint8 else ""
        raise ConfigError(f"{expect}; got dtype {x.dtype}{hint}")
    if mod.input_range is not None and x.numel():
        lo, hi = float(x.min()), float(x.max())
        if lo < mod.input_range[0] - 0.01 or hi > mod.input_range[1] + 0.01:
            hint = " (divide 0-255 images by 255)" if hi > 1.5 and lo >= 0 else ""
            raise ConfigError(f"{expect}; got values from {lo:g} to {hi:g}{hint}")


def modality_for(meta: dict) -> Modality:
    """The modality of a saved encoder's ``meta`` (files from before modalities were recorded hold
    images)."""
    return get(meta.get("modality", LEGACY_MODALITY))


def register(m: Modality) -> Modality:
    """Add a modality instance to the registry (under ``m.name``)."""
    REGISTRY[m.name] = m
    return m


def get(name: str) -> Modality:
    """A registered modality by name; an unknown name is a :class:`ConfigError`."""
    from ..errors import ConfigError

    if name not in REGISTRY:
        raise ConfigError(f"unknown modality '{name}'; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def modality_of(data) -> Modality:
    """The modality of a sample container (:class:`selfsup.data.base.Samples`)."""
    return get(type(data).modality)
