"""GraphMAE: masked graph autoencoder with a re-masked GNN decoder and the scaled cosine error.

Hou, Liu, Cen, Dong, Yang, Wang, Tang. *GraphMAE: Self-Supervised Masked Graph Autoencoders.*
KDD 2022; authors' code THUDM/GraphMAE (``graphmae/models/edcoder.py``: ``encoding_mask_noise``,
``mask_attr_prediction``; Cora defaults in ``configs.yml``). A fraction ``mask_rate`` of the batch
nodes is masked: of those, ``1 - replace_rate`` get the learnable ``[MASK]`` token as features and
``replace_rate`` the features of random nodes; the encoder runs on the whole graph; its output goes
through a linear map, the masked nodes' codes are set to zero again (re-masking) and a one-layer
GAT decoder reconstructs the features; the loss is the scaled cosine error with exponent ``gamma``
on the masked nodes (:func:`selfsup.losses.graphmae.sce_loss`). Graphs only (``Needs(edges=True)``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor, nn

from ..losses.graphmae import sce_loss, sce_loss_linear
from ..losses.l2 import l2_penalty
from ..models.encoder import Encoder
from ..models.graph import (
    SPARSE_DENSITY,
    GATLayer,
    GraphBatch,
    RowPatch,
    SparseRows,
    csr_rows,
    encode_normalised,
    input_dim,
    normalised_features,
)
from . import register
from .base import Batch, Context, Method, Needs, Params, ParamsModel


class GraphMAEParams(Params):
    mask_rate: float = Field(default=0.5, gt=0, lt=1)
    """Fraction of the batch nodes masked each step (Cora: 0.5)."""
    replace_rate: float = Field(default=0.05, ge=0, lt=1)
    """Of the masked nodes, the fraction given a random node's features instead of the token
    (Cora: 0.05)."""
    gamma: float = Field(default=3.0, ge=1)
    """The scaled cosine error's exponent (``alpha_l``; Cora: 3)."""
    l2: float = Field(default=2e-4, ge=0)
    """Coupled L2 weight decay on every parameter, as a penalty ``l2 / 2 * sum(w^2)`` added to the
    loss: with ``optim.weight_decay: 0`` (the method's default) this is the authors'
    ``torch.optim.Adam(weight_decay=l2)`` (Cora: 2e-4), where AdamW's decay is decoupled from the
    gradient's scale (measured on Cora: +1.0 point with the authors' probe, BENCHMARKS.md)."""


@register
class GraphMAE(Method):
    name = "graphmae"
    paper = "Hou et al. 2022, GraphMAE: Self-Supervised Masked Graph Autoencoders"
    Params: ClassVar[type[ParamsModel]] = GraphMAEParams
    needs = Needs(
        edges=True,
        view_preset="none",
        #: the paper's Cora setting (configs.yml), applied where the user set nothing
        defaults={
            "train": {"epochs": 1500},
            # the authors' Adam weight decay 2e-4 is coupled: ``params.l2``, not AdamW's decay
            "optim": {"lr": 1e-3, "weight_decay": 0.0},
            "model": {"backbone": "gat", "width": 2.0},
        },
    )

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        d_in, d = input_dim(encoder), int(encoder.out_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, d_in))
        self.encoder_to_decoder = nn.Linear(d, d, bias=False)
        self.decoder = GATLayer(d, d_in, heads=1, feat_drop=0.2, attn_drop=0.1)

    def _features(self, v: GraphBatch) -> tuple[Tensor, Tensor | None]:
        """The normalised node features and, when sparse, their CSR form, computed once per
        feature tensor (the graph's data does not change between steps; a new or modified tensor
        is normalised again)."""
        key = (v.x, v.x._version, v.x.device)
        cached = getattr(self, "_feature_cache", None)
        if cached is not None and cached[0][0] is key[0] and cached[0][1:] == key[1:]:
            return cached[1], cached[2]
        x = normalised_features(self.encoder, v).detach()
        sparse = int(torch.count_nonzero(x)) <= SPARSE_DENSITY * x.numel()
        # CSR on CPU only (measured there; elsewhere the dense matrix, as before)
        cpu_float = x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
        csr = x.to_sparse_csr() if sparse and cpu_float else None
        self._feature_cache = (key, x, csr)
        return x, csr

    def forward(self, views: list[GraphBatch], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        v = views[0]
        p = self.params
        x, csr = self._features(v)
        nodes, n = v.nodes, len(x)
        perm = nodes[torch.randperm(len(nodes), device=x.device)]
        masked = perm[: int(p.mask_rate * len(nodes))]
        n_noise = int(p.replace_rate * len(masked))
        copy = None
        if n_noise > 0:
            order = torch.randperm(len(masked), device=x.device)
            token, noise = (
                masked[order[: len(masked) - n_noise]],
                masked[order[len(masked) - n_noise :]],
            )
            copy = (noise, torch.randint(0, n, (n_noise,), device=x.device))
        else:
            token = masked
        # the token rows apart from the data (a GAT multiplies the data rows as a sparse matrix):
        # the token rows are 0 + mask_token, the noise rows copies of random nodes' features
        data = None
        if csr is not None:
            other = torch.ones(n, dtype=torch.bool, device=x.device)
            other[token] = False
            other = other.nonzero().flatten()
            src = torch.arange(n, device=x.device)
            if copy is not None:
                src[copy[0]] = copy[1]
            data = (other, csr_rows(csr, src.index_select(0, other)))
        h_in = RowPatch(x, token, self.mask_token, copy=copy, sparse=data)
        # re-mask before the decoder (the masked rows' codes are zero), which scores the masked
        # nodes only: of the encoder's output only the unmasked in-neighbours of masked nodes
        # are read, and only their rows are computed (the encoder's last layer) and mapped
        is_masked = torch.zeros(n, dtype=torch.bool, device=x.device)
        is_masked[masked] = True
        src, dst = v.edge_index
        read = torch.zeros(n, dtype=torch.bool, device=x.device)
        read[src[is_masked[dst] & ~is_masked[src]]] = True
        read = read.nonzero().flatten()
        z = encode_normalised(self.encoder, h_in, v.edge_index, read)
        rep = SparseRows(self.encoder_to_decoder(z), read, n)  # zero but at the rows read
        dec = self.decoder
        if dec.heads == 1 and dec.d_out > dec.fc.in_features:  # 512 -> 1,433 on Cora
            # the loss from the aggregates (the decoder's output is agg W^T + b): the 1,433-wide
            # reconstructions are never formed
            agg = _fp32(dec(rep, v.edge_index, masked, project=False)[:, 0])
            target = _fp32(x.index_select(0, masked) if csr is None else csr_rows(csr, masked))
            w, b = _fp32(dec.fc.weight), _fp32(dec.bias)
            loss = sce_loss_linear(target, agg, w, b, p.gamma)
        else:
            recon = dec(rep.dense(), v.edge_index, masked)  # only the masked rows are scored
            loss = sce_loss(_fp32(x.index_select(0, masked)), _fp32(recon), p.gamma)
        if p.l2 > 0:
            return loss + l2_penalty(self, p.l2), {"sce": float(loss.detach())}
        return loss, {}


def _fp32(t: Tensor) -> Tensor:
    """At least float32 (the loss of a bf16 run in fp32; float64 stays, for the tests)."""
    return t if t.dtype == torch.float64 else t.float()
