"""Paired modalities: a :class:`~selfsup.data.paired.PairedData` is two member modalities of the
same samples. Everything here is composed from the members' own modalities:

- views: each member's view maker on its half of the batch; with ``views.n_views = 2K`` each
  tower gets K views, interleaved ``[a_1, b_1, a_2, b_2, ...]`` (so views 0 and 1 are a pair);
- encoder: :class:`~selfsup.models.two_tower.TwoTower`, each member's encoder plus a projection
  head per tower (``model.proj_hidden``, ``model.proj_dim``) into the shared space;
- meta: ``towers: {a: meta_a, b: meta_b}``, each a complete single-modality encoder description, so
  either tower can be rebuilt and used alone;
- evaluation: each tower's protocols on its own features (metrics ``a_*``, ``b_*``) and cross-modal
  retrieval in the shared space (``xmodal_*``, :mod:`selfsup.eval.xmodal`); the raw-input baseline
  per tower.

A paired run needs a method that trains two towers (``clip``, ``isogclr_pair``, ``xhcl``); a
single-modality method is refused when it is built, and the other way round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Required

import torch
from torch import Tensor, nn

from ..data.paired import TOWERS, PairedData
from ..models.two_tower import PairTensor, TwoTower
from .base import REGISTRY, EncoderMeta, Modality, get, register

if TYPE_CHECKING:
    from ..methods.base import Needs


class PairedViews(nn.Module):
    """Each member's views of its half of a :class:`PairTensor`, interleaved ``[a_1, b_1, ...]``."""

    def __init__(self, views_a: nn.Module, views_b: nn.Module):
        super().__init__()
        self.views_a, self.views_b = views_a, views_b

    def forward(self, x: PairTensor) -> list[Tensor]:
        va, vb = self.views_a(x.a), self.views_b(x.b)
        return [v for pair in zip(va, vb, strict=True) for v in pair]


class PairedMeta(EncoderMeta, total=False):
    """A two-tower encoder's ``meta``: each tower's own ``meta`` (under ``towers["a"]`` and
    ``towers["b"]``) and the projection heads' sizes."""

    towers: Required[dict[str, dict[str, Any]]]
    proj_hidden: Required[int]
    proj_dim: Required[int]


