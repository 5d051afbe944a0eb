"""Table views on tiny inputs: shape, dtype, seed, and what each preset may change."""

import pytest
import torch

from selfsup.views.tabular import (
    TABLE_PRESETS,
    TableViews,
    clan_resample,
    scarf_corrupt,
    vime_corrupt,
)

MEAN, STD, CARD = [0.0, 10.0, 0.0, 0.0], [1.0, 2.0, 1.0, 1.0], [0, 0, 3, 0]


def rows(n=6):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    x[:, 1] = 10 + 2 * x[:, 1]
    x[:, 2] = torch.randint(0, 3, (n,), generator=g).float()
    return x


@pytest.mark.parametrize("preset", list(TABLE_PRESETS))
def test_every_preset_shape_dtype_seed(preset):
    v = TableViews(TABLE_PRESETS[preset], MEAN, STD, CARD, n_views=3)
    x = rows()
    torch.manual_seed(5)
    a = v(x)
    torch.manual_seed(5)
    b = v(x)
    assert len(a) == 3
    for va, vb in zip(a, b):
        assert va.shape == x.shape and va.dtype == torch.float32
        assert torch.equal(va, vb)
        # the categorical column always holds a valid code
        assert set(va[:, 2].tolist()) <= {0.0, 1.0, 2.0}
    if TABLE_PRESETS[preset].anchor:
        assert torch.equal(a[0], x)
    if preset == "none":
        assert all(torch.equal(t, x) for t in a)


def test_scarf_replaces_exactly_the_fraction_from_the_pool():
    x = torch.zeros(5, 10)
    pool = torch.arange(1, 31, dtype=torch.float32).view(3, 10)
    torch.manual_seed(0)
    out = scarf_corrupt(x, pool, 0.6)
    assert ((out != 0).sum(1) == 6).all()  # every pool value is non-zero, so each change shows
    for j in range(10):  # each replaced cell holds a value of the same column of the pool
        assert set(out[:, j][out[:, j] != 0].tolist()) <= set(pool[:, j].tolist())


def test_vime_mask_marks_changed_cells():
    torch.manual_seed(1)
    x = torch.randn(200, 8)
    xt, m = vime_corrupt(x, torch.randn(50, 8), 0.3)
    assert torch.equal(m, xt != x)
    assert 0.2 < m.float().mean() < 0.4


def test_clan_resamples_in_the_standardised_range():
    torch.manual_seed(2)
    x = torch.full((400, 4), 100.0)
    out = clan_resample(
        x,
        torch.tensor([MEAN]),
        torch.tensor([STD]),
        0.5,
        1.5,
        torch.tensor([CARD], dtype=torch.float32),
    )
    changed = out != x
    assert 0.4 < changed.float().mean() < 0.6
    lo = torch.tensor(MEAN) - 1.5 * torch.tensor(STD)
    hi = torch.tensor(MEAN) + 1.5 * torch.tensor(STD)
    for j in (0, 1, 3):
        v = out[changed[:, j], j]
        assert ((v >= lo[j]) & (v <= hi[j])).all()
    assert set(out[changed[:, 2], 2].tolist()) <= {0.0, 1.0, 2.0}


def test_fit_draws_marginals_from_the_training_rows():
    v = TableViews(TABLE_PRESETS["scarf"], MEAN, STD, CARD, n_views=2)
    train = torch.full((10, 4), 7.0)
    v.fit(train)
    torch.manual_seed(0)
    out = v(torch.zeros(4, 4))[1]
    assert set(out.unique().tolist()) <= {0.0, 7.0} and (out == 7.0).any()


def test_noise_leaves_categorical_columns():
    v = TableViews(TABLE_PRESETS["noise"], MEAN, STD, CARD, n_views=2)
    x = rows()
    out = v(x)
    assert torch.equal(out[0][:, 2], x[:, 2]) and not torch.equal(out[0][:, 0], x[:, 0])
