"""Training diagnostics: is the representation collapsing, spreading, aligning?

Pure functions of embeddings (each documented with its source), and :class:`Monitor`, which computes
them on a fixed held-out batch with fixed views at the end of each epoch.

- alignment and uniformity (Wang & Isola 2020, *Understanding Contrastive Representation Learning
  through Alignment and Uniformity on the Hypersphere*), on L2-normalised embeddings:
  ``align = E ||f(x) - f(x+)||^alpha`` (alpha=2) and ``unif = log E_{i<j} exp(-t ||f_i - f_j||^2)``
  (t=2);
- effective rank RankMe (Garrido et al. 2023): ``exp(-sum_k p_k log p_k)``,
  ``p_k = s_k / ||s||_1 + eps`` with ``s`` the singular values of the embedding matrix; equals k for
  k equal singular values;
- per-dimension standard deviation of L2-normalised embeddings (SimSiam, Chen & He 2021): 0 under
  complete collapse, about ``1/sqrt(D)`` when spread out;
- cosine similarities of positive pairs (two views of a sample) and of negatives (other samples);
- the spectrum of the embeddings' covariance (dimensional collapse, Jing et al. 2022);
- DirectPred (Tian et al. 2021): how well a linear predictor ``W`` shares the eigenbasis ``U`` of
  the correlation ``F = E f f^T`` of its input: ``||diag(U^T W U)||^2 / ||U^T W U||_F^2`` (1 when
  aligned);
- per-sample temperatures (iSogCLR, Qiu et al. 2023) when the method holds a ``tau`` buffer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PREFIX = "diag_"


def alignment(z1: Tensor, z2: Tensor, alpha: float = 2.0) -> float:
    """Mean ``||f(x) - f(x+)||^alpha`` of the L2-normalised positive pairs (lower is better)."""
    a, b = F.normalize(z1.double(), dim=1), F.normalize(z2.double(), dim=1)
    return float((a - b).norm(dim=1).pow(alpha).mean())


def uniformity(z: Tensor, t: float = 2.0) -> float:
    """``log`` of the mean Gaussian potential ``exp(-t ||f_i - f_j||^2)`` over pairs i < j."""
    a = F.normalize(z.double(), dim=1)
    return float(torch.pdist(a, p=2).pow(2).mul(-t).exp().mean().log())


def effective_rank(z: Tensor, eps: float = 1e-7) -> float:
    """RankMe: the exponential of the entropy of the normalised singular values of ``z`` (N, D)."""
    s = torch.linalg.svdvals(z.double())
    p = s / s.sum().clamp_min(1e-300) + eps
    return float((-torch.special.xlogy(p, p).sum()).exp())


def dim_std(z: Tensor) -> Tensor:
    """Standard deviation of each dimension of the L2-normalised embeddings, shape (D,)."""
    return F.normalize(z.double(), dim=1).std(dim=0)


def similarities(z1: Tensor, z2: Tensor) -> tuple[Tensor, Tensor]:
    """Cosine similarities of the positives ``(z1_i, z2_i)`` (N,) and negatives ``(z1_i, z2_j)``,
    i != j."""
    s = F.normalize(z1.double(), dim=1) @ F.normalize(z2.double(), dim=1).t()
    off = ~torch.eye(len(s), dtype=torch.bool, device=s.device)
    return s.diagonal().clone(), s[off]


def spectrum(z: Tensor) -> Tensor:
    """Eigenvalues of the covariance of the (L2-normalised, centred) embeddings, descending,
    divided by the largest."""
    a = F.normalize(z.double(), dim=1)
    a = a - a.mean(0)
    s = torch.linalg.svdvals(a).pow(2)
    return s / s[0].clamp_min(1e-300)


def directpred_alignment(weight: Tensor, corr: Tensor) -> float:
    """Share of the (symmetrised) predictor ``weight`` that is diagonal in the eigenbasis of
    ``corr``."""
    w = weight.double()
    w = (w + w.t()) / 2
    _, u = torch.linalg.eigh(corr.double())
    m = u.t() @ w @ u
    return float(m.diagonal().pow(2).sum() / m.pow(2).sum().clamp_min(1e-300))


def histogram(values: Tensor, lo: float, hi: float, bins: int = 40) -> dict:
    v = values.detach().double().cpu().clamp(lo, hi)
    counts = torch.histc(v, bins=bins, min=lo, max=hi)
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    return {"edges": [round(float(e), 6) for e in edges], "counts": [int(c) for c in counts]}


def embedding_diagnostics(z1: Tensor, z2: Tensor) -> dict[str, float]:
    """The scalar diagnostics of two views' embeddings (N, D), without prefix."""
    pos, neg = similarities(z1, z2)
    z = torch.cat([z1, z2])
    std = dim_std(z1)
    return {
        "alignment": alignment(z1, z2),
        "uniformity": uniformity(z1),
        "rankme": effective_rank(z1),
        "std_mean": float(std.mean()),
        "std_min": float(std.min()),
        "std_ideal": float(1 / z.shape[1] ** 0.5),
        "pos_sim": float(pos.mean()),
        "neg_sim": float(neg.mean()),
    }


