"""A small Vision Transformer for 32 px images on a CPU, with a masked-forward API for MAE.

Dosovitskiy et al., *An Image is Worth 16x16 Words*, ICLR 2021; the MAE details (fixed 2-D sin-cos
positional embeddings, a class token, pre-norm blocks, Xavier-uniform linear layers) follow
He et al., *Masked Autoencoders Are Scalable Vision Learners*, CVPR 2022, as in the authors'
``facebookresearch/mae`` (``models_mae.py``, ``util/pos_embed.py``), written here from reading them.

- The image is cut into ``patch_size`` squares (a strided convolution embeds each one).
- Positional embeddings are fixed 2-D sin-cos tables computed for the grid the input has (no
  parameter depends on the image size, so one backbone serves 16 px and 32 px inputs).
- ``forward(x)`` returns the pooled feature (``pool="mean"``: the mean of the patch tokens after the
  final norm, MAE's choice for fine-tuning; ``pool="cls"``: the class token) of size ``out_dim``.
- ``forward_visible(x, ids_keep)`` encodes only the patches listed in ``ids_keep`` (N, K) and
  returns every token (class token first): MAE's encoder never sees the masked patches.

:func:`patchify`, :func:`unpatchify` and :func:`random_masking` are the patch bookkeeping shared by
the masked methods (MAE, SparK, CMAE).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

# -- patch bookkeeping -------------------------------------------------------------------------


def check_patch(size: int, patch_size: int, what: str = "patch size") -> int:
    """The grid side ``size // patch_size``; a :class:`ConfigError` if the patch does not divide
    it."""
    if patch_size < 1 or size % patch_size:
        raise ConfigError(
            f"{what} {patch_size} does not divide the image size {size}; choose a divisor of "
            f"{size} (e.g. {', '.join(str(d) for d in _divisors(size))})"
        )
    return size // patch_size


def _divisors(n: int) -> list[int]:
    return [d for d in range(2, n) if n % d == 0][:6] or [1]


def patchify(x: Tensor, p: int) -> Tensor:
    """(N, C, H, W) -> (N, L, p*p*C), patches in row-major order, pixels (row, col, channel)
    within."""
    n, c, h, w = x.shape
    if h % p or w % p:
        raise ConfigError(f"patch size {p} does not divide the image size {h}x{w}")
    x = x.reshape(n, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(n, (h // p) * (w // p), p * p * c)


def unpatchify(t: Tensor, p: int, channels: int, h: int | None = None) -> Tensor:
    """Inverse of :func:`patchify`: (N, L, p*p*C) -> (N, C, H, W) (square grid unless ``h``
    rows)."""
    n, length, _ = t.shape
    gh = h if h is not None else math.isqrt(length)
    gw = length // gh
    x = t.reshape(n, gh, gw, p, p, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(n, channels, gh * p, gw * p)


def random_masking(
    n: int, length: int, ratio: float, device=None, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """MAE's per-sample random masking by sorting uniform noise.

    Returns ``ids_keep`` (N, K) with ``K = int(L * (1 - ratio))`` kept (visible) patch indices,
    ``mask`` (N, L) float with 1 for a masked patch and 0 for a visible one, and ``ids_restore``
    (N, L), the permutation that puts ``[visible..., masked...]`` back in patch order.
    """
    if not 0 < ratio < 1:
        raise ConfigError(f"mask ratio {ratio} must be in (0, 1)")
    keep = max(1, int(length * (1 - ratio)))
    noise = torch.rand(n, length, device=device, generator=generator)
    ids_shuffle = noise.argsort(dim=1)
    ids_restore = ids_shuffle.argsort(dim=1)
    mask = torch.ones(n, length, device=device)
    mask[:, :keep] = 0
    mask = mask.gather(1, ids_restore)
    return ids_shuffle[:, :keep], mask, ids_restore


def gather_tokens(t: Tensor, ids: Tensor) -> Tensor:
    """``t[i, ids[i]]`` for every sample: (N, L, D), (N, K) -> (N, K, D)."""
    return t.gather(1, ids.unsqueeze(-1).expand(-1, -1, t.shape[-1]))


# -- positional embeddings ---------------------------------------------------------------------


def sincos_1d(dim: int, pos: Tensor) -> Tensor:
    """(M,) positions -> (M, dim): ``[sin(pos w_k), cos(pos w_k)]``,
    ``w_k = 1 / 10000^(2k/dim)``."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    out = pos.to(torch.float64)[:, None] * omega[None]
    return torch.cat([out.sin(), out.cos()], dim=1)


