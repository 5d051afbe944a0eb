import pytest
import torch

from selfsup.views import PRESETS, ImageViews, ViewSpec, seeded
from selfsup.views.image import augment, color_jitter, crop_params, gaussian_blur


@pytest.mark.parametrize("backend", ["torch", "kornia"])
@pytest.mark.parametrize("preset,channels,size", [("cifar", 3, 32), ("digits", 1, 8)])
def test_views_shapes_range_and_reproducibility(backend, preset, channels, size):
    x = torch.randint(0, 256, (6, channels, size, size), dtype=torch.uint8)
    v = ImageViews(PRESETS[preset], channels, n_views=3, backend=backend)
    with seeded(3):
        a = v(x)
    with seeded(3):
        b = v(x)
    assert len(a) == 3
    for va, vb in zip(a, b):
        assert va.shape == (6, channels, PRESETS[preset].size, PRESETS[preset].size)
        assert va.dtype == torch.float32 and va.min() >= 0 and va.max() <= 1
        assert torch.equal(va, vb)
    assert not torch.equal(a[0], a[1])  # two views differ


def test_identity_spec_returns_the_image():
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    spec = ViewSpec(
        size=8, crop_scale=(1.0, 1.0), flip=0.0, jitter=(0, 0, 0, 0), jitter_p=0, grayscale_p=0
    )
    # scale 1 with aspect ratio 1 only: force ratio by drawing until square is the only fit
    out = augment(x.float() / 255, spec)
    # crop area 1 and any ratio != 1 does not fit, so only ratio ~1 or the fallback whole image
    # remain
    assert torch.allclose(out, x.float() / 255, atol=2e-2)


def test_flip_always_mirrors():
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(2, 1, 1, 1) / 16
    spec = ViewSpec(
        size=4, crop_scale=(1.0, 1.0), flip=1.0, jitter=(0, 0, 0, 0), jitter_p=0, grayscale_p=0
    )
    assert torch.allclose(augment(x, spec), x.flip(-1), atol=1e-5)


def test_crop_boxes_respect_scale_and_image_bounds():
    w, h, cx, cy = crop_params(2000, (0.2, 0.5), (3 / 4, 4 / 3), "cpu")
    area = w * h
    assert ((area >= 0.2 - 1e-6) & (area <= 0.5 + 1e-6)).all()
    assert (cx - w / 2 >= -1e-6).all() and (cx + w / 2 <= 1 + 1e-6).all()
    assert (cy - h / 2 >= -1e-6).all() and (cy + h / 2 <= 1 + 1e-6).all()


def test_color_jitter_probability_zero_is_identity_and_one_changes():
    x = torch.rand(8, 3, 5, 5)
    assert torch.allclose(color_jitter(x, (0.4, 0.4, 0.4, 0.1), 0.0), x, atol=1e-5)
    assert not torch.allclose(color_jitter(x, (0.4, 0.4, 0.4, 0.1), 1.0), x)


def test_hue_shift_keeps_grays_gray():
    x = torch.rand(4, 1, 5, 5).expand(4, 3, 5, 5).contiguous()
    out = color_jitter(x, (0, 0, 0, 0.5), 1.0)
    assert torch.allclose(out, x, atol=1e-5)


def test_blur_preserves_constant_images():
    x = torch.full((3, 3, 9, 9), 0.3)
    assert torch.allclose(gaussian_blur(x, 1.0, 5), x, atol=1e-6)
