"""Video backbones: float clips (N, C, T, H, W) -> (N, out_dim).

- ``r2plus1d``: a small (2+1)-D ResNet (Tran et al., *A Closer Look at Spatiotemporal
  Convolutions for Action Recognition*, CVPR 2018): every 3x3x3 convolution is factorised into a
  1x3x3 spatial one and a 3x1x1 temporal one with a ReLU between, the middle width chosen so the
  parameters match the full 3-D kernel (the paper's ``M_i``). A stride-2 spatial stem, four stages
  of one basic residual block (16, 32, 64, 128 channels x ``width``), space halved at stages 2-4
  and time at stages 3-4, global average pooling over time and space. CPU-sized. Space is halved
  by strided convolutions, as in the paper.
- ``r2plus1d_pool`` (default): the same network and parameters with space halved by 2x2
  max-pools before stride-1 convolutions (the stem's convolution at full size), which keeps a
  small moving object's features from depending on its sampling phase (see :class:`R2Plus1D`).
- ``r2plus1d_late``: ``r2plus1d_pool`` with temporal kernels only in stages 3-4 (SlowOnly's
  layout; 1x3x3 kernels before): cheaper, keeps more appearance, sees less motion.
- ``video_vit``: a ViT over tubelet patches (ViViT's tubelet embedding, Arnab et al. 2021;
  VideoMAE's 2 x p x p cubes, Tong et al. 2022): a strided 3-D convolution embeds each tubelet,
  fixed sin-cos positions (a 2-D spatial table plus a 1-D temporal one), a class token, the image
  ViT's pre-norm blocks. Declares the ``tokens`` capability and the token-backbone interface the
  masked methods use (``token_grid``, ``mask_tokens`` = tube masking, ``patchify``,
  ``forward_visible``, ``pos_table``, ``patch_dim``) and ``still`` (a frame as a still clip).
- ``frame_convnet`` (the frame baseline): the image ConvNet applied to every frame on its own, its
  features averaged over time; it sees no motion, only appearance.
- ``two_pathway``: an appearance pathway (``frame_convnet`` on every fourth frame) beside a
  motion pathway (``r2plus1d_pool`` on every frame), their features concatenated (late fusion; see
  :class:`TwoPathway`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .vit import Transformer, gather_tokens, init_weights, sincos_1d, sincos_2d


def _mid(cin: int, cout: int, kt: int = 3, ks: int = 3) -> int:
    """R(2+1)D's middle width: as many parameters as a full kt x ks x ks kernel."""
    return max(1, (kt * ks * ks * cin * cout) // (ks * ks * cin + kt * cout))


class Conv2Plus1D(nn.Module):
    """A 3x3x3 convolution factorised: 1x3x3 spatial, BN, ReLU, 3x1x1 temporal.

    Both run as 2-D convolutions over reshaped clips (frames as a batch; then time x space), which
    CPUs run well and which avoid a non-finite bf16 gradient of ``Conv3d`` on CPU (torch 2.x)."""

    def __init__(self, cin: int, cout: int, stride: tuple[int, int] = (1, 1)):
        super().__init__()
        st, ss = stride
        m = _mid(cin, cout)
        self.spatial = nn.Conv2d(cin, m, 3, ss, 1, bias=False)
        self.bn = nn.BatchNorm3d(m)
        self.relu = nn.ReLU(inplace=True)
        self.temporal = nn.Conv2d(m, cout, (3, 1), (st, 1), (1, 0), bias=False)

    def forward(self, x: Tensor) -> Tensor:
        n, c, t, h, w = x.shape
        y = self.spatial(x.transpose(1, 2).reshape(n * t, c, h, w))
        m, h2, w2 = y.shape[1:]
        y = self.relu(self.bn(y.view(n, t, m, h2, w2).transpose(1, 2)))
        y = self.temporal(y.reshape(n, m, t, h2 * w2))
        return y.view(n, y.shape[1], y.shape[2], h2, w2)


def _spatial(cin: int, cout: int, stride: int = 1) -> nn.Conv3d:
    """A 1x3x3 convolution: each frame on its own (a stage without temporal kernels)."""
    return nn.Conv3d(cin, cout, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)


class Block2Plus1D(nn.Module):
    """A basic residual block of two (2+1)-D convolutions.

    ``downsample="stride"`` halves space with the first convolution's stride (and the shortcut's
    1x1 stride, which keeps every other pixel); ``"max"`` max-pools space first (a 2x2 window, so
    every pixel is seen) and runs both paths at stride 1 in space. Time is strided either way."""

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: tuple[int, int],
        downsample: str = "stride",
        temporal: bool = True,
    ):
        super().__init__()
        st, ss = stride
        if not temporal and st != 1:
            raise ValueError("a block without temporal kernels cannot stride time")
        self.pool: nn.Module = nn.Identity()
        if downsample == "max" and ss > 1:
            self.pool = nn.MaxPool3d((1, ss, ss), ceil_mode=True)
            ss = 1
        self.conv1 = Conv2Plus1D(cin, cout, (st, ss)) if temporal else _spatial(cin, cout, ss)
        self.bn1 = nn.BatchNorm3d(cout)
        self.conv2 = Conv2Plus1D(cout, cout) if temporal else _spatial(cout, cout, 1)
        self.bn2 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.down: nn.Module = nn.Identity()
        if stride != (1, 1) or cin != cout:
            self.down = nn.Sequential(
                nn.Conv3d(cin, cout, 1, (st, ss, ss), bias=False), nn.BatchNorm3d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(x)
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return self.relu(h + self.down(x))


class R2Plus1D(nn.Module):
    """A small (2+1)-D ResNet (see the module docstring).

    ``downsample`` is how space is halved (the stem and stages 2-4): ``"stride"`` (``r2plus1d``)
    by strided convolutions, as the paper's ResNets do; ``"max"`` (``r2plus1d_pool``) by a 2x2
    max-pool before stride-1 convolutions, the stem's convolution then running at full size.
    A strided convolution (and the shortcut's strided 1x1, which keeps one pixel in four) sees a
    small object at a different sampling phase at each position, so its features change as the
    object moves; a max-pool sees every pixel first (Zhang, *Making Convolutional Networks
    Shift-Invariant Again*, ICML 2019). On 32 px moving digits the strided network learned no digit
    even from single frames (BENCHMARKS.md, issue 22); the parameters are the same either way.

    ``temporal_from`` is the first stage with temporal kernels (0: the stem, every stage, the
    paper's R(2+1)D; 2: stages 3-4 only, SlowOnly's layout, Feichtenhofer et al., *SlowFast
    Networks*, ICCV 2019): earlier stages see each frame on its own (1x3x3 kernels), so frames are
    mixed only after space has been summarised, where an object that moved a few pixels still
    falls in one receptive field. ``r2plus1d_late`` is ``downsample="max", temporal_from=2``.

    ``small_stem=True`` makes the stem's spatial stride 1 (as the image ResNets' ``cifar_stem``
    does for images of 64 px or less). It is not the default: on 32 px moving digits it did not
    keep the digit at random initialisation (BENCHMARKS.md, issue 22) and a training step cost
    about 4x as much; ``benchmarks/video_random_init.py`` measures it."""

    capabilities = frozenset[str]()

    def __init__(
        self,
        in_channels: int = 3,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        width: float = 1.0,
        strides: tuple[tuple[int, int], ...] = ((1, 2), (2, 2), (2, 2)),
        small_stem: bool = False,
        downsample: str = "stride",
        temporal_from: int = 0,
    ):
        super().__init__()
        if downsample not in ("stride", "max"):
            raise ValueError(f"downsample must be 'stride' or 'max', not {downsample!r}")
        self.downsample, self.temporal_from = downsample, temporal_from
        ws = [max(4, int(round(w * width))) for w in widths]
        #: the stem's spatial stride: 1 for small frames (``small_stem``), else 2
        self.stem_stride = 1 if small_stem else 2
        pool = downsample == "max" and self.stem_stride > 1
        s0 = 1 if pool else self.stem_stride
        stem: list[nn.Module] = [
            Conv2Plus1D(in_channels, ws[0], (1, s0))
            if temporal_from <= 0
            else _spatial(in_channels, ws[0], s0),
            nn.BatchNorm3d(ws[0]),
        ]
        if pool:  # after BN, before the forward's ReLU (the two commute: ReLU is monotone)
            stem.append(nn.MaxPool3d((1, 2, 2), ceil_mode=True))
        self.stem = nn.Sequential(*stem)
        self.relu = nn.ReLU(inplace=True)
        layers, c = [], ws[0]
        for i, (w, st) in enumerate(zip(ws[1:], strides, strict=True), start=1):
            temporal = i >= temporal_from
            st = st if temporal else (1, st[1])  # no temporal kernel: time kept
            layers.append(Block2Plus1D(c, w, st, downsample, temporal))
            c = w
        self.layers = nn.Sequential(*layers)
        self.out_dim = c
        for mod in self.modules():
            if isinstance(mod, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(self.relu(self.stem(x))).mean(dim=(2, 3, 4))


class FrameEncoder(nn.Module):
    """An image backbone applied to every frame, features averaged over time (the frame
    baseline)."""

    capabilities = frozenset[str]()

    def __init__(self, image_backbone: nn.Module):
        super().__init__()
        self.image = image_backbone
        self.out_dim = image_backbone.out_dim

    def forward(self, x: Tensor) -> Tensor:
        n, c, t, h, w = x.shape
        f = self.image(x.transpose(1, 2).reshape(n * t, c, h, w))
        return f.view(n, t, -1).mean(1)


class TwoPathway(nn.Module):
    """Two pathways over one clip, their pooled features concatenated: ``appearance`` sees each
    frame on its own (an image backbone, features averaged over time) and ``motion`` sees the
    clip as a whole (a (2+1)-D network).

    The design is the two-stream networks' (Simonyan and Zisserman, *Two-Stream Convolutional
    Networks for Action Recognition in Videos*, NeurIPS 2014: a spatial stream on frames beside a
    temporal one, fused late) and SlowFast's division of labour (Feichtenhofer et al., ICCV 2019:
    one pathway for spatial semantics, one for motion), without optical flow and without lateral
    connections. Why: a clip-level objective such as CVRL's InfoNCE can tell the clips of a batch
    apart by their motion alone, and a single (2+1)-D network then drops what the objects are
    (BENCHMARKS.md, issue 22); the appearance pathway cannot see motion (beyond the mean frame), so
    its share of the embedding can only be learned from appearance.

    ``frame_stride`` is SlowFast's ratio: the appearance pathway sees every ``frame_stride``-th
    frame (the first, then every k-th), the motion pathway every frame; what things look like
    changes more slowly than where they move, and the per-frame image backbone costs in
    proportion to the frames it sees."""

    capabilities = frozenset[str]()

    def __init__(self, appearance: nn.Module, motion: nn.Module, frame_stride: int = 1):
        super().__init__()
        if frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1, not {frame_stride}")
        self.appearance = appearance
        self.motion = motion
        self.frame_stride = frame_stride
        self.out_dim = appearance.out_dim + motion.out_dim

    def forward(self, x: Tensor) -> Tensor:
        slow = x[:, :, :: self.frame_stride]
        return torch.cat([self.appearance(slow), self.motion(x)], dim=1)


def _table(dim: int, grid: tuple[int, ...]) -> Tensor:
    """Fixed positions (T'H'W', dim), time major: a 2-D sin-cos table over space plus a 1-D one
    over time."""
    gt, gh, gw = grid
    space = sincos_2d(dim, gh, gw)  # (gh*gw, dim)
    time = sincos_1d(dim, torch.arange(gt)).float()  # (gt, dim)
    return (time[:, None, :] + space[None]).reshape(gt * gh * gw, dim)


class VideoViT(nn.Module):
    """A ViT over tubelets of ``tubelet`` frames x ``patch_size`` x ``patch_size`` pixels."""

    #: what methods may need of it (:class:`selfsup.methods.Needs`): tubelet tokens to mask
    capabilities = frozenset({"tokens"})

    def __init__(
        self,
        in_channels: int = 3,
        patch_size: int = 8,
        tubelet: int = 2,
        dim: int = 128,
        depth: int = 4,
        heads: int = 4,
    ):
        super().__init__()
        if dim % heads or dim % 4:
            raise ValueError(f"ViT width {dim} must be divisible by the {heads} heads and by 4")
        self.in_channels, self.patch_size, self.tubelet, self.dim = (
            in_channels,
            patch_size,
            tubelet,
            dim,
        )
        self.pool = "mean"
        k = (tubelet, patch_size, patch_size)
        self.patch_embed = nn.Conv3d(in_channels, dim, k, stride=k)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.body = Transformer(dim, depth, heads)
        self.out_dim = dim
        self.apply(init_weights)
        w = self.patch_embed.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        self._pos: dict[tuple, Tensor] = {}

    @property
    def patch_dim(self) -> int:
        """Values in one tubelet (the masked methods' pixel target per token)."""
        return self.tubelet * self.patch_size * self.patch_size * self.in_channels

    def token_grid(self, x: Tensor) -> tuple[int, int, int]:
        t, h, w = x.shape[-3:]
        p, k = self.patch_size, self.tubelet
        if h % p or w % p or t % k:
            raise ConfigError(
                f"tubelets of {k} x {p} x {p} do not divide clips of {t} x {h} x {w}; set "
                f"views.video.clip_frames to a multiple of {k} and a frame size divisible by {p}"
            )
        return t // k, h // p, w // p

    def pos_table(self, dim: int, grid: tuple[int, ...], device, dtype) -> Tensor:
        key = (dim, tuple(grid), str(device), dtype)
        if key not in self._pos:
            self._pos[key] = _table(dim, tuple(grid)).to(device=device, dtype=dtype)
        return self._pos[key]

    def mask_tokens(
        self, n: int, grid: tuple[int, ...], ratio: float, device
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Tube masking (:func:`tube_mask`)."""
        gt, gh, gw = grid
        return tube_mask(n, (gt, gh, gw), ratio, device)

    def patchify(self, x: Tensor) -> Tensor:
        """(N, C, T, H, W) -> (N, L, k*p*p*C), tokens time major, values (t, row, col, channel)."""
        n, c, t, h, w = x.shape
        k, p = self.tubelet, self.patch_size
        x = x.reshape(n, c, t // k, k, h // p, p, w // p, p)
        x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)
        return x.reshape(n, (t // k) * (h // p) * (w // p), k * p * p * c)

    def still(self, x: Tensor) -> Tensor:
        """A still clip of each clip: one random frame of it repeated over its time steps (the image
        branch of CrossVideoMAE's image-video contrast)."""
        n, t = x.shape[0], x.shape[2]
        pick = torch.randint(0, t, (n,), device=x.device)
        frame = x[torch.arange(n, device=x.device), :, pick]  # (N, C, H, W)
        return frame.unsqueeze(2).expand(-1, -1, t, -1, -1)

    def tokens(self, x: Tensor) -> Tensor:
        grid = self.token_grid(x)
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        return t + self.pos_table(self.dim, grid, t.device, t.dtype)

    def encode_tokens(self, t: Tensor) -> Tensor:
        cls = self.cls_token.expand(len(t), -1, -1).to(t.dtype)
        return self.body(torch.cat([cls, t], dim=1))

    def forward_visible(self, x: Tensor, ids_keep: Tensor) -> Tensor:
        return self.encode_tokens(gather_tokens(self.tokens(x), ids_keep))

    def pooled(self, z: Tensor) -> Tensor:
        return z[:, 1:].mean(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pooled(self.encode_tokens(self.tokens(x)))


def video_vit_patch(size: int) -> int:
    """The tubelet side for frames of ``size`` px: 4 up to 16 px, 8 up to 64, else 16."""
    return 4 if size <= 16 else 8 if size <= 64 else 16


VIDEO_BACKBONES = (
    "r2plus1d",
    "r2plus1d_pool",
    "r2plus1d_late",
    "r2plus1d_wide",
    "video_vit",
    "frame_convnet",
    "two_pathway",
)


def _frame_convnet(in_channels: int, width: float) -> nn.Module:
    from .convnet import ConvNet

    return ConvNet(in_channels, widths=(16, 32, 64, 128), width=width)


def build_video_backbone(name: str, in_channels: int, size: int, width: float = 1.0) -> nn.Module:
    if name == "r2plus1d":
        return R2Plus1D(in_channels, width=width)
    if name == "r2plus1d_pool":
        return R2Plus1D(in_channels, width=width, downsample="max")
    if name == "r2plus1d_late":
        return R2Plus1D(in_channels, width=width, downsample="max", temporal_from=2)
    if name == "r2plus1d_wide":
        return R2Plus1D(in_channels, widths=(32, 64, 128, 256), width=width)
    if name == "video_vit":
        step = 16
        d = max(step, int(round(128 * width / step)) * step)
        return VideoViT(in_channels, patch_size=video_vit_patch(size), dim=d)
    if name == "frame_convnet":
        return FrameEncoder(_frame_convnet(in_channels, width))
    if name == "two_pathway":
        motion = R2Plus1D(in_channels, width=width, downsample="max")
        return TwoPathway(FrameEncoder(_frame_convnet(in_channels, width)), motion, frame_stride=4)
    raise ConfigError(
        f"unknown video backbone '{name}'; choose one of: auto, {', '.join(VIDEO_BACKBONES)}"
    )


def tube_mask(
    n: int, grid: tuple[int, int, int], ratio: float, device=None
) -> tuple[Tensor, Tensor, Tensor]:
    """VideoMAE's tube masking over a (T', H', W') token grid: one random spatial mask per clip of
    ``int(H'W' ratio)`` positions, masked at every time step. Returns MAE's ``ids_keep`` (N, K),
    ``mask`` (N, L) (1 = masked) and ``ids_restore`` (N, L) over the L = T'H'W' tokens (time
    major)."""
    from ..errors import ConfigError

    if not 0 < ratio < 1:
        raise ConfigError(f"mask ratio {ratio} must be in (0, 1)")
    gt, gh, gw = grid
    hw = gh * gw
    keep = max(1, int(hw * (1 - ratio)))
    order = torch.rand(n, hw, device=device).argsort(1)  # spatial positions, kept first
    t_off = (torch.arange(gt, device=device) * hw).view(1, gt, 1)
    kept = (order[:, None, :keep] + t_off).reshape(n, gt * keep)
    dropped = (order[:, None, keep:] + t_off).reshape(n, gt * (hw - keep))
    ids_shuffle = torch.cat([kept, dropped], 1)
    ids_restore = ids_shuffle.argsort(1)
    mask = torch.ones(n, gt * hw, device=device)
    mask[:, : gt * keep] = 0
    return kept, mask.gather(1, ids_restore), ids_restore
