"""Batch style standardisation on batches with known amplitude spectra, and the view-generator
plug-in: called with the seed it is given, validated, reproducible."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from selfsup.errors import ConfigError
from selfsup.views import PRESETS, ImageViews
from selfsup.views.generator import (
    GENERATORS,
    GeneratedViews,
    register_generator,
    resolve_generator,
)
from selfsup.views.style import BatchStyle, low_frequency_box, standardize_styles


def _spectrum(x):
    return torch.fft.fftshift(torch.fft.fft2(x.double()), dim=(-2, -1))


def _cosines(dc, amp, u=5, v=3, n=16):
    """Images ``dc + amp cos(2 pi (u i + v j) / n)``: spectrum DC = dc n^2, at +-(u, v) = amp n^2
    / 2."""
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    wave = torch.cos(2 * math.pi * (u * i + v * j).double() / n)
    return torch.stack([d + a * wave for d, a in zip(dc, amp, strict=True)])[:, None]


def test_bss_gives_every_image_the_reference_low_frequency_amplitude():
    n = 16
    x = _cosines([0.2, 0.5, 0.8], [0.10, 0.05, 0.15])
    y = standardize_styles(x, r=0.05, ref=1)  # the box: DC and its neighbours, not (5, 3)
    box = low_frequency_box(n, n, 0.05)
    assert box[n // 2, n // 2] == 1 and box[n // 2 + 5, n // 2 + 3] == 0
    s = _spectrum(y)
    # DC (the brightness, a "style"): the reference's for every image
    assert torch.allclose(
        s[:, 0, n // 2, n // 2].abs(), torch.full((3,), 0.5 * n * n, dtype=torch.float64)
    )
    # the texture (the cosine at (5, 3), outside the box): each image keeps its own
    for k, a in enumerate([0.10, 0.05, 0.15]):
        assert math.isclose(
            float(s[k, 0, n // 2 + 5, n // 2 + 3].abs()), a * n * n / 2, rel_tol=1e-9
        )
    assert torch.allclose(y.mean((1, 2, 3)), torch.full((3,), 0.5, dtype=torch.float64))


@pytest.mark.parametrize("r", [0.02, 0.3, 0.7])
def test_bss_replaces_amplitude_inside_the_box_and_keeps_phase_everywhere(r):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 12, 12, generator=g, dtype=torch.float64)
    y = standardize_styles(x, r, ref=2)
    sx, sy = _spectrum(x), _spectrum(y)
    m = low_frequency_box(12, 12, r).bool()
    assert abs(m.float().mean().item() - r) < 0.25  # about the stated area
    for i in range(4):
        assert torch.allclose(sy[i].abs()[:, m], sx[2].abs()[:, m], atol=1e-9)
        assert torch.allclose(sy[i].abs()[:, ~m], sx[i].abs()[:, ~m], atol=1e-9)
        keep = sy[i].abs() > 1e-6
        assert torch.allclose(
            torch.polar(torch.ones_like(sy[i].abs()), sy[i].angle())[keep],
            torch.polar(torch.ones_like(sx[i].abs()), sx[i].angle())[keep],
            atol=1e-6,
        )
    assert torch.allclose(y[2], x[2], atol=1e-9)  # the reference is unchanged
    assert torch.allclose(standardize_styles(x, 0.0, 1), x, atol=1e-12)


def test_bss_at_ratio_one_swaps_the_whole_amplitude():
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    y = standardize_styles(x, 1.0, ref=0)
    assert torch.allclose(
        _spectrum(y).abs(), _spectrum(x)[:1].abs().expand(3, -1, -1, -1), atol=1e-9
    )


def test_batch_style_wraps_any_view_maker_and_is_seeded():
    inner = ImageViews(PRESETS["cifar"], 3, 2)
    bss = BatchStyle(inner, (0.1, 0.3))
    assert bss.n_views == 2 and bss.spec is inner.spec
    x = (torch.rand(6, 3, 32, 32) * 255).to(torch.uint8)
    torch.manual_seed(0)
    a = bss(x)
    torch.manual_seed(0)
    b = bss(x)
    assert len(a) == 2 and all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    torch.manual_seed(0)
    s = bss.standardize(x)
    assert s.dtype == torch.uint8 and s.shape == x.shape
    means = s.float().mean((2, 3))
    assert float(means.std(0).max()) < float(x.float().mean((2, 3)).std(0).max())  # one brightness
    with pytest.raises(ValueError, match="r_min"):
        BatchStyle(inner, (0.5, 0.1))


class _Brightness(nn.Module):
    """A view maker that shifts each image's brightness, as colour jitter does."""

    n_views = 2

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(1)
        xf = x.float() / 255
        return [xf + (torch.rand(len(x), 1, 1, 1, generator=g) - 0.5) * 0.2 for _ in range(2)]