def find_linear_predictor(method: nn.Module) -> nn.Linear | None:
    """A square ``nn.Linear`` whose name mentions ``predictor`` (DirectPred-style), if any."""
    for name, mod in method.named_modules():
        if (
            "predictor" in name
            and isinstance(mod, nn.Linear)
            and mod.in_features == mod.out_features
        ):
            return mod
    return None


def find_tau(method: nn.Module) -> Tensor | None:
    """A per-sample temperature buffer named ``tau`` (iSogCLR), if any."""
    for name, buf in method.named_buffers():
        if name.split(".")[-1] == "tau" and buf.numel() > 1:
            return buf
    return None


class Monitor:
    """Diagnostics on a fixed held-out batch with fixed views, cheap enough for every epoch.

    ``x``: uint8 images (N, C, H, W) on the training device; ``views``: the run's view maker.
    Calling the monitor returns the scalars (prefixed ``diag_``) for metrics.jsonl; :meth:`full`
    adds the arrays (similarity histograms, spectrum, temperature histogram) for summary.json.
    """

    def __init__(self, method: nn.Module, views, x: Tensor, seed: int = 0):
        self.views, self.x, self.seed = views, x, seed
        self._pred = find_linear_predictor(method)
        self._pred_in: Tensor | None = None
        if self._pred is not None:
            self._pred.register_forward_pre_hook(self._capture)

    def _capture(self, module, args):
        self._pred_in = args[0].detach()

    @torch.no_grad()
    def _embed(self, method: nn.Module) -> tuple[Tensor, Tensor]:
        was = method.training
        method.eval()
        devs = [self.x.device] if self.x.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devs):
                torch.manual_seed(self.seed)
                v = self.views(self.x)
            pred_in = self._pred_in
            z = method.embed(v[:2])
            self._pred_in = pred_in  # keep the training batch's predictor input, not ours
        finally:
            method.train(was)
        return z[0].float().flatten(1), z[1].float().flatten(1)

    def _extra(self, method: nn.Module) -> dict[str, float]:
        out = {}
        if self._pred is not None:
            d = self._pred.in_features
            corr = next(
                (
                    b
                    for n, b in method.named_buffers()
                    if n.split(".")[-1] == "corr" and tuple(b.shape) == (d, d)
                ),
                None,
            )  # DirectPred's running correlation
            if corr is None and self._pred_in is not None:  # else: the last training batch's input
                f = self._pred_in.double().flatten(1)
                corr = f.t() @ f / len(f)
            if corr is not None and bool(corr.abs().sum() > 0):
                out["directpred_align"] = directpred_alignment(self._pred.weight.detach(), corr)
        tau = find_tau(method)
        if tau is not None:
            t = tau.detach().double()
            out.update(
                tau_mean=float(t.mean()),
                tau_std=float(t.std()),
                tau_min=float(t.min()),
                tau_max=float(t.max()),
            )
        return out

    def __call__(self, method: nn.Module) -> dict[str, float]:
        z1, z2 = self._embed(method)
        d = embedding_diagnostics(z1, z2)
        d.update(self._extra(method))
        return {PREFIX + k: v for k, v in d.items()}

    def full(self, method: nn.Module) -> dict:
        z1, z2 = self._embed(method)
        d: dict = embedding_diagnostics(z1, z2)
        d.update(self._extra(method))
        pos, neg = similarities(z1, z2)
        lo, hi = float(min(pos.min(), neg.min())), float(max(pos.max(), neg.max()))
        lo, hi = max(-1.0, lo - 0.01), min(1.0, hi + 0.01)
        d["pos_hist"] = histogram(pos, lo, hi)
        d["neg_hist"] = histogram(neg, lo, hi)
        d["spectrum"] = [float(f"{v:.4g}") for v in spectrum(torch.cat([z1, z2]))]
        tau = find_tau(method)
        if tau is not None:
            d["tau_hist"] = histogram(tau, float(tau.min()), float(tau.max()) + 1e-9, 30)
        d["batch_size"] = len(z1)
        return d
