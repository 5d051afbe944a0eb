"""Graphs: the nodes of one graph are the samples (:class:`~selfsup.data.base.GraphData`).

- ``to_tensor`` gives a :class:`~selfsup.models.graph.GraphBatch` (the whole graph + node ids); the
  trainer's ``x[idx]`` selects batch nodes and keeps the graph, so message passing is full-graph
  (transductive) and a method's loss runs over the batch nodes. By default the batch is every node
  (full-batch training, as the graph papers do).
- views: :mod:`selfsup.views.graph` (edge dropping, feature masking, node dropping, random-walk
  subgraphs); encoders: :mod:`selfsup.models.graph` (``gcn``, ``gat``, ``gin``, ``mlp``).
- evaluation: the features of every node are computed once (one full-graph pass); the feature
  protocols run on (bank = the train-mask nodes, query = the test-mask nodes); ``node`` is the
  linear probe (``node_top1``); ``node_adam`` (GraphMAE's probe) also gets the val-mask nodes'
  features, to choose its epoch; ``cluster`` (k-means, ``cluster_nmi``, ``cluster_ari``) runs on
  every labelled node of the graph, as graph-clustering papers report it.
- baselines: the same protocols on the raw (normalised) node features (the probe and k-means on raw
  features) and spectral clustering of the adjacency (``spectral_nmi``, ``spectral_ari``).

Only methods written for graphs train here (``graphmae``, ``grace``, ``scgc``: they declare
``graph = True``); the image/series/table methods concatenate views as tensors and are refused in
one line when the run is built (:func:`selfsup.methods.build`), as graph methods are on other data.

Defaults where the user set nothing (:meth:`GraphModality.config_defaults`): the batch is every
node, fp32, the ``node`` and ``cluster`` protocols (and ``node_adam`` where the graph has
validation nodes, as Cora's public split), and the method's own ``graph_defaults`` (its paper's
Cora setting: epochs, learning rate, weight decay, backbone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Required

import numpy as np
import torch
from torch import Tensor, nn

from ..config import register_views
from ..data.base import GraphData
from ..errors import ConfigError
from ..models.graph import GraphBatch, GraphEncoder
from ..views.graph import GraphViewsConfig
from .base import EncoderMeta, Modality, register

if TYPE_CHECKING:
    from ..methods.base import Needs


class GraphMeta(EncoderMeta, total=False):
    """A graph encoder's ``meta``: node features, their normalisation, the training graph's size."""

    in_channels: Required[int]
    feature_norm: str
    n_nodes: int
    n_classes: int
    mean: Required[list[float]]
    std: Required[list[float]]


class GraphModality(Modality):
    name = "graph"
    meta_type = GraphMeta
    views_fields = frozenset({"graph"})
    edges = True
    input_ndim = 2

    def backbone_names(self) -> list[str]:
        from ..models.graph import GRAPH_BACKBONES

        return list(GRAPH_BACKBONES)

    def config_defaults(self, cfg, train: GraphData) -> dict:
        # fp32: bf16 autocast was not faster on Cora (98 s vs 112 s for 10 GraphMAE steps) and sums
        # of messages in bf16 lose precision
        out: dict[str, dict[str, Any]] = {
            "train": {"batch_size": len(train), "epochs": 200, "precision": "fp32"},
            "optim": {"lr": 1e-3},
            "eval": {"protocols": ["node", "cluster"]},
        }
        if train.val_nodes is not None and len(train.val_nodes):  # the graph papers' own probe
            out["eval"]["protocols"] = ["node", "node_adam", "cluster"]
        return out

    def input_meta(self, cfg, train: GraphData, needs: Needs):
        from dataclasses import asdict, replace

        from ..views.graph import GRAPH_PRESETS

        preset = cfg.views.preset
        if preset == "auto":
            preset = needs.view_preset if needs.view_preset in GRAPH_PRESETS else "default"
        if preset not in GRAPH_PRESETS:
            raise ConfigError(
                f"unknown graph view preset '{preset}'; choose one of: auto, "
                f"{', '.join(GRAPH_PRESETS)}"
            )
        spec = GRAPH_PRESETS[preset]
        if cfg.views.graph.corruption is not None:
            spec = replace(spec, p_feature=[cfg.views.graph.corruption])
        x = train.features.astype(np.float64)  # type: ignore[union-attr]
        norm = "row" if (x >= 0).all() else "standard"
        mean, std = x.mean(0), x.std(0)
        std = np.where(std < 1e-6, 1.0, std)
        n_classes = (
            int(train.node_y.max()) + 1
            if train.node_y is not None and (train.node_y >= 0).any()
            else 0
        )
        return preset, {
            "in_channels": train.channels,
            "feature_norm": norm,
            "mean": [float(m) for m in mean],
            "std": [float(s) for s in std],
            "preset": preset,
            "view_spec": asdict(spec),
            "n_nodes": train.n_nodes,
            "n_classes": n_classes,
        }

    def build_views(self, cfg, meta: dict) -> nn.Module:
        from ..views.graph import GraphViews, GraphViewSpec

        return GraphViews(GraphViewSpec(**meta["view_spec"]), cfg.views.n_views)

    def default_backbone(self, meta: dict) -> str:
        return "gcn"

    def build_backbone(self, name: str, meta: dict, model_cfg) -> nn.Module:
        from ..models.graph import build_graph_backbone

        return build_graph_backbone(
            self.default_backbone(meta) if name == "auto" else name,
            meta["in_channels"],
            model_cfg.width,
        )

    def build_encoder(self, meta: dict, model_cfg) -> nn.Module:
        backbone = self.build_backbone(model_cfg.backbone, meta, model_cfg)
        mean, std = self.normalisation(meta)
        return GraphEncoder(
            backbone, meta.get("feature_norm", "standard"), mean, std, int(meta.get("n_classes", 0))
        )

    def to_tensor(self, data: GraphData) -> GraphBatch:
        return GraphBatch(
            torch.from_numpy(data.features),
            torch.from_numpy(data.edge_index),
            torch.from_numpy(data.nodes),
        )

    def prepare(self, x: GraphBatch, meta: dict) -> GraphBatch:
        return x

    def raw_features(self, data: GraphData, meta: dict) -> Tensor:
        """The node features as the encoder sees them (row-normalised or standardised)."""
        return self._normalise(torch.from_numpy(data.x).float(), meta)

    def _normalise(self, x: Tensor, meta: dict) -> Tensor:
        if meta.get("feature_norm") == "row":
            return x / x.sum(1, keepdim=True).clamp(min=1e-12)
        mean, std = self.normalisation(meta)
        return (x - mean) / std

    # -- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def node_features(self, encoder: nn.Module, data: GraphData, device: torch.device) -> Tensor:
        """Every node's features in one full-graph pass (eval mode), on the CPU."""
        was = encoder.training
        encoder.eval()
        b = self.to_tensor(data)
        full = GraphBatch(b.x, b.edge_index).to(device)
        f = encoder(full).float().cpu()
        encoder.train(was)
        return f

    def _run(
        self,
        fb: Tensor,
        fq: Tensor,
        fall: Tensor | None,
        bank: GraphData,
        query: GraphData,
        ec,
        protocols: list[str],
    ) -> dict:
        from ..eval import protocols as EP

        out: dict[str, float] = {}
        rest = [p for p in protocols if p != "cluster"]
        if rest:
            inputs = EP.EvalInputs(fb, torch.from_numpy(bank.y), fq, torch.from_numpy(query.y), ec)
            vn = bank.val_nodes
            if fall is not None and vn is not None and bank.node_y is not None:
                inputs.val, inputs.val_y = (
                    fall[torch.from_numpy(vn)],
                    torch.from_numpy(bank.node_y[vn]),
                )
            out.update(EP.run(rest, inputs, skip_unavailable=True))
        if "cluster" in protocols:
            ally = bank.node_y
            if fall is not None and ally is not None and (ally >= 0).sum() > 1:
                keep = np.flatnonzero(ally >= 0)
                out.update(
                    EP.run(
                        ["cluster"],
                        EP.EvalInputs(
                            fb,
                            torch.from_numpy(bank.y),
                            fall[keep],
                            torch.from_numpy(ally[keep]),
                            ec,
                        ),
                    )
                )
            else:
                out.update(
                    EP.run(
                        ["cluster"],
                        EP.EvalInputs(
                            fb, torch.from_numpy(bank.y), fq, torch.from_numpy(query.y), ec
                        ),
                    )
                )
        return out

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
        f = self.node_features(encoder, bank, device)
        return self._run(
            f[torch.from_numpy(bank.nodes)],
            f[torch.from_numpy(query.nodes)],
            f,
            bank,
            query,
            ec,
            protocols,
        )

    def raw_baseline(self, bank, query, meta: dict, ec, protocols: list[str]) -> dict:
        f = self._normalise(torch.from_numpy(bank.features).float(), meta)
        out = self._run(
            f[torch.from_numpy(bank.nodes)],
            f[torch.from_numpy(query.nodes)],
            f,
            bank,
            query,
            ec,
            protocols,
        )
        if "cluster" in protocols and bank.node_y is not None and (bank.node_y >= 0).sum() > 1:
            from ..eval.graph import spectral_scores

            out.update(spectral_scores(bank.edge_index, bank.n_nodes, bank.node_y, seed=ec.seed))
        return out

    def check_eval_data(self, data, meta: dict) -> None:
        super().check_eval_data(data, meta)


register(GraphModality())

register_views("graph", GraphViewsConfig, former=("corruption",))
