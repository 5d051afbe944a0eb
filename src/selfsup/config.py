"""Typed, validated configuration.

A run is described by one :class:`Config`. It is built from defaults, then a YAML recipe
(``--config``), then command-line options, then ``--set key=value`` overrides, and validated once
at that boundary: a wrong value raises :class:`~selfsup.errors.ConfigError` naming the field.

Method hyperparameters (temperature, queue size, momentum, ...) live in the free-form ``params``
section and are validated by the method itself, which knows its own fields. ``loss`` is that
section's former name and is still read everywhere a section name is (recipes, ``--set loss.x=..``,
Python dicts, the config of an older run directory); it is written as ``params``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    source: str = "digits"
    """A built-in name (``digits``) or a path: image folder, CIFAR python batches, or ``.npz``."""
    eval_source: str | None = None
    """Labelled data for evaluation; default: the test split of ``source`` (or ``source``
    itself)."""
    image_size: int | None = Field(default=None, ge=4, le=1024)
    """Resize decoded images to this size; default: keep (mixed sizes go to the most common)."""
    skip_corrupt: bool = False
    cache_dir: str | None = None
    """Where decoded arrays are cached; default ``$SELFSUP_CACHE`` or ``~/.cache/selfsup``."""
    limit: int | None = Field(default=None, ge=1)
    """Use only the first ``limit`` training samples (after a seeded shuffle): quick experiments."""
    label_column: str | None = None
    """Tables (CSV/Parquet): the column that holds the labels (``--label-column NAME``)."""
    normal_label: str | None = None
    """Anomaly detection (``--normal-label VALUE``, any modality): train on the training samples of
    this class only (a class name, or a label number) and evaluate on the test split, the other
    classes being the anomalies: AUROC/AUPRC of the method's own score (when it has one) and of a
    kNN distance, beside IsolationForest, LocalOutlierFactor and distance to the mean on the raw
    input."""
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)
    """Source options that modalities add (``--set data.options.text_column=body``, or the flag
    the modality registers, such as ``--text-column``); see :func:`selfsup.data.register_option`."""
    pair_channels: str | None = None
    """Split a multichannel series source into two modalities for a paired (two-tower) run:
    ``"0,1,2:3,4,5"`` (channels of modality a, ``:``, channels of modality b)."""

    @field_validator("normal_label", mode="before")
    @classmethod
    def _normal_label(cls, v):
        return None if v is None else str(v)


#: views sections that modalities add (``views.<name>``, a pydantic model of their own fields):
#: a modality defined outside this module registers its view parameters here with
#: :func:`register_views` instead of adding fields to :class:`ViewsConfig`
VIEWS_SECTIONS: dict[str, type[BaseModel]] = {}

#: fields that sat directly under ``views`` before their modality had a section (``views.size``
#: is now ``views.image.size``): each former name and the sections that read it
FORMER_VIEWS_FIELDS: dict[str, list[str]] = {}


def register_views(name: str, model: type[BaseModel], former: tuple[str, ...] = ()) -> None:
    """Add ``views.<name>``, validated by ``model`` (its defaults apply when the section is
    absent); ``cfg.views.<name>`` is then an instance of ``model``. ``former``: fields of
    ``model`` that were once given directly under ``views`` (``views.FIELD``): such a key is
    still read, as ``views.<name>.FIELD`` of every section that names it."""
    if name in ViewsConfig.model_fields:
        raise ValueError(
            f"views.{name} is a built-in field; register the section under another name"
        )
    VIEWS_SECTIONS[name] = model
    for field in former:
        if field not in model.model_fields:
            raise ValueError(f"former field '{field}' is not a field of views.{name}")
        claims = FORMER_VIEWS_FIELDS.setdefault(field, [])
        if name not in claims:
            claims.append(name)


def former_views(data: dict) -> dict:
    """``data`` (the ``views`` section as given) with former flat fields moved into the sections
    that now hold them; the same field given both ways with different values is refused."""
    return _move_former_views(data)


def _move_former_views(data: dict) -> dict:
    """:func:`former_views` once the sections are registered."""
    out = dict(data)
    for field, sections in FORMER_VIEWS_FIELDS.items():
        if field not in out or field in ViewsConfig.model_fields:
            continue
        value = out.pop(field)
        for name in sections:
            section = out.get(name)
            if isinstance(section, BaseModel):
                section = section.model_dump(exclude_unset=True)
            section = dict(section or {})
            if field in section and section[field] != value:
                raise ValueError(
                    f"views.{field} and views.{name}.{field} are both set, to different values; "
                    f"views.{field} is the former name of views.{name}.{field}: keep only that"
                )
            section[field] = value
            out[name] = section
    return out


def _validate_section(name: str, model: type[BaseModel], value: Any) -> BaseModel:
    """``views.<name>`` validated by ``model``; its errors keep the section in their location
    (``views.audio.gain_db``, not ``views.gain_db``)."""
    try:
        return model.model_validate(value or {})
    except ValidationError as err:
        details: list[Any] = [
            {"type": e["type"], "loc": (name, *e["loc"]), "input": e["input"]}
            | ({"ctx": e["ctx"]} if "ctx" in e else {})
            for e in err.errors()
        ]
        raise ValidationError.from_exception_data(err.title, details) from None


class ViewsConfig(_Section):
    """The views section. Shared by every modality: ``preset``, ``n_views`` and the number of
    multi-crop's local crops; each modality reads its own section (``views.image``,
    ``views.series``, ..., registered with :func:`register_views`; the fields of one that the data
    does not read are refused in one line). Fields that once sat directly here (``views.size``)
    are still read as their section's (``views.image.size``)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    preset: str = "auto"
    """The view preset: each modality has its own and ``auto`` picks the method's or the data's
    (images: ``digits`` for small grayscale images, ``cifar`` for colour ones; see each
    modality's tutorial); an unknown name is refused in one line."""
    n_views: int = Field(default=2, ge=2, le=16)
    local_crops: int = Field(default=0, ge=0, le=16)
    """Multi-crop: this many extra small views besides the ``n_views`` global ones (0: off); the
    modality makes them (images: ``views.image.local_size``, ``views.image.local_scale``)."""

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = former_views(data)
        for k, v in list(out.items()):
            if k in cls.model_fields:
                continue
            model = VIEWS_SECTIONS.get(k)
            if model is None:
                known = ", ".join([*cls.model_fields, *VIEWS_SECTIONS])
                raise ValueError(f"unknown field views.{k} (known: {known})")
            out[k] = v if isinstance(v, model) else _validate_section(k, model, v)
        for k, model in VIEWS_SECTIONS.items():
            out.setdefault(k, model())
        return out

    def __getattr__(self, name: str) -> Any:
        # a former flat field (``cfg.views.size``) reads its section's value
        sections = FORMER_VIEWS_FIELDS.get(name)
        if sections and not name.startswith("_"):
            return getattr(getattr(self, sections[0]), name)
        return super().__getattr__(name)  # type: ignore[misc]


