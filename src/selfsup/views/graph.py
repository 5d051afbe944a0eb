"""Graph views: each takes a :class:`~selfsup.models.graph.GraphBatch` and returns one with the same
batch nodes and a changed graph (the whole graph: message passing stays transductive).

- edge dropping: each stored edge (each direction) removed with probability ``p_edge`` (GRACE);
- feature masking: each feature column zeroed for every node with probability ``p_feature`` (GRACE);
- node dropping: each node's features zeroed and its edges removed with probability ``p_node``;
- random-walk subgraph: walks of ``walk_length`` steps from each batch node; edges between nodes no
  walk visited are removed and the unvisited nodes' features zeroed (``walk_length`` 0: off).

Randomness comes from torch's default generator (the trainer seeds it per step), so a view depends
only on the seed and the step. Presets: ``grace`` (view 1: edges 0.2, features 0.3; view 2: edges
0.4, features 0.4, GRACE's Cora setting), ``none`` (identity views: GraphMAE and SCGC corrupt the
graph themselves), ``default`` (edges 0.2, features 0.2), ``subgraph`` (random-walk subgraphs of 3
steps, features 0.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from ..models.graph import GraphBatch


@dataclass
class GraphViewSpec:
    """Rates per view (a list: view k uses entry k mod its length)."""

    p_edge: list[float] = field(default_factory=lambda: [0.2])
    p_feature: list[float] = field(default_factory=lambda: [0.2])
    p_node: list[float] = field(default_factory=lambda: [0.0])
    walk_length: int = 0


GRAPH_PRESETS = {
    "default": GraphViewSpec(),
    "grace": GraphViewSpec([0.2, 0.4], [0.3, 0.4], [0.0]),
    "none": GraphViewSpec([0.0], [0.0], [0.0]),
    "subgraph": GraphViewSpec([0.0], [0.2], [0.0], walk_length=3),
}


def drop_edges(b: GraphBatch, p: float) -> GraphBatch:
    if p <= 0:
        return b
    keep = torch.rand(b.edge_index.shape[1], device=b.device) >= p
    return b.replace(edge_index=b.edge_index[:, keep])


def mask_features(b: GraphBatch, p: float) -> GraphBatch:
    if p <= 0:
        return b
    keep = (torch.rand(b.x.shape[1], device=b.device) >= p).to(b.x.dtype)
    return b.replace(x=b.x * keep)


def drop_nodes(b: GraphBatch, p: float) -> GraphBatch:
    if p <= 0:
        return b
    keep = torch.rand(b.num_nodes, device=b.device) >= p
    return _keep_nodes(b, keep)


def random_walk_subgraph(b: GraphBatch, length: int) -> GraphBatch:
    """Keep the nodes visited by one walk of ``length`` uniform steps from each batch node."""
    if length <= 0:
        return b
    n, e = b.num_nodes, b.edge_index
    order = torch.argsort(e[0], stable=True)
    src, dst = e[0][order], e[1][order]
    deg = torch.bincount(src, minlength=n)
    start = torch.cumsum(deg, 0) - deg
    visited = torch.zeros(n, dtype=torch.bool, device=b.device)
    cur = b.nodes.clone()
    visited[cur] = True
    for _ in range(length):
        d = deg[cur]
        r = (torch.rand(len(cur), device=b.device) * d.clamp(min=1)).long()
        nxt = torch.where(
            d > 0, dst[(start[cur] + r).clamp(max=max(len(dst) - 1, 0))] if len(dst) else cur, cur
        )
        cur = nxt
        visited[cur] = True
    return _keep_nodes(b, visited)


def _keep_nodes(b: GraphBatch, keep: Tensor) -> GraphBatch:
    e = b.edge_index
    return GraphBatch(b.x * keep.unsqueeze(1).to(b.x.dtype), e[:, keep[e[0]] & keep[e[1]]], b.nodes)


class GraphViews(nn.Module):
    """``n_views`` random views of a :class:`GraphBatch` under a :class:`GraphViewSpec`."""

    def __init__(self, spec: GraphViewSpec, n_views: int = 2):
        super().__init__()
        self.spec, self.n_views = spec, n_views

    def view(self, b: GraphBatch, k: int) -> GraphBatch:
        s = self.spec
        b = random_walk_subgraph(b, s.walk_length)
        b = drop_nodes(b, s.p_node[k % len(s.p_node)])
        b = drop_edges(b, s.p_edge[k % len(s.p_edge)])
        return mask_features(b, s.p_feature[k % len(s.p_feature)])

    def forward(self, b: GraphBatch) -> list[GraphBatch]:
        return [self.view(b, k) for k in range(self.n_views)]


class GraphViewsConfig(BaseModel):
    """``views.graph``: a field set here replaces the preset's."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    corruption: float | None = Field(default=None, ge=0, le=1)
    """The probability that feature masking zeroes a feature column, for both views (default: the
    preset's; GRACE's 0.3 and 0.4). Formerly ``views.corruption``, still read."""