class PairedModality(Modality):
    name = "paired"
    meta_type = PairedMeta
    towers = 2
    evaluates_unlabelled = True
    #: ``model.pretrained`` reaches the members that take it (a text tower); :meth:`check_run`
    #: refuses it where neither member does
    loads_pretrained = True

    @staticmethod
    def members(meta: dict) -> list[tuple[str, Modality, dict]]:
        """``(tower, member modality, member meta)`` for both towers."""
        return [(t, get(meta["towers"][t]["modality"]), meta["towers"][t]) for t in TOWERS]

    def check_meta(self, meta: Any) -> None:
        super().check_meta(meta)
        for t in TOWERS:
            tower = meta["towers"].get(t)
            if not isinstance(tower, dict) or tower.get("modality") not in REGISTRY:
                raise ValueError(f"not the metadata of a '{self.name}' encoder: no tower '{t}'")
            try:
                get(tower["modality"]).check_meta(tower)
            except ValueError as err:
                raise ValueError(f"tower '{t}': {err}") from None

    # -- configuration -------------------------------------------------------------------------
    def reads_views(self, data: PairedData) -> frozenset[str]:
        return get(data.a.modality).reads_views(data.a) | get(data.b.modality).reads_views(data.b)

    def check_run(self, cfg, train: PairedData, bank) -> None:
        if cfg.model.pretrained and not any(
            get(train.member(t).modality).loads_pretrained for t in TOWERS
        ):
            from ..errors import ConfigError

            kinds = " and ".join(train.member(t).modality for t in TOWERS)
            raise ConfigError(
                f"model.pretrained applies to members whose backbones start from a checkpoint "
                f"folder (text), and the members of '{train.name}' are {kinds}; drop "
                "model.pretrained"
            )

    def check_input(self, data: PairedData) -> None:
        for t in TOWERS:
            member = data.member(t)
            get(member.modality).check_input(member)

    def config_defaults(self, cfg, train: PairedData) -> dict:
        """Member a's defaults (series: batch size, epochs, lr, the svm protocol), where unset.
        One run has one optimiser; when member b's default learning rate (its modality's, else the
        optimiser's) differs from member a's (a pretrained text tower: 3e-5 beside images' 2e-3),
        tower b's encoder trains at b's rate relative to a's through ``optim.lr_factors``
        (``{"encoder.b.": rate_b / rate_a}``; a learning rate the user sets scales both)."""
        from ..config import resolved_lr

        da = get(train.a.modality).config_defaults(cfg, train.a)
        db = get(train.b.modality).config_defaults(cfg, train.b)
        batch = da.get("train", {}).get("batch_size", cfg.train.batch_size)
        rate_a, rate_b = (
            d.get("optim", {}).get("lr")
            or resolved_lr(cfg.optim.model_copy(update={"lr": None}), batch)
            for d in (da, db)
        )
        if rate_b != rate_a:
            factors = {"encoder.b.": float(rate_b) / float(rate_a)}
            da = {**da, "optim": {**da.get("optim", {}), "lr_factors": factors}}
        return da

    # -- training ------------------------------------------------------------------------------
    def input_meta(self, cfg, train: PairedData, needs: Needs):
        towers, presets = {}, []
        for t in TOWERS:
            d = train.member(t)
            mod = get(d.modality)
            preset, im = mod.input_meta(cfg, d, needs)
            backbone = mod.resolve_backbone(cfg.model.backbone, im, needs, cfg.method)
            towers[t] = {
                "format": "selfsup-encoder-1",
                "modality": mod.name,
                "backbone": backbone,
                "cifar_stem": cfg.model.cifar_stem,
                "width": cfg.model.width,
                **im,
            }
            presets.append(preset)
        preset = presets[0] if presets[0] == presets[1] else "+".join(presets)
        return preset, {
            "in_channels": train.channels,
            "towers": towers,
            "proj_hidden": cfg.model.proj_hidden,
            "proj_dim": cfg.model.proj_dim,
        }

    def build_views(self, cfg, meta: dict) -> nn.Module:
        k = max(1, cfg.views.n_views // 2)
        sub = cfg.model_copy(update={"views": cfg.views.model_copy(update={"n_views": k})})
        (_, ma, meta_a), (_, mb, meta_b) = self.members(meta)
        return PairedViews(ma.build_views(sub, meta_a), mb.build_views(sub, meta_b))

    def default_backbone(self, meta: dict) -> str:
        return "two_tower"

    def build_encoder(self, meta: dict, model_cfg) -> nn.Module:
        from ..models import projection_head

        encoders = []
        for _, mod, m in self.members(meta):
            mc = model_cfg.model_copy(
                update={
                    "backbone": m["backbone"],
                    "cifar_stem": m.get("cifar_stem"),
                    "width": m.get("width", model_cfg.width),
                }
            )
            enc = mod.build_encoder(m, mc)
            enc.meta = m
            encoders.append(enc)
        heads = [
            projection_head(e.out_dim, meta["proj_hidden"], meta["proj_dim"]) for e in encoders
        ]
        return TwoTower(encoders[0], encoders[1], heads[0], heads[1])

    def to_tensor(self, data: PairedData) -> PairTensor:
        return PairTensor(
            get(data.a.modality).to_tensor(data.a), get(data.b.modality).to_tensor(data.b)
        )

    # -- evaluation ----------------------------------------------------------------------------
    def prepare(self, x: PairTensor, meta: dict) -> PairTensor:
        (_, ma, meta_a), (_, mb, meta_b) = self.members(meta)
        return PairTensor(ma.prepare(x.a, meta_a), mb.prepare(x.b, meta_b))

    def raw_features(self, data: PairedData, meta: dict) -> Tensor:
        """Both members' raw features side by side."""
        return torch.cat(
            [mod.raw_features(data.member(t), m) for t, mod, m in self.members(meta)], 1
        )

    def raw_baseline(
        self, bank: PairedData, query: PairedData, meta: dict, ec, protocols: list[str]
    ) -> dict:
        out: dict[str, float] = {}
        if not (bank.labelled and query.labelled):  # no raw-input retrieval across modalities
            return out
        for t, mod, m in self.members(meta):
            res = mod.raw_baseline(bank.member(t), query.member(t), m, ec, protocols)
            out.update({f"{t}_{k}": v for k, v in res.items()})
        return out

    def evaluate(
        self,
        encoder: nn.Module,
        bank: PairedData,
        query: PairedData,
        meta: dict,
        ec,
        device: torch.device,
        protocols: list[str],
    ) -> dict:
        """Cross-modal retrieval on the query split (``xmodal_*``), then, on labelled pairs, each
        tower's protocols on its own features (``a_*``, ``b_*``)."""
        from ..eval.xmodal import xmodal_eval

        out: dict[str, Any] = xmodal_eval(
            encoder, self.to_tensor(query), lambda x: self.prepare(x, meta), ec.batch_size, device
        )
        if not (bank.labelled and query.labelled):
            return out
        for t, mod, m in self.members(meta):
            res = mod.evaluate(
                encoder.tower(t), bank.member(t), query.member(t), m, ec, device, protocols
            )
            out.update({f"{t}_{k}": v for k, v in res.items()})
        return out

    def check_eval_data(self, data, meta: dict) -> None:
        from ..errors import DataError

        if type(data).modality != self.name:
            raise DataError(
                f"evaluation data '{data.name}' is {type(data).modality} data but the encoder is "
                "a paired (two-tower) encoder; give paired data (--pair-channels, or an .npz with "
                "x_a and x_b)"
            )
        for t, mod, m in self.members(meta):
            mod.check_eval_data(data.member(t), m)


register(PairedModality())