class ModelConfig(_Section):
    backbone: str = "auto"
    """``auto`` (a small ConvNet on CPU-sized data), ``convnet``, ``resnet18``, ``resnet34``,
    ``resnet50``."""
    cifar_stem: bool | None = None
    """3x3 stride-1 stem without max-pool; default on for images of 64 px or less."""
    width: float = Field(default=1.0, gt=0, le=8)
    pretrained: str | None = None
    """A local checkpoint folder the modality's backbone starts from (``--set
    model.pretrained=DIR``; a modality that has none refuses it in one line). Nothing is
    downloaded; the modality records what it needs in the encoder's metadata."""
    proj_hidden: int = Field(default=512, ge=1)
    proj_dim: int = Field(default=128, ge=1)


class OptimConfig(_Section):
    name: Literal["sgd", "lars", "adamw", "rmsprop"] = "adamw"
    lr: float | None = None
    """Base learning rate; default depends on the optimiser (scaled by batch_size / 256)."""
    weight_decay: float | None = Field(default=None, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    warmup_epochs: float = Field(default=0.0, ge=0)
    decay_all: bool = False
    """Weight decay on every parameter, biases and normalisation parameters included (torch's
    optimisers' own behaviour; TS2Vec's authors); default: on weights of rank >= 2 only."""
    lr_factors: dict[str, float] = Field(default_factory=dict)
    """Learning-rate factors by parameter-name prefix of the method (``encoder.b.``: a paired
    run's tower b): those parameters train at the scheduled rate times the factor (the longest
    matching prefix wins). The paired modality sets one when its members' default rates differ
    (a pretrained text tower beside an image tower: ``3e-5 / 2e-3``); ``{}`` turns it off."""
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1)
    clip_grad: float | None = Field(default=None, gt=0)

    @field_validator("lr")
    @classmethod
    def _lr(cls, v):
        if v is not None and not v > 0:
            raise ValueError("learning rate must be > 0")
        return v


