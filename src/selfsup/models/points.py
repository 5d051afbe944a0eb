"""Point-cloud encoders: PointNet, and a Point-MAE transformer over patch tokens.

Both take float (B, 3, P) clouds (normalised by the encoder's input statistics) and return a
global feature of size ``out_dim``; both are invariant to the order of the points. With
``align="pca"`` each first turns every cloud into its principal-axis frame (:func:`canonical_pose`),
which makes the feature invariant to rotations and reflections of the input as well.

- ``pointnet`` (Qi et al., *PointNet*, CVPR 2017, without its input transforms): a shared per-point
  MLP (3 -> 64 -> 128 -> 256 x width, batch norm), max- and mean-pooled over the points.
- ``point_transformer`` (Pang et al., *Masked Autoencoders for Point Cloud Self-supervised
  Learning*, ECCV 2022): the cloud is cut into ``groups`` patches of ``group_size`` points
  (farthest-point centres, kNN patches; :func:`group`), each patch embedded by
  a mini-PointNet (two shared MLPs with max pooling, the first pool concatenated back to each
  point), its centre by an MLP positional embedding added to the tokens before every pre-norm
  transformer block (as in the authors' encoder); the feature is the max and mean of the final
  tokens of every patch (none masked). ``forward_visible`` encodes only the visible patches
  (the masked methods ``pointmae``, ``pointcmae``). CPU scale: width 128, 4 blocks, 4 heads, 32
  patches of 2P/32 points (8 to 32; 16 for the 256-point ``shapes``), a tokeniser of half the
  channels (the authors: 384, 12, 6, 64 patches of 32 on 1024 points). The masked methods can set
  the authors' stochastic depth (:func:`set_drop_path`) and initialisation (:func:`init_authors`;
  torch's own, the default, did better on ``shapes``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def farthest_point_sample(x: Tensor, s: int) -> Tensor:
    """Indices (B, s) of ``s`` points of the clouds ``x`` (B, P, 3) by farthest-point sampling:
    the first point of each cloud, then repeatedly the point farthest from those chosen (ties:
    the lowest index). Deterministic."""
    b, p, _ = x.shape
    idx = torch.zeros(b, s, dtype=torch.long, device=x.device)
    dist = torch.full((b, p), float("inf"), device=x.device, dtype=x.dtype)
    last = torch.zeros(b, dtype=torch.long, device=x.device)
    rows = torch.arange(b, device=x.device)
    for i in range(s):
        idx[:, i] = last
        d = ((x - x[rows, last][:, None]) ** 2).sum(-1)
        dist = torch.minimum(dist, d)
        last = dist.argmax(1)
    return idx


def symmetric_eig3(a: Tensor, sweeps: int = 6) -> tuple[Tensor, Tensor]:
    """Eigenvalues (B, 3) and eigenvectors (B, 3, 3; column ``i`` for value ``i``) of symmetric
    3 x 3 matrices ``a`` (B, 3, 3), largest value first, by cyclic Jacobi rotations.

    Plain tensor arithmetic (no LAPACK call), so an encoder that uses it exports to ONNX.
    Jacobi converges quadratically; ``sweeps`` of the three off-diagonal pairs reach float64
    rounding in 4 on random symmetric matrices (checked)."""
    eye = torch.eye(3, dtype=a.dtype, device=a.device)
    v = eye.expand_as(a)
    for _ in range(sweeps):
        for p, q in ((0, 1), (0, 2), (1, 2)):
            apq, app, aqq = a[:, p, q], a[:, p, p], a[:, q, q]
            zero = apq.abs() <= 1e-300
            theta = (aqq - app) / (2 * torch.where(zero, torch.ones_like(apq), apq))
            sgn = torch.where(theta >= 0, 1.0, -1.0).to(a.dtype)
            t = sgn / (theta.abs() + (theta**2 + 1).sqrt())
            t = torch.where(zero, torch.zeros_like(apq), t)
            c = 1 / (t**2 + 1).sqrt()
            sn = t * c
            # the rotation in the (p, q) plane: J[p,p] = J[q,q] = c, J[p,q] = -J[q,p] = s
            e_pp_qq = eye[:, p, None] * eye[None, p] + eye[:, q, None] * eye[None, q]
            e_pq = eye[:, p, None] * eye[None, q] - eye[:, q, None] * eye[None, p]
            j = eye + (c - 1)[:, None, None] * e_pp_qq + sn[:, None, None] * e_pq
            a = j.transpose(1, 2) @ a @ j
            v = v @ j
    values = torch.diagonal(a, dim1=1, dim2=2)
    order = values.argsort(1, descending=True)
    return values.gather(1, order), v.gather(2, order[:, None].expand(-1, 3, -1))


def canonical_pose(x: Tensor) -> Tensor:
    """Clouds (B, 3, P) in their principal-axis frame: centred on their mean, then expressed in the
    eigenvectors of their 3 x 3 covariance, largest variance first, each axis's sign chosen so
    that the third moment of the coordinates along it is positive (kept if it is zero).

    The result is the same for any rotation or reflection of a cloud, and any order of its points,
    up to rounding, when the three variances differ and no third moment is zero; where they are
    not (a sphere, a symmetric box), the axes the frame cannot tell apart are ones the shape is
    (nearly) symmetric about. The decomposition (:func:`symmetric_eig3`) runs in float64, without
    gradient (a pose is data, not a parameter)."""
    with torch.no_grad():
        cd = (x - x.mean(2, keepdim=True)).double()
        axes = symmetric_eig3(cd @ cd.transpose(1, 2) / x.shape[2])[1]
        p = axes.transpose(1, 2) @ cd
        sign = torch.where((p**3).sum(2) < 0, -1.0, 1.0).to(p.dtype)
        return (p * sign[:, :, None]).to(x.dtype)


ALIGNS = ("pca", "none")


def knn_group(x: Tensor, centres: Tensor, k: int) -> Tensor:
    """The ``k`` nearest points of ``x`` (B, P, 3) to each centre (B, S, 3), in the centre's frame:
    (B, S, k, 3), nearest first."""
    d = torch.cdist(centres, x)  # (B, S, P)
    nn_idx = d.topk(k, dim=2, largest=False).indices  # (B, S, k)
    b = torch.arange(len(x), device=x.device)[:, None, None]
    return x[b, nn_idx] - centres[:, :, None]


def group(x: Tensor, groups: int, k: int) -> tuple[Tensor, Tensor]:
    """Point-MAE's patches of (B, 3, P) clouds: ``(centres (B, S, 3), patches (B, S, k, 3))``."""
    pts = x.transpose(1, 2).contiguous()
    s, k = min(groups, pts.shape[1]), min(k, pts.shape[1])
    idx = farthest_point_sample(pts, s)
    centres = pts.gather(1, idx[..., None].expand(-1, -1, 3))
    return centres, knn_group(pts, centres, k)


