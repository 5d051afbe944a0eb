"""What a sound encoder's embeddings of ``spoken_digits``' unseen voices hold (issue 21, byola).

    python benchmarks/byola_probe.py RUN_DIR [RUN_DIR ...]

For each trained run (its ``encoder.safetensors``) and for the same encoder re-initialised (seed
0), on the 480 test clips (24 voices never heard in training), embedded as evaluation embeds them:

- leave-one-out 10-NN (cosine, majority vote) accuracy of the word and of the voice (chance 1/10
  and 1/24);
- leave-one-out 10-NN (cosine, mean of the neighbours) R^2 of clip properties: the length in
  samples, the level (mean log-mel), the spectral tilt (mean of the lowest 16 bands minus the
  highest 16) and the floor (the mean over bands of each band's deviation over time), all from the
  raw log-mel features;
- collapse: dimensions that never vary, the effective rank (RankMe) of the centred embeddings,
  and the mean cosine between clips (the squared norm of the mean unit embedding).
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F

import selfsup
from selfsup.data import load_source
from selfsup.eval.diagnostics import effective_rank
from selfsup.modalities import get


def embed(enc, data, mod) -> torch.Tensor:
    enc.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(data.x), 160):
            out.append(enc(mod.prepare(torch.from_numpy(data.x[i : i + 160]), enc.meta)))
    return torch.cat(out).double()


def neighbours(z: torch.Tensor, k: int = 10) -> torch.Tensor:
    u = F.normalize(z, dim=1)
    s = u @ u.T
    s.fill_diagonal_(-2.0)
    return s.topk(k, dim=1).indices


def vote(nn: torch.Tensor, labels: np.ndarray) -> float:
    pred = [np.unique(labels[r], return_counts=True) for r in nn.numpy()]
    return float(np.mean([u[c.argmax()] for u, c in pred] == labels))


def r2(nn: torch.Tensor, t: torch.Tensor) -> float:
    pred = t[nn].mean(1)
    return float(1 - ((pred - t) ** 2).sum() / ((t - t.mean()) ** 2).sum())


def report(tag: str, z: torch.Tensor, word, voice, props) -> None:
    nn = neighbours(z)
    zc = z - z.mean(0)
    mean_cos = float(F.normalize(z, dim=1).mean(0).norm() ** 2)
    fields = {
        "word": round(vote(nn, word), 3),
        "voice": round(vote(nn, voice), 3),
        **{f"R2 {k}": round(r2(nn, v), 3) for k, v in props.items()},
        "constant dims": int((z.std(0) < 1e-6).sum()),
        "rank (centred)": round(effective_rank(zc), 1),
        "mean cos": round(mean_cos, 3),
    }
    print(tag, fields, flush=True)


def main() -> None:
    torch.set_num_threads(1)
    test = load_source("spoken_digits").test
    mod = get("audio")
    word = np.asarray(test.y)
    voice = np.array([i.split("/")[0] for i in test.info["ids"]])
    for run in sys.argv[1:]:
        enc = selfsup.load_encoder(run)
        raw = mod.raw_features(test, enc.meta).double()  # band means, band deviations (M each)
        m = raw.shape[1] // 2
        mu = raw[:, :m]
        props = {
            "length": torch.tensor(test.lengths, dtype=torch.float64),
            "level": mu.mean(1),
            "tilt": mu[:, :16].mean(1) - mu[:, -16:].mean(1),
            "floor": raw[:, m:].mean(1),
        }
        report(f"{run} (trained)", embed(enc, test, mod), word, voice, props)
        torch.manual_seed(0)
        for mod_ in enc.modules():
            if mod_ is not enc and hasattr(mod_, "reset_parameters"):
                mod_.reset_parameters()
        report(f"{run} (re-initialised)", embed(enc, test, mod), word, voice, props)


if __name__ == "__main__":
    main()