#: base learning rate per 256 samples (SGD/LARS scale linearly with the batch; AdamW and RMSprop
#: do not). RMSprop: Keras's defaults (lr 1e-3, rho 0.9, epsilon 1e-7), as VIME's authors train.
DEFAULT_LR = {"sgd": 0.06, "lars": 0.3, "adamw": 2e-3, "rmsprop": 1e-3}
UNSCALED = ("adamw", "rmsprop")


def resolved_lr(cfg: OptimConfig, batch_size: int) -> float:
    """``cfg.lr``, else the optimiser's default for a batch of ``batch_size``."""
    if cfg.lr is not None:
        return cfg.lr
    base = DEFAULT_LR[cfg.name]
    return base if cfg.name in UNSCALED else base * batch_size / 256


#: a number of epochs between two records (checkpoints, diagnostics), or ``auto``
EveryEpochs = Annotated[int, Field(ge=1)] | Literal["auto"]


def every_epochs(setting: int | str, epochs: int) -> int:
    """The epochs between two records for ``setting`` in a run of ``epochs``: ``auto`` is every
    epoch up to 100 epochs, else ``ceil(epochs / 100)`` (about 100 records a run)."""
    return max(1, math.ceil(epochs / 100)) if setting == "auto" else int(setting)


class TrainConfig(_Section):
    epochs: int = Field(default=50, ge=1)
    batch_size: int = Field(default=256, ge=2)
    seed: int = 0
    device: str = "auto"
    threads: int | None = Field(default=None, ge=1)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """``bf16``: the method's forward under bfloat16 autocast (about 2x faster convolutions on CPUs
    with AVX512-BF16 or AMX, and on GPUs); contrastive losses still compute their logits in fp32.
    ``fp16``: float16 autocast with a gradient scaler (CUDA only). ``auto``: bf16 where the hardware
    runs it natively (a CPU with AVX512-BF16/AMX, a GPU of compute capability >= 8.0), else fp32;
    the choice is logged."""
    compile: bool = False
    """Compile the encoder with ``torch.compile`` (the first steps are slow; needs a C compiler)."""
    channels_last: bool = False
    """Keep image views and convolution weights in channels-last memory format."""
    chunk_size: int | None = Field(default=None, ge=1)
    """Gradient caching: encode the batch this many samples at a time (exact for the InfoNCE family
    and CLIP; the batch size must be a multiple of it). Default: the whole batch at once."""
    nproc: int = Field(default=1, ge=1)
    """Processes on this machine (``--nproc``); the batch size stays the global batch."""
    sync_bn: bool = True
    """Under several processes: synchronise BatchNorm statistics over all ranks."""
    view_sharding: Literal["global", "local"] = "global"
    """Under several processes: ``global`` makes each rank draw the views of the whole global batch
    (keyed by seed and step) and keep its slice, so views do not depend on the process count;
    ``local`` draws only the rank's slice (keyed by seed, step and rank): less work, but the views
    depend on the process count."""
    dist_timeout: float = Field(default=900.0, gt=0)
    """Seconds a rank waits for the others in a collective before the job stops with an error."""
    checkpoint_every: EveryEpochs = "auto"
    """Write a checkpoint every this many epochs (and always at the end, and on SIGINT/SIGTERM).
    ``auto``: every epoch in runs of up to 100 epochs, else every ``ceil(epochs / 100)`` (at most
    about 100 checkpoints: a 1,500-epoch full-graph run spent a tenth of its time writing one per
    epoch)."""
    max_bad_steps: int = Field(default=5, ge=1)
    """Stop after this many non-finite losses in a row (each is skipped and counted)."""
    rollback: bool = False
    """Instead of stopping after ``max_bad_steps``: reload the last checkpoint and go on with the
    learning rate multiplied by ``rollback_lr_factor`` (at most ``max_rollbacks`` times)."""
    rollback_lr_factor: float = Field(default=0.5, gt=0, le=1)
    max_rollbacks: int = Field(default=3, ge=1)
    progress: Literal["auto", "bar", "lines", "none"] = "auto"
    logger: list[Literal["tensorboard", "mlflow"]] = Field(default_factory=list)
    """Extra experiment trackers besides metrics.jsonl (``--logger tensorboard,mlflow``)."""

    @field_validator("logger", mode="before")
    @classmethod
    def _loggers(cls, v):
        if isinstance(v, str):
            return [x.strip() for x in v.split(",") if x.strip()]
        return [] if v is None else v


