"""SCGC and SCGC*: self-supervised contrastive graph clustering with the influence-augmented
contrastive (IAC) loss over adjacency powers and a soft (Student-t) cluster head.

Kulatilleke, Portmann, Chandra. *SCGC: Self-Supervised Contrastive Graph Clustering.* arXiv
2204.12656 (2022); authors' code gayanku/SCGC (``train.py``: ``train_scgc``, ``train_scgc_trim``;
``models.py``: ``SCGC``, ``SCGC_TRIM``). The encoder is SDCN's MLP on node features alone
(backbone ``mlp``: 500-500-2000-10); the graph enters only through the loss, whose positives for
node ``i`` are weighted by ``A~^r`` (``variant: scgc``) or by ``A~ + ... + A~^r`` (``scgc_star``,
the paper's SCGC*, which also drops the autoencoder's decoder). The cluster centres are set by
k-means on the first embeddings (:meth:`SCGC.prepare`); every step the target P is recomputed from
the current Q (the authors update it every epoch, and an epoch is one full-batch step here).
Loss: ``beta KL(P || Q) + alpha L_IAC`` (+ the reconstruction MSE for ``scgc``)
(:mod:`selfsup.losses.scgc`). Graphs only (``Needs(edges=True)``).

As the authors (who load SDCN's pre-trained autoencoder), the encoder and a decoder are first
pre-trained as an autoencoder (``pretrain_epochs``, SDCN's recipe: 30 epochs of batch 256, Adam at
1e-3, the MSE reconstruction of the node features) before k-means sets the centres; then training
runs at the authors' citation-graph rate, Adam 1e-4, constant. Deviation: the node features are
those the graph encoder sees (row-normalised when non-negative, as for every graph method); the
authors feed the raw features.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from ..losses.scgc import cluster_kl, iac_loss, influence_targets, soft_assign, target_distribution
from ..models.encoder import Encoder
from ..models.graph import GraphBatch, input_dim, normalised_features
from . import register
from .base import Batch, Context, Method, Needs, Params, ParamsModel


class SCGCParams(Params):
    variant: Literal["scgc", "scgc_star"] = "scgc"
    """``scgc``: targets A~^order and the reconstruction loss; ``scgc_star`` (SCGC*): the cumulative
    influence A~ + ... + A~^order and no decoder."""
    order: int = Field(default=1, ge=1, le=8)
    """Adjacency power r (the authors' citation-graph setting: 1)."""
    tau: float = Field(default=0.25, gt=0)
    """Temperature (multiplies the similarities; citation graph: 0.25)."""
    alpha: float = Field(default=1.0, ge=0)
    """Weight of the contrastive loss."""
    beta: float = Field(default=0.1, ge=0)
    """Weight of the clustering KL loss."""
    n_clusters: int = Field(default=0, ge=0)
    """Clusters of the soft head; 0: the number of classes of the training graph (else 8)."""
    pretrain_epochs: int = Field(default=30, ge=0)
    """Autoencoder pre-training before the k-means initialisation (SDCN's 30 epochs; 0: none)."""


@register
class SCGC(Method):
    name = "scgc"
    paper = "Kulatilleke et al. 2022, SCGC: Self-Supervised Contrastive Graph Clustering"
    Params: ClassVar[type[ParamsModel]] = SCGCParams
    needs = Needs(
        edges=True,
        view_preset="none",
        defaults={
            "train": {"epochs": 200},
            "optim": {
                "lr": 1e-4,
                "weight_decay": 0.0,
                "schedule": "constant",
                "warmup_epochs": 0.0,
            },
            "model": {"backbone": "mlp"},
        },
    )

    centers: nn.Parameter

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        k = params.n_clusters or int(getattr(encoder, "n_classes", 0)) or 8
        d = int(encoder.out_dim)
        self.centers = nn.Parameter(nn.init.xavier_normal_(torch.empty(k, d)))
        self.decoder: nn.Module | None = None
        if params.variant == "scgc" or params.pretrain_epochs > 0:
            d_in = input_dim(encoder)
            self.decoder = nn.Sequential(
                nn.Linear(d, 2000),
                nn.ReLU(),
                nn.Linear(2000, 500),
                nn.ReLU(),
                nn.Linear(500, 500),
                nn.ReLU(),
                nn.Linear(500, d_in),
            )
        self._targets: tuple[int, Tensor] | None = None

    def targets(self, v: GraphBatch) -> Tensor:
        """The influence targets of the whole graph (computed once per graph)."""
        key = int(v.edge_index.shape[1]) * 1_000_003 + v.num_nodes
        if self._targets is None or self._targets[0] != key:
            p = self.params
            w = influence_targets(v.edge_index, v.num_nodes, p.order, p.variant == "scgc_star")
            self._targets = (key, w)
        return self._targets[1]

    def prepare(self, x: Any, views: Any) -> None:
        """The autoencoder pre-training, then cluster centres from k-means (20 restarts) on the
        embeddings of every node."""
        from sklearn.cluster import KMeans

        b = GraphBatch(x.x, x.edge_index)
        if self.params.pretrain_epochs > 0:
            self._pretrain(b)
        if self.params.variant != "scgc":  # SCGC* trains without the decoder
            self.decoder = None
        with torch.no_grad():
            z = self.encoder(b).float().cpu().numpy().astype(np.float64)
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        km = KMeans(len(self.centers), n_init=20, random_state=seed).fit(z)
        with torch.no_grad():
            self.centers.copy_(torch.as_tensor(km.cluster_centers_, dtype=self.centers.dtype))

    def _pretrain(self, b: GraphBatch, batch: int = 256, lr: float = 1e-3) -> None:
        """SDCN's autoencoder pre-training: Adam, MSE reconstruction of the node features, in
        shuffled batches of nodes (each batch's induced subgraph: SCGC's MLP ignores the edges)."""
        assert self.decoder is not None
        params = [*self.encoder.parameters(), *self.decoder.parameters()]
        opt = torch.optim.Adam(params, lr=lr)
        target = normalised_features(self.encoder, b).float().detach()
        was = self.training
        self.train()
        n = b.num_nodes
        for _ in range(self.params.pretrain_epochs):
            for idx in torch.randperm(n, device=target.device).split(batch):
                z = self.encoder(_subgraph(b, idx, n)).float()
                loss = F.mse_loss(self.decoder(z), target[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self.train(was)

    def forward(self, views: list[GraphBatch], batch: Batch) -> tuple[Tensor, dict[str, float]]:
        v = views[0]
        p = self.params
        z = self.encoder(v).float()
        q = soft_assign(z, self.centers.float())
        kl = cluster_kl(q, target_distribution(q.detach()))
        w = self.targets(v)[v.nodes][:, v.nodes]
        con = iac_loss(z, w, p.tau)
        loss = p.beta * kl + p.alpha * con
        logs = {"kl": float(kl.detach()), "iac": float(con.detach())}
        if self.decoder is not None:
            rec = F.mse_loss(self.decoder(z), normalised_features(self.encoder, v)[v.nodes].float())
            loss = loss + rec
            logs["rec"] = float(rec.detach())
        return loss, logs


def _subgraph(b: GraphBatch, idx: Tensor, n: int) -> GraphBatch:
    """The subgraph induced by nodes ``idx`` of ``b`` (``n`` nodes), renumbered in ``idx``'s
    order."""
    new = torch.full((n,), -1, dtype=torch.long, device=idx.device)
    new[idx] = torch.arange(len(idx), device=idx.device)
    src, dst = new[b.edge_index[0]], new[b.edge_index[1]]
    keep = (src >= 0) & (dst >= 0)
    return GraphBatch(b.x[idx], torch.stack([src[keep], dst[keep]]))
