"""kNN with and without centring by the bank mean, for trained runs on digits (issue 14).

For each run directory (a finished digits run), the pretrained encoder, the same architecture at
random initialisation (seed 0) and the standardised raw pixels are scored by weighted kNN (T=0.1)
at k=20 and k=200, with features centred by the bank mean (the protocol's default) and without
(lightly's and solo-learn's plain protocol). Also prints the mean pairwise cosine similarity of
the bank features, which shows why centring matters for all-positive (post-ReLU) features.

    selfsup train --out /tmp/digits-default
    python benchmarks/knn_centring.py /tmp/digits-default
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import selfsup
from selfsup import data as sources
from selfsup.eval.knn import knn_accuracy
from selfsup.views import eval_view


def feats(enc, s):
    x = torch.from_numpy(s.x).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        return enc(eval_view(x, enc.image_size)).float()


def row(name, fb, yb, fq, yq):
    cells = []
    for k in (20, 200):
        for center in (False, True):
            cells.append(knn_accuracy(fb, yb, fq, yq, k, 0.1, center=center)["knn_top1"])
    s = F.normalize(fb, dim=1)
    cos = float((s @ s.t()).mean())
    print(f"| {name} | " + " | ".join(f"{c:.4f}" for c in cells) + f" | {cos:.3f} |")


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("runs", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(1)
    splits = sources.load_source("digits", None, False, None)
    bank, query = sources.eval_splits(splits, None, seed=0)
    yb, yq = torch.from_numpy(bank.y), torch.from_numpy(query.y)
    print(
        "| encoder | k=20 plain | k=20 centred | k=200 plain | k=200 centred | mean cosine (bank) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for run in a.runs:
        enc = selfsup.load_encoder(run).eval()
        row(f"pretrained ({run})", feats(enc, bank), yb, feats(enc, query), yq)
    enc = selfsup.load_encoder(a.runs[0]).eval()
    torch.manual_seed(0)
    for m in enc.modules():  # the same architecture, freshly initialised
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    row("random init (seed 0)", feats(enc, bank), yb, feats(enc, query), yq)
    xb = torch.from_numpy(bank.x).permute(0, 3, 1, 2).float() / 255
    xq = torch.from_numpy(query.x).permute(0, 3, 1, 2).float() / 255
    m, s = xb.mean(), xb.std()
    row("raw pixels (standardised)", ((xb - m) / s).flatten(1), yb, ((xq - m) / s).flatten(1), yq)


if __name__ == "__main__":
    main()
