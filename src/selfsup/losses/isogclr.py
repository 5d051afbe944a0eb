"""iSogCLR: contrastive learning with individualised, learned temperatures (and SogCLR).

Qiu, Hu, Yuan, Zhou, Wang, Yang. *Not All Semantics are Created Equal: Contrastive Self-supervised
Learning with Automatic Temperature Individualization.* ICML 2023. The authors' implementation is
``GCLoss_v1(enable_isogclr=True)`` (unimodal) and ``GCLoss_v2`` (bimodal) in LibAUC.

The paper minimises ``(1/n) sum_i tau_i log E_j exp((s_ij - s_i+)/tau_i) + tau_i rho`` (the dual of
a KL-constrained distributionally robust loss) with a per-sample temperature ``tau_i``. Its
stochastic optimiser keeps, per *dataset* sample (indexed by the sample's index), a temperature
``tau_i``, a moving average ``u_i`` and a momentum ``m_i``. For anchor i of view 1 with cosine
similarities ``s_ij`` to its 2B - 2 negatives (the other samples, both views) and ``s_i+`` to its
positive:

1. ``g_i = mean_j exp(s_ij / tau_i)``;  ``u_i <- (1 - gamma) u_i + gamma g_i``  (``u_i = g_i`` on
   the first visit);
2. ``p_ij = exp(s_ij / tau_i) / u_i`` (detached); the loss for the network is
   ``-s_i+ + mean_j p_ij s_ij``;
3. ``d_i = log u_i + rho - mean_j p_ij s_ij / tau_i``; ``m_i <- (1 - beta) m_i + beta d_i``;
   ``tau_i <- clip(tau_i - eta m_i, tau_min, tau_max)``.

The same with view 2 as anchor (same ``tau_i``, same old ``u_i``); the loss is the sum of the two
sides averaged over anchors; the stored ``u_i`` and ``d_i`` are the averages of the two sides.
Unimodal defaults: tau_init 0.1, gamma 0.9, rho 0.3, eta 0.01, beta 0.9, tau in [0.05, 0.7].
``learn_tau=False`` keeps tau fixed: SogCLR (Yuan et al. 2022).

:class:`ISogCLRBimodal` is LibAUC's ``GCLoss_v2`` (``libauc/losses/contrastive.py``, with
``temperature_scheme="individual_learnable"``) for CLIP-like pairs: image anchors against the other
texts and text anchors against the other images (K = the number of candidates, B - 1 negatives
each), separate image and text state. Unlike the unimodal rule it works on the *shifted* logits
``h_ij = s_ij - s_ii`` and keeps, per sample, a running maximum ``b_i`` of ``h_ij / tau_i`` (over
all candidates, the positive's 0 included) so that ``exp`` never overflows:

1. ``b_i' = max(b_i, max_j h_ij / tau_i)``; ``e_ij = exp(h_ij / tau_i - b_i')`` over negatives;
2. ``u_i <- (1 - gamma) u_i exp(b_i - b_i') + gamma sum_j e_ij / (K - 1)`` (``u_i = g_i`` on the
   first visit), clamped at 1e-20; ``p_ij = e_ij / u_i`` (detached);
3. the loss is ``(1/2) [mean_i sum_j p_ij h_ij (images) + mean_i sum_j p_ij h_ij (texts)]``: a
   *sum* over the negatives (no 1/(K - 1)), the two directions averaged;
4. ``d_i = log u_i + rho + b_i' - sum_j p_ij h_ij / tau_i / (K - 1)``, then ``m`` and ``tau`` as
   above.

Defaults (LibAUC's): tau_init 0.01, gamma 0.9, rho 6.0, eta 0.01, beta 0.9, tau in [0.005, 0.05].
The state update is done in float64. LibAUC's first-visit rule looks at the whole batch (gamma = 1
while ``u[index].sum() == 0``); here it is per sample, which agrees whenever a batch is all new or
all seen.

The state is buffers per modality, so it is in ``state_dict()`` and in every checkpoint. The update
is computed in ``forward`` while the module is in training mode. With ``defer=False`` (default, as
LibAUC) it is written at once; with ``defer=True`` it is staged and written by :meth:`commit`, which
a method calls from ``after_step``, so a step the training loop skips (a non-finite loss or
gradient) never writes its state; a staged update not committed is dropped by the next forward.
Under torch.distributed the negatives come from every rank and every rank applies every rank's
updates, so the state stays identical across ranks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ._pairs import check_pair
from .distributed import gather, world


def isog_side(
    s: Tensor, neg: Tensor, s_pos: Tensor, tau: Tensor, u_old: Tensor, gamma: float, rho: float
) -> tuple[Tensor, Tensor, Tensor]:
    """One anchor side of the rule. ``s`` (M, K) similarities to candidates, ``neg`` (M, K) bool
    mask of the negatives, ``s_pos`` (M,), ``tau`` and ``u_old`` (M,) float64 state.
    Returns the per-anchor loss (M,), the new ``u`` and ``d`` (float64, detached)."""
    s64 = s.detach().double()
    n_neg = neg.sum(1).double()
    e = torch.where(neg, torch.exp(s64 / tau[:, None]), torch.zeros_like(s64))
    g = e.sum(1) / n_neg
    u = torch.where(u_old > 0, (1 - gamma) * u_old + gamma * g, g)
    p = e / u[:, None]
    loss = -s_pos + (p.to(s.dtype) * s).sum(1) / n_neg.to(s.dtype)
    d = torch.log(u) + rho - (p * s64).sum(1) / n_neg / tau
    return loss, u, d


def gcl_v2_side(
    s: Tensor,
    neg: Tensor,
    s_pos: Tensor,
    tau: Tensor,
    u_old: Tensor,
    b_old: Tensor,
    gamma: float,
    rho: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One direction of LibAUC's ``GCLoss_v2``: ``s`` (M, K) similarities to the K candidates,
    ``neg`` (M, K) mask of the negatives, ``s_pos`` (M,), float64 state ``tau``, ``u_old``,
    ``b_old`` (M,). Returns the per-anchor loss (M,) and the new ``u``, ``d``, ``b`` (detached)."""
    h = s - s_pos[:, None]  # shifted logits, with gradient
    k = s.shape[1]
    hd = h.detach().double() / tau[:, None]
    b = torch.maximum(b_old, hd.max(1).values)
    e = torch.where(neg, torch.exp(hd - b[:, None]), torch.zeros_like(hd))
    g = e.sum(1) / (k - 1)
    u = torch.where(u_old > 0, (1 - gamma) * u_old * torch.exp(b_old - b) + gamma * g, g).clamp_min(
        1e-20
    )
    p = e / u[:, None]
    loss = (p.to(h.dtype) * h).sum(1)
    d = torch.log(u) + rho + b - (p * hd).sum(1) / (k - 1)
    return loss, u, d, b


