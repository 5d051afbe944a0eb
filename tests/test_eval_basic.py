import torch

from selfsup.eval import knn_accuracy, linear_accuracy


def test_knn_on_separated_clusters_is_perfect():
    g = torch.Generator().manual_seed(0)
    centers = torch.eye(4) * 10
    yb = torch.arange(4).repeat_interleave(25)
    bank = centers[yb] + torch.randn(100, 4, generator=g)
    yq = torch.arange(4).repeat(5)
    query = centers[yq] + torch.randn(20, 4, generator=g)
    assert knn_accuracy(bank, yb, query, yq, k=200, t=0.1)["knn_top1"] == 1.0


def test_knn_weighted_vote_known_answer():
    # the query is closest to one class-1 point, but three class-0 points are nearly as close:
    # with k=4 and a sharp temperature the nearest neighbour wins; with a flat one the majority does
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.9, -0.1], [0.85, 0.15]])
    yb = torch.tensor([1, 0, 0, 0])
    q, yq = torch.tensor([[1.0, 0.0]]), torch.tensor([1])
    assert knn_accuracy(bank, yb, q, yq, k=4, t=0.001)["knn_top1"] == 1.0
    assert knn_accuracy(bank, yb, q, yq, k=4, t=100.0)["knn_top1"] == 0.0
    assert knn_accuracy(bank, yb, q, yq, k=1, t=100.0)["knn_top1"] == 1.0


def test_linear_probe_separates_linearly_separable_classes_that_knn_cannot():
    # class is the sign of the first coordinate; the other 20 coordinates are large noise
    g = torch.Generator().manual_seed(1)
    x = torch.randn(400, 21, generator=g)
    x[:, 0] += torch.sign(x[:, 0])  # a margin of 1 around the separating hyperplane
    x[:, 1:] *= 10
    y = (x[:, 0] > 0).long()
    res = linear_accuracy(x[:300], y[:300], x[300:], y[300:])
    assert res["linear_top1"] >= 0.95
    assert knn_accuracy(x[:300], y[:300], x[300:], y[300:], k=20)["knn_top1"] < 0.8