class PointNet(nn.Module):
    def __init__(self, width: float = 1.0, align: str = "none") -> None:
        super().__init__()
        self.align = align
        w = max(8, int(64 * width))
        self.point = nn.Sequential(
            nn.Conv1d(3, w, 1), nn.BatchNorm1d(w), nn.ReLU(),
            nn.Conv1d(w, 2 * w, 1), nn.BatchNorm1d(2 * w), nn.ReLU(),
            nn.Conv1d(2 * w, 4 * w, 1), nn.BatchNorm1d(4 * w), nn.ReLU(),
        )  # fmt: skip
        self.out_dim = 8 * w

    def forward(self, x: Tensor) -> Tensor:
        h = self.point(canonical_pose(x) if self.align == "pca" else x)
        return torch.cat([h.amax(2), h.mean(2)], 1)


class MiniPointNet(nn.Module):
    """Point-MAE's patch tokeniser: (M, k, 3) patches -> (M, dim) tokens (half the authors'
    channels: 3 -> 64 -> 128, then 256 -> 256 -> dim)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.first = nn.Sequential(
            nn.Conv1d(3, 64, 1), nn.BatchNorm1d(64), nn.ReLU(), nn.Conv1d(64, 128, 1)
        )
        self.second = nn.Sequential(
            nn.Conv1d(256, 256, 1), nn.BatchNorm1d(256), nn.ReLU(), nn.Conv1d(256, dim, 1)
        )

    def forward(self, patches: Tensor) -> Tensor:
        h = self.first(patches.transpose(1, 2))  # (M, 256, k)
        g = h.amax(2, keepdim=True).expand_as(h)
        return self.second(torch.cat([g, h], 1)).amax(2)


def drop_path(x: Tensor, rate: float, training: bool) -> Tensor:
    """Stochastic depth (Huang et al. 2016) on a residual branch ``x`` (B, ...): in training, each
    sample's branch is dropped with probability ``rate`` and kept ones are scaled by
    ``1 / (1 - rate)``; the identity in evaluation or at rate 0."""
    if rate <= 0 or not training:
        return x
    keep = 1.0 - rate
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    return x * x.new_empty(shape).bernoulli_(keep).div_(keep)


class Block(nn.Module):
    """A pre-norm transformer block (attention, then a 4x MLP; residual around each), with drop
    path ``drop_path`` on both branches (the authors': rates rising linearly over the blocks)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(dropout)
        self.drop_path = drop_path

    def forward(self, x: Tensor, pad: Tensor | None = None) -> Tensor:
        h = self.n1(x)
        a = self.drop(self.attn(h, h, h, key_padding_mask=pad, need_weights=False)[0])
        x = x + drop_path(a, self.drop_path, self.training)
        return x + drop_path(self.drop(self.mlp(self.n2(x))), self.drop_path, self.training)


def set_drop_path(blocks: nn.ModuleList, rate: float) -> None:
    """The authors' stochastic-depth schedule: block ``i`` of ``n`` drops at ``rate * i / (n -
    1)`` (0 at the first block, ``rate`` at the last)."""
    n = len(blocks)
    for i, blk in enumerate(blocks):
        blk.drop_path = rate * i / (n - 1) if n > 1 else rate


def init_authors(module: nn.Module, linear: str = "trunc_normal") -> None:
    """Point-MAE's initialisation of ``module``: every linear (attention projections included) and
    1-D convolution weight truncated normal of std 0.02 (``linear="xavier"``: Xavier uniform, the
    authors' decoder blocks), their biases 0; layer-norm weights 1, biases 0. Batch norm keeps
    torch's (weight 1, bias 0)."""

    def weight(w: Tensor) -> None:
        if linear == "xavier":
            nn.init.xavier_uniform_(w)
        else:
            nn.init.trunc_normal_(w, std=0.02)

    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv1d):
            weight(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.MultiheadAttention):
            # one (3 dim, dim) projection, as the authors' qkv linear (out_proj is an nn.Linear)
            if m.in_proj_weight is not None:
                weight(m.in_proj_weight)
            if m.in_proj_bias is not None:
                nn.init.zeros_(m.in_proj_bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class PointTransformer(nn.Module):
    capabilities = frozenset({"point_patches"})

    def __init__(
        self,
        width: float = 1.0,
        depth: int = 4,
        heads: int = 4,
        groups: int = 32,
        group_size: int = 32,
        align: str = "none",
    ) -> None:
        super().__init__()
        self.align = align
        self.dim = dim = max(heads * 8, int(128 * width) // heads * heads)
        self.groups, self.group_size = groups, group_size
        self.tokens = MiniPointNet(dim)
        self.pos = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.out_dim = 2 * dim

    def patches(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(centres (B, S, 3), patches (B, S, k, 3))`` of clouds (B, 3, P) (in their
        principal-axis frame with ``align="pca"``)."""
        return group(canonical_pose(x) if self.align == "pca" else x, self.groups, self.group_size)

    def encode(self, centres: Tensor, patches: Tensor) -> Tensor:
        """Tokens (B, S, dim) of the given patches (any subset of a cloud's patches)."""
        b, s, k, _ = patches.shape
        t = self.tokens(patches.reshape(b * s, k, 3)).view(b, s, -1)
        pos = self.pos(centres)
        for blk in self.blocks:  # the centres' embedding enters every block (the authors' code)
            t = blk(t + pos)
        return self.norm(t)

    def forward_visible(self, centres: Tensor, patches: Tensor, ids_keep: Tensor) -> Tensor:
        """Tokens of the patches ``ids_keep`` (B, K) only (the masked methods' encoder pass)."""
        c = centres.gather(1, ids_keep[..., None].expand(-1, -1, 3))
        p = patches.gather(1, ids_keep[..., None, None].expand(-1, -1, *patches.shape[2:]))
        return self.encode(c, p)

    @staticmethod
    def pool(tokens: Tensor) -> Tensor:
        return torch.cat([tokens.amax(1), tokens.mean(1)], 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.encode(*self.patches(x)))


POINT_BACKBONES = ("pointnet", "point_transformer")


def build_point_backbone(
    name: str, width: float, points: int = 1024, align: str = "none"
) -> nn.Module:
    """A backbone by name; the transformer's patches (32) cover each point about twice: ``2 P / 32``
    points each, between 8 and 32 (32 for 1024 points, the authors' setting). ``align``: the
    input frame, ``pca`` (:func:`canonical_pose`) or ``none`` (as given)."""
    from ..errors import ConfigError

    if align not in ALIGNS:
        raise ConfigError(
            f"unknown point-cloud alignment '{align}'; choose one of: {', '.join(ALIGNS)}"
        )
    if name == "pointnet":
        return PointNet(width, align)
    if name == "point_transformer":
        return PointTransformer(width, group_size=max(8, min(32, 2 * points // 32)), align=align)

    raise ConfigError(
        f"unknown point-cloud backbone '{name}'; choose one of: {', '.join(POINT_BACKBONES)}"
    )