def test_bss_standardises_each_view_batch_after_its_augmentations():
    """The paper's placement: every view batch shares one style after the colour augmentation
    (here a per-image brightness shift); standardising the raw batch before it does not."""
    x = ((0.4 + 0.2 * torch.rand(8, 3, 8, 8)) * 255).to(torch.uint8)
    torch.manual_seed(0)
    views = BatchStyle(_Brightness(), (0.01, 0.05))(x)
    for v in views:
        means = v.double().mean((2, 3))  # the DC amplitude: one per channel for the whole batch
        assert float(means.std(0).max()) < 1e-4
    torch.manual_seed(0)
    before = BatchStyle(_Brightness(), (0.01, 0.05), placement="batch")(x)
    assert float(before[0].double().mean((2, 3)).std(0).max()) > 0.02
    with pytest.raises(ValueError, match="placement"):
        BatchStyle(_Brightness(), placement="raw")


def test_bss_on_series_uses_the_1d_spectrum():
    t = torch.arange(20).double()
    x = torch.stack([c + 0.1 * torch.cos(2 * torch.pi * 5 * t / 20) for c in (1.0, 3.0)])[
        :, None
    ]  # (2, 1, 20)
    y = standardize_styles(x, 0.1, ref=1)  # DC (the level) from the reference, the wave kept
    assert torch.allclose(y.mean(-1), torch.full((2, 1), 3.0, dtype=torch.float64))
    assert torch.allclose(y - y.mean(-1, keepdim=True), x - x.mean(-1, keepdim=True), atol=1e-12)


# -- the generator plug-in ------------------------------------------------------------------------


def _noise_views(x, seed):
    g = torch.Generator(device=x.device).manual_seed(seed)
    return [
        (x + 0.05 * torch.randn(x.shape, generator=g, device=x.device)).clamp(0, 1)
        for _ in range(2)
    ]


def test_plugin_is_called_with_the_seed_it_is_given():
    seen = []

    def spy(x, seed):
        seen.append(seed)
        return _noise_views(x, seed)

    gv = GeneratedViews(spy, size=8, n_views=2)
    x = (torch.rand(5, 1, 8, 8) * 255).to(torch.uint8)
    torch.manual_seed(123)
    first = gv(x)
    torch.manual_seed(123)
    expected = int(torch.randint(0, 2**31 - 1, ()))
    assert seen == [expected]
    assert all(
        torch.equal(a, b)
        for a, b in zip(first, _noise_views(x.float() / 255, expected), strict=True)
    )
    torch.manual_seed(123)
    again = gv(x)
    assert seen[1] == seen[0] and all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    gv(x)
    assert seen[2] != seen[1]  # the next batch gets the next seed
    state = torch.get_rng_state()
    gv.check(x)
    assert torch.equal(torch.get_rng_state(), state) and seen[-1] == 0


def test_plugin_views_at_the_data_size_are_resized_to_the_view_size():
    gv = GeneratedViews(_noise_views, size=16, n_views=2)
    out = gv((torch.rand(3, 1, 8, 8) * 255).to(torch.uint8))
    assert [tuple(v.shape) for v in out] == [(3, 1, 16, 16)] * 2 and out[0].dtype == torch.float32
    series = GeneratedViews(
        lambda x, s: [x + 1, x - 1], n_views=2
    )  # any modality: the batch's shape
    out = series(torch.zeros(4, 2, 30))
    assert torch.equal(out[0], torch.ones(4, 2, 30))
    with pytest.raises(ConfigError, match="shape"):
        GeneratedViews(lambda x, s: [x[..., :10]] * 2).check(torch.zeros(4, 2, 30))


