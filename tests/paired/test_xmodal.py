"""Cross-modal retrieval metrics: recall@k and median rank, both directions."""

from __future__ import annotations

import pytest
import torch

from selfsup.eval.xmodal import match_ranks, retrieval_metrics


def test_identical_embeddings_retrieve_perfectly():
    z = torch.randn(20, 8)
    m = retrieval_metrics(z, z.clone())
    assert m["xmodal_r1"] == 1.0 and m["xmodal_medr"] == 1.0
    assert m["xmodal_a2b_r1"] == m["xmodal_b2a_r1"] == 1.0


def test_ranks_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    # a0 . b: (0, 0, .71) -> own 0, two larger-or-equal? only b2 is larger: rank 2
    # a1 . b: (1, 1, .71) -> own 1, none strictly larger: rank 1; a2: (.71, .71, 1): rank 1
    assert match_ranks(a, b).tolist() == [2, 1, 1]
    m = retrieval_metrics(a, b)
    assert m["xmodal_a2b_r1"] == pytest.approx(2 / 3)
    assert m["xmodal_a2b_r5"] == 1.0


def test_random_embeddings_are_near_chance():
    g = torch.Generator().manual_seed(0)
    m = retrieval_metrics(torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g))
    assert m["xmodal_r1"] < 0.02 and m["xmodal_medr"] > 100


def test_sizes_must_match():
    with pytest.raises(ValueError):
        match_ranks(torch.randn(3, 2), torch.randn(4, 2))
