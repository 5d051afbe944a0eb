import math

import pytest
import torch

from selfsup.losses import nt_xent


def reference_nt_xent(z1, z2, t):
    """Slow, obviously correct: a Python loop over the 2B anchors."""
    z = torch.cat([z1, z2])
    z = z / z.norm(dim=1, keepdim=True)
    n, b = len(z), len(z1)
    total = 0.0
    for i in range(n):
        p = (i + b) % n
        num = math.exp(float(z[i] @ z[p]) / t)
        den = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n) if k != i)
        total += -math.log(num / den)
    return total / n


@pytest.mark.parametrize("b,d,t", [(2, 3, 0.5), (5, 7, 0.1), (8, 16, 1.0)])
def test_equals_reference_loop(b, d, t):
    g = torch.Generator().manual_seed(b)
    z1, z2 = (
        torch.randn(b, d, generator=g, dtype=torch.float64),
        torch.randn(b, d, generator=g, dtype=torch.float64),
    )
    assert float(nt_xent(z1, z2, t)) == pytest.approx(reference_nt_xent(z1, z2, t), abs=1e-6)


@pytest.mark.parametrize("b", [2, 7])
def test_collinear_inputs_give_log_2b_minus_1(b):
    v = torch.randn(1, 6, dtype=torch.float64)
    scales = torch.rand(b, 1, dtype=torch.float64) + 0.5
    assert float(nt_xent(v * scales, v * scales.flip(0), 0.3)) == pytest.approx(
        math.log(2 * b - 1), abs=1e-9
    )


def test_gradcheck():
    z1 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: nt_xent(a, b, 0.5), (z1, z2))


def test_symmetric_in_the_views():
    z1, z2 = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    assert float(nt_xent(z1, z2)) == pytest.approx(float(nt_xent(z2, z1)), abs=1e-12)


def test_bad_shapes_and_temperature_are_refused():
    with pytest.raises(ValueError, match="equal shape"):
        nt_xent(torch.randn(3, 4), torch.randn(4, 4))
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.randn(3, 4), torch.randn(3, 4), temperature=0)