def sincos_2d(dim: int, gh: int, gw: int) -> Tensor:
    """(gh*gw, dim) fixed 2-D table: half the channels encode the row, half the column (MAE)."""
    if dim % 4:
        raise ValueError(f"sin-cos embedding needs a dimension divisible by 4, got {dim}")
    rows, cols = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    # MAE's table: the first half encodes the column (w) coordinate, the second the row (h)
    emb = torch.cat(
        [sincos_1d(dim // 2, cols.reshape(-1)), sincos_1d(dim // 2, rows.reshape(-1))], dim=1
    )
    return emb.float()


# -- the transformer ---------------------------------------------------------------------------


class Block(nn.Module):
    """Pre-norm transformer block: ``x + MSA(LN(x))``, then ``x + MLP(LN(x))`` (GELU)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        n, t, d = x.shape
        q, k, v = (
            self.qkv(self.norm1(x))
            .reshape(n, t, 3, self.heads, d // self.heads)
            .permute(2, 0, 3, 1, 4)
        )
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, d)
        x = x + self.proj(a)
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """A stack of blocks and a final LayerNorm (MAE's encoder body and its decoder body)."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        for b in self.blocks:
            x = b(x)
        return self.norm(x)


def init_weights(m: nn.Module) -> None:
    """MAE's initialisation: Xavier-uniform linear weights, zero biases, unit LayerNorms."""
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class ViT(nn.Module):
    """Patch embedding + class token + fixed 2-D sin-cos positions + transformer; pooled output."""

    #: what methods may need of it (:class:`selfsup.methods.Needs`): patch tokens to mask
    capabilities = frozenset({"tokens"})

    def __init__(
        self,
        in_channels: int = 3,
        patch_size: int = 4,
        dim: int = 128,
        depth: int = 6,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        pool: str = "mean",
    ):
        super().__init__()
        if pool not in ("mean", "cls"):
            raise ValueError(f"pool must be 'mean' or 'cls', got {pool!r}")
        if dim % heads or dim % 4:
            raise ValueError(f"ViT width {dim} must be divisible by the {heads} heads and by 4")
        self.in_channels, self.patch_size, self.dim, self.pool = in_channels, patch_size, dim, pool
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.body = Transformer(dim, depth, heads, mlp_ratio)
        self.out_dim = dim
        self.apply(init_weights)
        w = self.patch_embed.weight.data  # like a linear layer over the flattened patch (MAE)
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        self._pos: dict[tuple, Tensor] = {}

    def grid(self, h: int, w: int) -> tuple[int, int]:
        p = self.patch_size
        if h % p or w % p:
            raise ConfigError(
                f"patch size {p} does not divide the image size {h}x{w}; use a ViT backbone whose "
                "patch size divides it (vit_tiny: 4, vit_tiny_p2: 2, vit_tiny_p8: 8)"
            )
        return h // p, w // p

    # -- the token-backbone interface the masked methods use (MAE): a backbone for another kind
    # of input (video tubelets) implements the same five members over its own token grid
    @property
    def patch_dim(self) -> int:
        """Values in one patch (the pixel target of a masked token)."""
        return self.patch_size * self.patch_size * self.in_channels

    def token_grid(self, x: Tensor) -> tuple[int, ...]:
        """The token grid of input ``x`` (here the patch rows and columns)."""
        return self.grid(x.shape[-2], x.shape[-1])

    def mask_tokens(
        self, n: int, grid: tuple[int, ...], ratio: float, device
    ) -> tuple[Tensor, Tensor, Tensor]:
        """MAE's masking of ``ratio`` of the tokens (:func:`random_masking`)."""
        return random_masking(n, math.prod(grid), ratio, device)

    def patchify(self, x: Tensor) -> Tensor:
        """The pixel targets of the tokens, (N, L, patch_dim) (:func:`patchify`)."""
        return patchify(x, self.patch_size)

    def pos_table(self, dim: int, grid: tuple[int, ...], device, dtype) -> Tensor:
        """A decoder's fixed positions for ``grid``, (L, dim)."""
        return sincos_2d(dim, *grid).to(device=device, dtype=dtype)

    def pos_embed(self, gh: int, gw: int, device, dtype) -> Tensor:
        key = (gh, gw, str(device), dtype)
        if key not in self._pos:
            self._pos[key] = sincos_2d(self.dim, gh, gw).to(device=device, dtype=dtype)
        return self._pos[key]

    def tokens(self, x: Tensor) -> Tensor:
        """Patch embeddings plus positions, (N, L, D), before the class token and the blocks."""
        gh, gw = self.grid(x.shape[-2], x.shape[-1])
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        return t + self.pos_embed(gh, gw, t.device, t.dtype)

    def encode_tokens(self, t: Tensor) -> Tensor:
        """Prepend the class token (its position is zero, as in MAE) and run the transformer."""
        cls = self.cls_token.expand(len(t), -1, -1).to(t.dtype)
        return self.body(torch.cat([cls, t], dim=1))

    def forward_visible(self, x: Tensor, ids_keep: Tensor) -> Tensor:
        """Encode only the patches ``ids_keep`` (N, K): returns (N, 1 + K, D), class token first."""
        return self.encode_tokens(gather_tokens(self.tokens(x), ids_keep))

    def pooled(self, z: Tensor) -> Tensor:
        """The feature of an encoded token sequence (N, 1 + K, D): class token or mean of the
        rest."""
        return z[:, 0] if self.pool == "cls" else z[:, 1:].mean(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pooled(self.encode_tokens(self.tokens(x)))


def vit(
    in_channels: int,
    patch_size: int = 4,
    width: float = 1.0,
    dim: int = 128,
    depth: int = 6,
    heads: int = 4,
) -> ViT:
    """A ViT whose width is ``dim * width`` rounded to a multiple of ``4 * heads``."""
    step = 4 * heads
    d = max(step, int(round(dim * width / step)) * step)
    return ViT(in_channels, patch_size=patch_size, dim=d, depth=depth, heads=heads)


class MAEDecoder(nn.Module):
    """MAE's light decoder: embed the encoded visible tokens, put a shared mask token at every
    masked position, add fixed sin-cos positions, a few blocks, a linear map to ``p*p*C`` pixels.

    ``forward(z, ids_restore, grid, pos=None)``: ``z`` (N, 1 + K, D) from
    :meth:`ViT.forward_visible`, ``ids_restore`` from :func:`random_masking`, ``pos`` the fixed
    positions (L, d) of the token grid (default: the 2-D table of ``grid``); returns the predictions
    (N, L, ``out_dim`` = p*p*C by default) in patch order and the decoder's features (N, L, d).
    """

    def __init__(
        self,
        enc_dim: int,
        patch_size: int,
        channels: int,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        out_dim: int | None = None,
    ):
        super().__init__()
        if dim % heads or dim % 4:
            raise ConfigError(
                f"decoder width {dim} must be divisible by its {heads} heads and by 4"
            )
        self.dim = dim
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.body = Transformer(dim, depth, heads)
        self.pred = nn.Linear(dim, out_dim or patch_size * patch_size * channels)
        self.apply(init_weights)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(
        self, z: Tensor, ids_restore: Tensor, grid: tuple[int, ...], pos: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        y = self.embed(z)
        n, length = ids_restore.shape
        fill = self.mask_token.to(y.dtype).expand(n, length - (y.shape[1] - 1), -1)
        seq = gather_tokens(torch.cat([y[:, 1:], fill], dim=1), ids_restore)  # back to patch order
        if pos is None:  # a 2-D grid of patches; other token grids pass their own table
            pos = sincos_2d(self.dim, *grid)
        seq = seq + pos.to(seq.device, seq.dtype)
        seq = self.body(torch.cat([y[:, :1], seq], dim=1))[:, 1:]
        return self.pred(seq), seq