@pytest.mark.parametrize(
    "bad,needle",
    [
        (lambda x, s: [x[:, :, :4]] * 2, "shape"),
        (lambda x, s: [(x * 255).to(torch.uint8)] * 2, "dtype"),
        (lambda x, s: [x], "1 view"),
        (lambda x, s: "views", "list of tensors"),
        (lambda x, s: [x.repeat(1, 3, 1, 1)] * 2, "shape"),
    ],
)
def test_bad_plugins_are_refused_with_one_line(bad, needle):
    gv = GeneratedViews(bad, size=8, n_views=2, name="bad")
    with pytest.raises(ConfigError, match=needle) as err:
        gv.check((torch.rand(4, 1, 8, 8) * 255).to(torch.uint8))
    assert "\n" not in str(err.value) and "views.image.generator 'bad'" in str(err.value)


def test_generators_resolve_by_name_module_and_file(tmp_path):
    register_generator("noise-test", _noise_views)
    try:
        assert resolve_generator("noise-test") is _noise_views
    finally:
        GENERATORS.pop("noise-test")
    assert (
        resolve_generator("tests.views.test_style_generator:_noise_views").__name__
        == "_noise_views"
    )
    f = tmp_path / "gen.py"
    f.write_text("def views(x, seed):\n    return [x, x]\n")
    fn = resolve_generator(f"{f}:views")
    x = torch.zeros(1, 1, 2, 2)
    assert len(fn(x, 0)) == 2
    for spec, needle in [
        ("nope", "not a registered"),
        (f"{tmp_path}/none.py:v", "does not exist"),
        (f"{f}:missing", "not a callable"),
        ("no_such_module_xyz:f", "could not be imported"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            resolve_generator(spec)


# -- wired into training ------------------------------------------------------------------------


def test_training_with_bss_and_with_a_generator_plugin_resumes_bit_identically(
    tiny_config, tmp_path
):
    from safetensors.torch import load_file

    import selfsup

    register_generator("noise-train", _noise_views)
    try:
        for views in (
            {"bss": True, "bss_ratio": [0.05, 0.4]},
            {"generator": "noise-train"},
            {"generator": "noise-train", "bss": True},
        ):

            def cfg(out, views=views):
                return tiny_config(views=views, out=str(out), eval={"protocols": ["knn"]})

            class Kill(Exception):
                pass

            def kill(epoch, m):
                if epoch == 2:
                    raise Kill

            a = selfsup.train(cfg(tmp_path / "a"), overwrite=True)
            assert np.isfinite(a.summary["eval"]["knn_top1"])
            with pytest.raises(Kill):
                selfsup.train(cfg(tmp_path / "b"), overwrite=True, on_epoch_end=kill)
            b = selfsup.train(resume=tmp_path / "b")
            ea, eb = (
                load_file(a.dir / "encoder.safetensors"),
                load_file(b.dir / "encoder.safetensors"),
            )
            assert all(torch.equal(ea[k], eb[k]) for k in ea), views
    finally:
        GENERATORS.pop("noise-train")


@pytest.mark.parametrize(
    "body,needle",
    [
        ("return [x[:, :, :3]] * 2", "shape"),
        ("return [(x * 255).to(torch.uint8)] * 2", "dtype"),
        ("return [x]", "1 view"),
    ],
)
def test_a_bad_plugin_fails_at_the_cli_with_one_line_and_writes_nothing(
    body, needle, capsys, tmp_path, tiny_npz
):
    from selfsup.cli import main

    f = tmp_path / "plug.py"
    f.write_text(f"import torch\n\ndef views(x, seed):\n    {body}\n")
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--data",
            str(tiny_npz),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--set",
            f"views.generator={f}:views",
            "--set",
            "train.progress=none",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert not out.exists()


def test_the_vae_example_plugin_is_seeded_and_passes_the_checks():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "generated_views_vae.py"
    spec = importlib.util.spec_from_file_location("generated_views_vae", path)
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    x = torch.rand(32, 1, 8, 8)
    vae = ex.train_vae(x, epochs=2)
    for hand in (False, True):
        gv = GeneratedViews(ex.make_plugin(vae, sigma=1.0, hand_made=hand), size=16, n_views=2)
        raw = (x[:6] * 255).to(torch.uint8)
        gv.check(raw)
        torch.manual_seed(0)
        a = gv(raw)
        torch.manual_seed(0)
        b = gv(raw)
        assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
        assert not torch.equal(a[0], a[1])  # two different positives
        assert a[0].shape == (6, 1, 16, 16)
