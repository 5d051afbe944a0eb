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
transposed convolutions up). Inputs that are not images (not N x C x H x W) get an MLP autoencoder.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from ..errors import ConfigError
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


def _autoencoder(x: torch.Tensor, p: GSimCLRParams) -> tuple[nn.Module, nn.Module]:
    if x.ndim == 4:  # images: a small convolutional autoencoder
        c, h = x.shape[1], x.shape[2]
        w = max(h // 4, 1)
        enc = nn.Sequential(
            nn.Conv2d(c, 32, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, 2, 1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * w * w, p.ae_dim),
        )
        dec = nn.Sequential(
            nn.Linear(p.ae_dim, 64 * w * w),
            nn.ReLU(),
            nn.Unflatten(1, (64, w, w)),
            nn.ConvTranspose2d(64, 32, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, c, 4, 2, 1),
            nn.Sigmoid(),
        )
        return enc, dec
    d = x[0].numel()
    enc = nn.Sequential(
        nn.Flatten(), nn.Linear(d, p.ae_hidden), nn.ReLU(), nn.Linear(p.ae_hidden, p.ae_dim)
    )
    dec = nn.Sequential(
        nn.Linear(p.ae_dim, p.ae_hidden),
        nn.ReLU(),
        nn.Linear(p.ae_hidden, d),
        nn.Sigmoid(),
        nn.Unflatten(1, tuple(x.shape[1:])),
    )
    return enc, dec


def train_autoencoder(x: torch.Tensor, p: GSimCLRParams) -> torch.Tensor:
    """Train a denoising autoencoder on uint8 images (N, C, H, W); return bottleneck features."""
    # uint8 images in [0, 1]; other inputs (series) as they are, missing or padded steps 0
    xf = x.float() / 255.0 if x.dtype == torch.uint8 else torch.nan_to_num(x.float())
    if xf.ndim == 4:
        size = min(p.ae_size, xf.shape[-1]) // 4 * 4 or 4  # the two stride-2 stages need H % 4 == 0
        if xf.shape[-1] != size or xf.shape[-2] != size:
            xf = F.interpolate(
                xf, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            )
    with seeded(p.seed):
        enc, dec = _autoencoder(xf, p)
        enc, dec = enc.to(x.device), dec.to(x.device)
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
    paper = "Chakraborty et al. 2020, G-SimCLR: Self-Supervised Contrastive Learning with Guided Projection"
    Params = GSimCLRParams

    def __init__(self, encoder: Encoder, params: Any, ctx: Context) -> None:
        super().__init__(encoder, params, ctx)
        self.assign: Tensor
        self.register_buffer("assign", torch.full((ctx.n_samples,), -1, dtype=torch.long))

    def prepare(self, x: Tensor, views: Any) -> None:
        k = self.params.clusters or self.ctx.batch_size
        if k is None:
            raise ConfigError(
                "gsimclr needs the number of clusters: set params.clusters (default: the batch size)"
            )
        if k > len(x):
            raise ConfigError(
                f"params.clusters={k} exceeds the {len(x)} training samples; lower it"
            )
        from sklearn.cluster import KMeans

        feats = train_autoencoder(x, self.params).double().cpu().numpy()
        labels = KMeans(n_clusters=k, random_state=self.params.seed, n_init=3).fit_predict(feats)
        self.assign = torch.as_tensor(labels, dtype=torch.long, device=x.device)

    def batch_order(self, n: int, batch_size: int, generator: torch.Generator) -> Tensor | None:
        if len(self.assign) != n or bool((self.assign < 0).any()):
            return None
        # fixed: the same order every epoch (the per-epoch generator is not used)
        return cluster_batch_order(
            self.assign, batch_size, torch.Generator().manual_seed(self.params.seed)
        )
