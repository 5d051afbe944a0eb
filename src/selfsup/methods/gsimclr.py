"""G-SimCLR: SimCLR with batches that avoid likely false negatives, found by clustering.

Chakraborty, Gosthipaty, Paul, *G-SimCLR: Self-Supervised Contrastive Learning with Guided
Projection via Pseudo Labelling*, ICDM Workshops 2020. Before training (``prepare``) a
convolutional denoising autoencoder is trained on the training images (resized to at most
``ae_size`` px, Gaussian input noise, fixed seed); its bottleneck features are clustered by k-means
with k = the batch size (scikit-learn, fixed seed); the cluster of each sample is kept as a buffer
(saved in checkpoints). The batch order (``batch_order``) is *fixed*: computed once from the
clusters and ``seed`` and the same every epoch; its batches hold at most one sample per cluster for
as long as at least ``batch_size`` clusters still have unused samples (drawing from the fullest
clusters first, so that this lasts as long as possible); the remaining samples fill the last
batches. The loss stays NT-Xent, with the authors' temperature 0.1.

The defaults follow the paper and the issue that reviewed it against the authors' notebooks
(sayakpaul/G-SimCLR: temperature 0.1, k-means with as many clusters as the batch size, a fixed
cluster-sorted order, a convolutional denoising autoencoder); that repository could not be read
from this machine, so the autoencoder's exact layers are ours (two stride-2 convolutions down, two
transposed convolutions up), the image modality's autoencoder; other modalities give theirs (a flat
MLP by default, :meth:`selfsup.modalities.Modality.reconstruction`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from ..errors import ConfigError
from ..models.autoencoder import Reconstruction, flat_reconstruction
from ..models.encoder import Encoder
from ..views import seeded
from . import register
from .base import Context
from .simclr import SimCLR, SimCLRParams


class GSimCLRParams(SimCLRParams):
    temperature: float = Field(default=0.1, gt=0)
    """The authors' NT-Xent temperature."""
    clusters: int | None = Field(default=None, ge=2)
    """k of k-means; default the batch size."""
    ae_epochs: int = Field(default=10, ge=1)
    ae_dim: int = Field(default=32, ge=1)
    ae_hidden: int = Field(default=256, ge=1)
    ae_noise: float = Field(default=0.2, ge=0)
    ae_size: int = Field(default=16, ge=4)
    seed: int = 0


def train_autoencoder(
    x: torch.Tensor, p: GSimCLRParams, reconstruction: Callable[..., Reconstruction] | None = None
) -> torch.Tensor:
    """Train the modality's denoising autoencoder (``reconstruction``, see
    :meth:`selfsup.modalities.Modality.reconstruction`; default a flat MLP) on the raw samples;
    return the bottleneck features."""
    with seeded(p.seed):
        if reconstruction is None:
            rec = flat_reconstruction(x, p.ae_dim, p.ae_hidden)
        else:
            rec = reconstruction(x, p.ae_dim, p.ae_hidden, p.ae_size)
        xf, enc, dec = rec.inputs, rec.encoder.to(x.device), rec.decoder.to(x.device)
        opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
        for _ in range(p.ae_epochs):
            for idx in torch.randperm(len(xf), device=x.device).split(256):
                xb = xf[idx]
                loss = F.mse_loss(dec(enc(xb + p.ae_noise * torch.randn_like(xb))), xb)
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            return torch.cat([enc(c) for c in xf.split(4096)])


def cluster_batch_order(
    assign: torch.Tensor, batch_size: int, generator: torch.Generator
) -> torch.Tensor:
    """An order of ``len(assign)`` samples whose consecutive ``batch_size`` chunks hold at most one
    sample per cluster while at least ``batch_size`` clusters have samples left."""
    a = assign.cpu()
    n, k = len(a), int(a.max()) + 1
    perm = torch.randperm(n, generator=generator)
    members = perm[torch.argsort(a[perm], stable=True)]  # grouped by cluster, shuffled within
    counts = torch.bincount(a, minlength=k)
    starts = torch.cumsum(counts, 0) - counts
    taken = torch.zeros(k, dtype=torch.long)
    out = []
    while True:
        left = counts - taken
        alive = left > 0
        if int(alive.sum()) < batch_size:
            break
        score = left.float() + 0.5 * torch.rand(
            k, generator=generator
        )  # fullest first, ties random
        score[~alive] = -1
        c = score.topk(batch_size).indices
        out.append(members[starts[c] + taken[c]])
        taken[c] += 1
    rest = torch.cat([members[starts[c] : starts[c] + counts[c]][taken[c] :] for c in range(k)])
    out.append(rest[torch.randperm(len(rest), generator=generator)])
    return torch.cat(out)


@register
class GSimCLR(SimCLR):
    name = "gsimclr"
    paper = (
        "Chakraborty et al. 2020, G-SimCLR: Self-Supervised Contrastive Learning "
        "with Guided Projection"
    )
    Params = GSimCLRParams

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        self.assign: Tensor
        self.register_buffer("assign", torch.full((ctx.n_samples,), -1, dtype=torch.long))

    def prepare(self, x: Tensor, views: Any) -> None:
        k = self.params.clusters or self.ctx.batch_size
        if k is None:
            raise ConfigError(
                "gsimclr needs the number of clusters: set params.clusters "
                "(default: the batch size)"
            )
        if k > len(x):
            raise ConfigError(
                f"params.clusters={k} exceeds the {len(x)} training samples; lower it"
            )
        from sklearn.cluster import KMeans

        feats = train_autoencoder(x, self.params, self.ctx.reconstruction).double().cpu().numpy()
        labels = KMeans(n_clusters=k, random_state=self.params.seed, n_init=3).fit_predict(feats)
        self.assign = torch.as_tensor(labels, dtype=torch.long, device=x.device)

    def batch_order(self, n: int, batch_size: int, generator: torch.Generator) -> Tensor | None:
        if len(self.assign) != n or bool((self.assign < 0).any()):
            return None
        # fixed: the same order every epoch (the per-epoch generator is not used)
        return cluster_batch_order(
            self.assign, batch_size, torch.Generator().manual_seed(self.params.seed)
        )
