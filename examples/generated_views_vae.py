"""Positive views from a generative model: a small VAE trained here on digits, through the plug-in
API.

The idea of *Generative Models as a Data Source for Multiview Representation Learning* (Jahanian,
Puig, Tian, Isola, ICLR 2022), at CPU scale: two views of an image are two decodings of nearby
points of a generative model's latent space. Here a variational autoencoder (Kingma and
Welling 2014) is trained for a few seconds on the training split of the built-in digits; the plug-in
encodes each image, perturbs its latent mean with Gaussian noise of ``sigma`` posterior standard
deviations (each view draws its own noise, from the seed it is given) and decodes. SimCLR then
trains on

- ``hand``: the hand-made ``digits`` views (crop, small affine, brightness/contrast),
- ``generated``: the VAE's views only,
- ``both``: the hand-made views of the VAE's views,

at the same number of epochs, and the script prints kNN and linear top-1 on the digits test split::

    python examples/generated_views_vae.py --epochs 20 --out /tmp/genviews

Everything runs on the CPU in minutes; nothing is downloaded. This is not the view generation of
the multiple-latent-variable generative models paper (chunk-wise latent perturbation; authors' code
SerezD/mi_ml_gen): a single-latent VAE perturbed as a whole, as Jahanian et al. do with GANs.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

import selfsup
from selfsup.data import load_source
from selfsup.views import PRESETS, ImageViews
from selfsup.views.generator import register_generator


class VAE(nn.Module):
    """An MLP VAE for 8x8 grayscale images: 64 -> 256 -> (mu, logvar) of ``latent`` -> 256 -> 64."""

    def __init__(self, pixels: int = 64, hidden: int = 256, latent: int = 16):
        super().__init__()
        self.enc = nn.Sequential(
            nn.Linear(pixels, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.mu, self.logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)
        self.dec = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, pixels),
        )

    def encode(self, x):
        h = self.enc(x.flatten(1))
        return self.mu(h), self.logvar(h).clamp(-8, 8)

    def decode(self, z, shape):
        return torch.sigmoid(self.dec(z)).view(shape)

    def loss(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        rec = F.binary_cross_entropy_with_logits(self.dec(z), x.flatten(1), reduction="sum") / len(
            x
        )
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)
        return rec + kl


def train_vae(x: torch.Tensor, epochs: int = 200, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    vae = VAE(pixels=x[0].numel())
    opt = torch.optim.Adam(vae.parameters(), lr=2e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(128):
            loss = vae.loss(x[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return vae.eval()


def make_plugin(vae: VAE, sigma: float, n_views: int = 2, hand_made: bool = False):
    """The plug-in: ``views(x, seed)`` with x float (N, C, H, W) in [0, 1]."""
    hand = ImageViews(PRESETS["digits"], 1, 1) if hand_made else None

    @torch.no_grad()
    def views(x: torch.Tensor, seed: int) -> list[torch.Tensor]:
        g = torch.Generator(device=x.device).manual_seed(seed)
        v = vae.to(x.device)
        mu, logvar = v.encode(x)
        std = (0.5 * logvar).exp()
        out = [
            v.decode(
                mu + sigma * std * torch.randn(mu.shape, generator=g, device=x.device), x.shape
            )
            for _ in range(n_views)
        ]
        if hand is None:
            return out
        with torch.random.fork_rng(devices=[]):  # hand-made views of the generated ones, same seed
            torch.manual_seed(seed)
            return [hand((o * 255).round().to(torch.uint8))[0] for o in out]

    return views


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--vae-epochs", type=int, default=200)
    ap.add_argument(
        "--sigma", type=float, default=1.0, help="latent noise, in posterior standard deviations"
    )
    ap.add_argument("--settings", default="hand,generated,both")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="/tmp/selfsup-genviews")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    train = load_source("digits", None, False, None).train  # the VAE never sees the test split
    x = torch.from_numpy(train.x).permute(0, 3, 1, 2).float() / 255.0
    t0 = time.perf_counter()
    vae = train_vae(x, a.vae_epochs, a.seed)
    with torch.no_grad():
        final = float(vae.loss(x))
    print(
        f"VAE trained in {time.perf_counter() - t0:.1f} s (final loss {final:.2f} nats per image)",
        flush=True,
    )
    register_generator("vae-digits", make_plugin(vae, a.sigma))
    register_generator("vae-digits+hand", make_plugin(vae, a.sigma, hand_made=True))
    for setting in a.settings.split(","):
        gen = {"hand": None, "generated": "vae-digits", "both": "vae-digits+hand"}[setting]
        cfg = {
            "method": "simclr",
            "data": {"source": "digits"},
            "views": {"generator": gen},
            "model": {"backbone": "convnet"},
            "params": {"temperature": 0.2},
            "optim": {"name": "adamw", "lr": 0.002, "warmup_epochs": 2},
            "train": {"epochs": a.epochs, "batch_size": 128, "seed": a.seed, "progress": "none"},
            "eval": {
                "protocols": ["knn", "linear"],
                "knn_k": 20,
                "baselines": False,
                "report": False,
                "diagnostics": False,
            },
            "out": f"{a.out}/{setting}",
        }
        run = selfsup.train(cfg, overwrite=True)
        e = run.summary["eval"]
        row = {
            "setting": setting,
            "sigma": a.sigma,
            "epochs": a.epochs,
            "knn_top1": e["knn_top1"],
            "linear_top1": e["linear_top1"],
            "train_s": run.summary["train_time_s"],
        }
        print(json.dumps(row), flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