class _State(nn.Module):
    tau: Tensor
    u: Tensor
    m: Tensor
    b: Tensor

    def __init__(self, n: int, tau_init: float, shift: bool = False):
        super().__init__()
        self.register_buffer("tau", torch.full((n,), float(tau_init), dtype=torch.float64))
        self.register_buffer("u", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("m", torch.zeros(n, dtype=torch.float64))
        if shift:  # GCLoss_v2's running maximum of the scaled logits
            self.register_buffer("b", torch.zeros(n, dtype=torch.float64))


class _ISogBase(nn.Module):
    def __init__(
        self,
        n_samples: int,
        tau_init: float,
        gamma: float,
        rho: float,
        eta: float,
        beta: float,
        tau_min: float,
        tau_max: float,
        learn_tau: bool,
        defer: bool = False,
    ):
        super().__init__()
        if n_samples < 1:
            raise ConfigError(f"iSogCLR needs the dataset size to size its state, got {n_samples}")
        if not (0 < tau_min <= tau_init <= tau_max):
            raise ConfigError(
                f"iSogCLR needs 0 < tau_min <= tau_init <= tau_max, got {tau_min}, "
                f"{tau_init}, {tau_max}"
            )
        if not (0 < gamma <= 1 and 0 < beta <= 1):
            raise ConfigError(f"gamma and beta must be in (0, 1], got {gamma} and {beta}")
        self.n_samples = n_samples
        self.gamma, self.rho, self.eta, self.beta = gamma, rho, eta, beta
        self.tau_min, self.tau_max, self.learn_tau = tau_min, tau_max, learn_tau
        self.defer = defer
        self._pending: list[tuple[Any, ...]] = []

    def _index(self, index: Tensor, b: int) -> Tensor:
        index = index.long()
        if index.shape != (b,):
            raise ConfigError(
                f"iSogCLR needs one sample index per row: {b} rows, index {tuple(index.shape)}"
            )
        if int(index.min()) < 0 or int(index.max()) >= self.n_samples:
            raise ConfigError(
                f"sample index out of range [0, {self.n_samples}); the state is sized to the "
                "dataset, build the loss with the dataset's size"
            )
        return index

    @torch.no_grad()
    def _update(
        self, st: _State, index: Tensor, u: Tensor, d: Tensor, b: Tensor | None = None
    ) -> None:
        if not self.training:
            return
        m = (1 - self.beta) * st.m[index] + self.beta * d
        tau = st.tau[index]
        if self.learn_tau:
            tau = (tau - self.eta * m).clamp(self.tau_min, self.tau_max)
        new = {"u": u, "m": m, "tau": tau}
        if b is not None:
            new["b"] = b
        idx = gather(index)  # every rank applies every rank's update
        new = {k: gather(v) for k, v in new.items()}
        self._pending.append((st, idx, new))
        if not self.defer:
            self.commit()

    @torch.no_grad()
    def commit(self) -> None:
        """Write the staged state update (``defer=True``); call after a step that was taken."""
        for st, idx, new in self._pending:
            for k, v in new.items():
                getattr(st, k)[idx] = v
        self._pending = []


class ISogCLR(_ISogBase):
    """Unimodal iSogCLR loss with its per-sample state; ``forward(z1, z2, index)``."""

    def __init__(
        self,
        n_samples: int,
        tau_init: float = 0.1,
        gamma: float = 0.9,
        rho: float = 0.3,
        eta: float = 0.01,
        beta: float = 0.9,
        tau_min: float = 0.05,
        tau_max: float = 0.7,
        learn_tau: bool = True,
        defer: bool = False,
    ):
        super().__init__(
            n_samples, tau_init, gamma, rho, eta, beta, tau_min, tau_max, learn_tau, defer
        )
        self.state = _State(n_samples, tau_init)

    def forward(self, z1: Tensor, z2: Tensor, index: Tensor) -> Tensor:
        check_pair("isogclr", z1, z2)
        self._pending = []  # an update staged by a step that was not taken is dropped
        b = z1.shape[0]
        index = self._index(index.to(z1.device), b)
        rank, size = world()
        z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        k = torch.cat([gather(z1), gather(z2)])  # (2RB, D)
        i = torch.arange(b, device=z1.device) + rank * b
        neg = torch.ones(b, k.shape[0], dtype=torch.bool, device=z1.device)
        neg[torch.arange(b), i] = False
        neg[torch.arange(b), i + size * b] = False
        s_pos = (z1 * z2).sum(1)
        tau, u_old = self.state.tau[index], self.state.u[index]
        loss1, u1, d1 = isog_side(z1 @ k.t(), neg, s_pos, tau, u_old, self.gamma, self.rho)
        loss2, u2, d2 = isog_side(z2 @ k.t(), neg, s_pos, tau, u_old, self.gamma, self.rho)
        self._update(self.state, index, (u1 + u2) / 2, (d1 + d2) / 2)
        return (loss1 + loss2).mean()

    @torch.no_grad()
    def objective(self, z1: Tensor, z2: Tensor, index: Tensor) -> Tensor:
        """The paper's objective ``mean_i tau_i log mean_j exp((s_ij - s_i+)/tau_i) + tau_i rho``
        at the current temperatures, averaged over both anchor views (a monitor, not a loss)."""
        z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        b = z1.shape[0]
        tau = self.state.tau[index.long()].to(z1.dtype)
        k = torch.cat([z1, z2])
        mask = torch.ones(b, 2 * b, dtype=torch.bool, device=z1.device)
        mask[torch.arange(b), torch.arange(b)] = False
        mask[torch.arange(b), torch.arange(b) + b] = False
        s_pos = (z1 * z2).sum(1, keepdim=True)
        out = torch.zeros((), dtype=z1.dtype, device=z1.device)
        for z in (z1, z2):
            x = ((z @ k.t() - s_pos) / tau[:, None]).masked_fill(~mask, float("-inf"))
            lme = torch.logsumexp(x, 1) - torch.log(torch.tensor(2.0 * b - 2))
            out = out + (tau * lme + tau * self.rho).mean() / 2
        return out


class ISogCLRBimodal(_ISogBase):
    """Bimodal iSogCLR: LibAUC's ``GCLoss_v2`` (separate image/text temperatures); ``forward(a, b,
    index)`` for pairs."""

    def __init__(
        self,
        n_samples: int,
        tau_init: float = 0.01,
        gamma: float = 0.9,
        rho: float = 6.0,
        eta: float = 0.01,
        beta: float = 0.9,
        tau_min: float = 0.005,
        tau_max: float = 0.05,
        learn_tau: bool = True,
        defer: bool = False,
    ):
        super().__init__(
            n_samples, tau_init, gamma, rho, eta, beta, tau_min, tau_max, learn_tau, defer
        )
        self.state_a = _State(n_samples, tau_init, shift=True)
        self.state_b = _State(n_samples, tau_init, shift=True)

    def forward(self, a: Tensor, b: Tensor, index: Tensor) -> Tensor:
        check_pair("isogclr (bimodal)", a, b)
        self._pending = []
        n = a.shape[0]
        index = self._index(index.to(a.device), n)
        rank, _ = world()
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
        ka, kb = gather(a), gather(b)
        neg = torch.ones(n, ka.shape[0], dtype=torch.bool, device=a.device)
        neg[torch.arange(n), torch.arange(n) + rank * n] = False
        s_pos = (a * b).sum(1)
        sa, sb = self.state_a, self.state_b
        la, ua, da, ba = gcl_v2_side(
            a @ kb.t(), neg, s_pos, sa.tau[index], sa.u[index], sa.b[index], self.gamma, self.rho
        )
        lb, ub, db, bb = gcl_v2_side(
            b @ ka.t(), neg, s_pos, sb.tau[index], sb.u[index], sb.b[index], self.gamma, self.rho
        )
        self._update(sa, index, ua, da, ba)
        self._update(sb, index, ub, db, bb)
        return (la.mean() + lb.mean()) / 2