class EvalConfig(_Section):
    protocols: list[str] = Field(default_factory=lambda: ["knn", "linear"])
    knn_k: int = Field(default=200, ge=1)
    knn_t: float = Field(default=0.1, gt=0)
    knn_center: bool = True
    """Centre features by the bank's mean before the cosine (label-free, bank only; see
    :mod:`selfsup.eval.knn`). ``false``: the plain weighted kNN of lightly and solo-learn, the
    protocol of published kNN figures and of this project's tables measured before issue 14."""
    linear_l2: float = Field(default=1e-4, ge=0)
    linear_max_iter: int = Field(default=200, ge=1)
    baselines: bool = True
    batch_size: int = Field(default=512, ge=1)
    knn_every: int = Field(default=0, ge=0)
    """Also run kNN after every this many epochs (0: only at the end); logged to metrics.jsonl."""
    knn_sweep_k: list[int] = Field(default_factory=lambda: [10, 20, 50, 100, 200])
    knn_sweep_t: list[float] = Field(default_factory=lambda: [0.02, 0.05, 0.07, 0.1, 0.2, 0.5])
    sgd_epochs: int = Field(default=100, ge=1)
    """Epochs of the SGD linear probe (protocol ``linear_sgd``)."""
    sgd_lr: float = Field(default=0.1, gt=0)
    fewshot_fractions: list[float] = Field(default_factory=lambda: [0.01, 0.1])
    fewshot_steps: int = Field(default=100, ge=1)
    seed: int = 0
    """Seed of the evaluation protocols (few-label subsets, probe initialisation, k-means)."""
    diagnostics: bool = True
    """Compute diagnostics (alignment, uniformity, RankMe, ...) on a held-out batch at the end of
    epochs (see ``diagnostics_every``)."""
    diagnostics_every: EveryEpochs = "auto"
    """Epochs between two diagnostics records (the last epoch always has one). ``auto``: every
    epoch in runs of up to 100 epochs, else every ``ceil(epochs / 100)``."""
    diagnostics_batch: int = Field(default=256, ge=4)
    report: bool = True
    """Write report.html at the end of training (needs matplotlib)."""


