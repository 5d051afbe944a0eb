"""iSogCLR: contrastive learning with individualised, learned temperatures (and SogCLR).

Qiu, Hu, Yuan, Zhou, Wang, Yang. *Not All Semantics are Created Equal: Contrastive Self-supervised
Learning with Automatic Temperature Individualization.* ICML 2023. The authors' implementation is
``GCLoss_v1(enable_isogclr=True)`` (unimodal) and ``GCLoss_v2`` (bimodal) in LibAUC.

The paper minimises ``(1/n) sum_i tau_i log E_j exp((s_ij - s_i+)/tau_i) + tau_i rho`` (the dual of a
KL-constrained distributionally robust loss) with a per-sample temperature ``tau_i``. Its stochastic
optimiser keeps, per *dataset* sample (indexed by the sample's index), a temperature ``tau_i``, a
moving average ``u_i`` and a momentum ``m_i``. For anchor i of view 1 with cosine similarities
``s_ij`` to its 2B - 2 negatives (the other samples, both views) and ``s_i+`` to its positive:

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

:class:`ISogCLRBimodal` applies the same rule per modality (CLIP-like pairs; image anchors against
the other texts and text anchors against the other images, B - 1 negatives each), with separate
image and text state; defaults tau_init 0.01, rho 6.0, tau in [0.005, 0.05]. The state update is
done in float64 (``exp(s / 0.005)`` overflows float32).

The state is three buffers per modality, so it is in ``state_dict()`` and in every checkpoint. The
update happens in ``forward`` while the module is in training mode. Under torch.distributed the
negatives come from every rank and every rank applies every rank's updates, so the state stays
identical across ranks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ._pairs import check_pair
from .distributed import gather, world


def isog_side(s: Tensor, neg: Tensor, s_pos: Tensor, tau: Tensor, u_old: Tensor, gamma: float,
              rho: float) -> tuple[Tensor, Tensor, Tensor]:
    """One anchor side of the rule. ``s`` (M, K) similarities to candidates, ``neg`` (M, K) bool mask
    of the negatives, ``s_pos`` (M,), ``tau`` and ``u_old`` (M,) float64 state.
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


class _State(nn.Module):
    def __init__(self, n: int, tau_init: float):
        super().__init__()
        self.register_buffer("tau", torch.full((n,), float(tau_init), dtype=torch.float64))
        self.register_buffer("u", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("m", torch.zeros(n, dtype=torch.float64))


class _ISogBase(nn.Module):
    def __init__(self, n_samples: int, tau_init, gamma, rho, eta, beta, tau_min, tau_max, learn_tau):
        super().__init__()
        if n_samples < 1:
            raise ConfigError(f"iSogCLR needs the dataset size to size its state, got {n_samples}")
        if not (0 < tau_min <= tau_init <= tau_max):
            raise ConfigError(f"iSogCLR needs 0 < tau_min <= tau_init <= tau_max, got {tau_min}, "
                              f"{tau_init}, {tau_max}")
        if not (0 < gamma <= 1 and 0 < beta <= 1):
            raise ConfigError(f"gamma and beta must be in (0, 1], got {gamma} and {beta}")
        self.n_samples = n_samples
        self.gamma, self.rho, self.eta, self.beta = gamma, rho, eta, beta
        self.tau_min, self.tau_max, self.learn_tau = tau_min, tau_max, learn_tau

    def _index(self, index: Tensor, b: int) -> Tensor:
        index = index.long()
        if index.shape != (b,):
            raise ConfigError(f"iSogCLR needs one sample index per row: {b} rows, index {tuple(index.shape)}")
        if int(index.min()) < 0 or int(index.max()) >= self.n_samples:
            raise ConfigError(f"sample index out of range [0, {self.n_samples}); the state is sized to the "
                              "dataset, build the loss with the dataset's size")
        return index

    @torch.no_grad()
    def _update(self, st: _State, index: Tensor, u: Tensor, d: Tensor) -> None:
        if not self.training:
            return
        m = (1 - self.beta) * st.m[index] + self.beta * d
        tau = st.tau[index]
        if self.learn_tau:
            tau = (tau - self.eta * m).clamp(self.tau_min, self.tau_max)
        idx, u, m, tau = (gather(t) for t in (index, u, m, tau))  # every rank applies every update
        st.u[idx], st.m[idx], st.tau[idx] = u, m, tau


class ISogCLR(_ISogBase):
    """Unimodal iSogCLR loss with its per-sample state; ``forward(z1, z2, index)``."""

    def __init__(self, n_samples: int, tau_init: float = 0.1, gamma: float = 0.9, rho: float = 0.3,
                 eta: float = 0.01, beta: float = 0.9, tau_min: float = 0.05, tau_max: float = 0.7,
                 learn_tau: bool = True):
        super().__init__(n_samples, tau_init, gamma, rho, eta, beta, tau_min, tau_max, learn_tau)
        self.state = _State(n_samples, tau_init)

    def forward(self, z1: Tensor, z2: Tensor, index: Tensor) -> Tensor:
        check_pair("isogclr", z1, z2)
        b = z1.shape[0]
        index = self._index(index.to(z1.device), b)
        rank, size = world()
        z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        k = torch.cat([gather(z1), gather(z2)])                    # (2RB, D)
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
        out = 0
        for z in (z1, z2):
            x = ((z @ k.t() - s_pos) / tau[:, None]).masked_fill(~mask, float("-inf"))
            lme = torch.logsumexp(x, 1) - torch.log(torch.tensor(2.0 * b - 2))
            out = out + (tau * lme + tau * self.rho).mean() / 2
        return out


class ISogCLRBimodal(_ISogBase):
    """Bimodal iSogCLR (separate image/text temperatures); ``forward(a, b, index)`` for pairs."""

    def __init__(self, n_samples: int, tau_init: float = 0.01, gamma: float = 0.9, rho: float = 6.0,
                 eta: float = 0.01, beta: float = 0.9, tau_min: float = 0.005, tau_max: float = 0.05,
                 learn_tau: bool = True):
        super().__init__(n_samples, tau_init, gamma, rho, eta, beta, tau_min, tau_max, learn_tau)
        self.state_a = _State(n_samples, tau_init)
        self.state_b = _State(n_samples, tau_init)

    def forward(self, a: Tensor, b: Tensor, index: Tensor) -> Tensor:
        check_pair("isogclr (bimodal)", a, b)
        n = a.shape[0]
        index = self._index(index.to(a.device), n)
        rank, _ = world()
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
        ka, kb = gather(a), gather(b)
        neg = torch.ones(n, ka.shape[0], dtype=torch.bool, device=a.device)
        neg[torch.arange(n), torch.arange(n) + rank * n] = False
        s_pos = (a * b).sum(1)
        la, ua, da = isog_side(a @ kb.t(), neg, s_pos, self.state_a.tau[index], self.state_a.u[index],
                               self.gamma, self.rho)
        lb, ub, db = isog_side(b @ ka.t(), neg, s_pos, self.state_b.tau[index], self.state_b.u[index],
                               self.gamma, self.rho)
        self._update(self.state_a, index, ua, da)
        self._update(self.state_b, index, ub, db)
        return la.mean() + lb.mean()