class Config(_Section):
    method: str = "simclr"
    data: DataConfig = Field(default_factory=DataConfig)
    views: ViewsConfig = Field(default_factory=ViewsConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    params: dict[str, Any] = Field(default_factory=dict)
    """The method's hyper-parameters (``params.temperature=0.2``), checked by the method; its
    documentation page lists them (``selfsup methods`` gives the address). Formerly ``loss`` (still
    accepted)."""
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    out: str | None = None
    plugins: list[str] = Field(default_factory=list)
    """Plug-ins the run loads first (``--plugin FILE.py`` or a module name; see
    :mod:`selfsup.plugins`): a modality, source, view section or method defined outside selfsup."""

    @model_validator(mode="before")
    @classmethod
    def _former_names(cls, data: Any) -> Any:
        return upgrade(data) if isinstance(data, dict) else data

    @property
    def loss(self) -> dict[str, Any]:
        """The former name of :attr:`params` (code written before the rename keeps working)."""
        return self.params

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


#: former top-level section names -> current ones (recipes and run directories of older versions)
FORMER_SECTIONS = {"loss": "params"}


def upgrade(d: dict) -> dict:
    """``d`` with former section names renamed (a copy when any is present). A former and a current
    section both present are merged, the current one's keys winning; a key given in both with
    different values is refused, since which one the user meant cannot be known."""
    if not any(k in d for k in FORMER_SECTIONS):
        return d
    out = dict(d)
    for old, new in FORMER_SECTIONS.items():
        if old not in out:
            continue
        former = out.pop(old)
        current = out.get(new)
        if not isinstance(former, dict) or not isinstance(current, dict):
            out[new] = former if current is None else current
            continue
        both = [k for k in former if k in current and former[k] != current[k]]
        if both:
            raise ConfigError(
                f"'{old}.{both[0]}' and '{new}.{both[0]}' are both set, to different values; "
                f"'{old}' is the former name of the '{new}' section: keep only '{new}.{both[0]}'"
            )
        out[new] = {**former, **current}
    return out


def _format_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; `selfsup train --help` lists the options)"
        parts.append(f"config field '{loc}': {msg}")
    return "; ".join(parts)


def validate(d: dict) -> Config:
    """Build a :class:`Config` from a nested dict, raising :class:`ConfigError` on bad values.
    The plug-ins it names load first (they may register the names it uses)."""
    plugins = d.get("plugins") if isinstance(d, dict) else None
    if plugins:
        from .plugins import load_all

        if isinstance(plugins, str):
            d = {**d, "plugins": [plugins]}
        load_all(d["plugins"] if isinstance(d["plugins"], list) else [])
    d = upgrade(d) if isinstance(d, dict) else d
    try:
        return Config.model_validate(d)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err)) from None


def load_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """Read a YAML recipe safely (no object construction) into a nested dict.

    A recipe may build on others: ``defaults: [base.yaml, ...]`` (paths relative to the recipe)
    are read first, in order, and the recipe's own sections are merged over them."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file '{p}' does not exist; give the path of a YAML recipe")
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"config file '{p}' is not valid YAML ({first})") from None
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ConfigError(
            f"config file '{p}' must hold a mapping of sections, got {type(d).__name__}"
        )
    d = upgrade(d)
    bases = d.pop("defaults", None)
    if bases is None:
        return d
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"config file '{p}': defaults must be a list of recipe paths")
    out: dict = {}
    for base in bases:
        bp = (p.parent / base).resolve()
        if bp in _seen or bp == p.resolve():
            raise ConfigError(f"config file '{p}': defaults include '{base}' in a cycle")
        out = merge(out, load_yaml(bp, (*_seen, p.resolve())))
    return merge(out, d)


def parse_value(text: str) -> Any:
    """Parse the value of a ``--set key=value`` option with YAML's safe scalar rules."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def set_path(d: dict, key: str, value: Any) -> None:
    """Set ``d['a']['b'] = value`` for ``key='a.b'``, creating sections as needed."""
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(
            f"--set key '{key}' is malformed; use section.field=value, e.g. params.temperature=0.2"
        )
    parts[0] = FORMER_SECTIONS.get(parts[0], parts[0])
    if any(k in d for k in FORMER_SECTIONS):  # a dict or recipe that still uses a former name
        up = upgrade(d)
        d.clear()
        d.update(up)
    cur = d
    for p in parts[:-1]:
        nxt = cur.get(p)
        if nxt is None:
            nxt = cur[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set key '{key}': '{p}' is a value, not a section")
        cur = nxt
    cur[parts[-1]] = value


def apply_overrides(d: dict, overrides: list[str]) -> dict:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"--set '{item}' has no '='; use section.field=value, e.g. optim.lr=0.1"
            )
        key, text = item.split("=", 1)
        set_path(d, key.strip(), parse_value(text.strip()))
    return d


def merge(base: dict, extra: dict) -> dict:
    """Recursively merge ``extra`` into a copy of ``base``."""
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out
