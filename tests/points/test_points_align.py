"""The point encoders' principal-axis input frame (``views.points.align``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import selfsup
from selfsup.errors import ConfigError
from selfsup.models.points import build_point_backbone, canonical_pose, symmetric_eig3
from selfsup.views.points import rotation_matrices


def _skewed_clouds(n: int = 4, p: int = 200, seed: int = 0) -> torch.Tensor:
    """Clouds with three clearly different variances and skewed coordinates on every axis."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 3, p, generator=g) * torch.tensor([3.0, 1.5, 0.6])[None, :, None]
    return base + 0.4 * torch.randn(n, 3, p, generator=g).abs() ** 2


def _one_epoch(tmp_path, x: np.ndarray, y: np.ndarray):
    """One epoch of a small ``simclr`` on clouds ``x`` (N, 3, P) saved as a points ``.npz``, at
    the points defaults (the frame included)."""
    np.savez(tmp_path / "c.npz", x=x.transpose(0, 2, 1), y=y, kind="points")
    cfg = {
        "method": "simclr",
        "data": {"source": str(tmp_path / "c.npz")},
        "model": {"width": 0.25, "proj_hidden": 16, "proj_dim": 8},
        "train": {"epochs": 1, "batch_size": 8, "progress": "none"},
        "eval": {"report": False, "diagnostics": False, "baselines": False, "protocols": ["knn"]},
    }
    return selfsup.train(cfg, out=tmp_path / "run")


def _slow_canonical(x: np.ndarray) -> np.ndarray:
    """One cloud (3, P) at a time, in float64, written from the definition."""
    c = x - x.mean(1, keepdims=True)
    vals, vecs = np.linalg.eigh(np.cov(c, bias=True))
    out = np.empty_like(c)
    for row, k in enumerate(np.argsort(vals)[::-1]):
        coord = vecs[:, k] @ c
        out[row] = -coord if (coord**3).sum() < 0 else coord
    return out


def test_jacobi_eigendecomposition_matches_lapack():
    g = torch.Generator().manual_seed(1)
    m = torch.randn(200, 3, 3, generator=g, dtype=torch.float64)
    a = m + m.transpose(1, 2)
    a[0] = torch.diag(torch.tensor([2.0, 2.0, 1.0], dtype=torch.float64))  # already diagonal, tied
    values, vectors = symmetric_eig3(a)
    torch.testing.assert_close(values, torch.linalg.eigvalsh(a).flip(1), atol=1e-12, rtol=0)
    eye = torch.eye(3, dtype=torch.float64).expand_as(a)
    torch.testing.assert_close(vectors.transpose(1, 2) @ vectors, eye, atol=1e-12, rtol=0)
    rebuilt = vectors @ torch.diag_embed(values) @ vectors.transpose(1, 2)
    torch.testing.assert_close(rebuilt, a, atol=1e-12, rtol=0)


def test_canonical_pose_matches_a_slow_reference():
    x = _skewed_clouds().double()
    got = canonical_pose(x).numpy()
    for i in range(len(x)):
        np.testing.assert_allclose(got[i], _slow_canonical(x[i].numpy()), atol=1e-9)


def test_canonical_pose_forgets_rotation_reflection_translation_and_order():
    x = _skewed_clouds()
    r = rotation_matrices(len(x), "so3", 2, torch.device("cpu"))
    r[1] = r[1] * torch.tensor([1.0, 1.0, -1.0])  # a reflection too
    moved = r @ x + torch.tensor([0.3, -0.2, 0.5])[None, :, None]
    moved = moved[:, :, torch.randperm(x.shape[2])]
    a, b = canonical_pose(x), canonical_pose(moved)
    # the same points, in another order: compare order-free summaries
    torch.testing.assert_close(a.sort(2).values, b.sort(2).values, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["pointnet", "point_transformer"])
def test_aligned_encoder_features_are_invariant_to_pose(name):
    x = _skewed_clouds(n=3, p=256)
    r = rotation_matrices(len(x), "so3", 2, torch.device("cpu"))
    torch.manual_seed(0)
    aligned = build_point_backbone(name, 0.25, 256, align="pca").eval()
    torch.manual_seed(0)
    as_given = build_point_backbone(name, 0.25, 256, align="none").eval()
    with torch.no_grad():
        torch.testing.assert_close(aligned(x), aligned(r @ x), atol=1e-4, rtol=1e-4)
        # the old behaviour (the frame as given) is not invariant: the test can fail
        assert (as_given(x) - as_given(r @ x)).abs().max() > 1e-2


def test_an_unknown_alignment_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="choose one of: pca, none"):
        build_point_backbone("pointnet", 0.25, 64, align="pcaa")


def test_a_saved_encoder_keeps_its_frame_and_old_ones_keep_theirs(tmp_path):
    from selfsup.data.points import make_shapes
    from selfsup.modalities import get

    s = make_shapes(24, 8, points=64)
    run = _one_epoch(tmp_path, s.train.x, s.train.y)
    enc = selfsup.load_encoder(run.dir)
    assert enc.meta["align"] == "pca"
    x = torch.from_numpy(s.test.x[:4])
    r = rotation_matrices(4, "so3", 2, torch.device("cpu"))
    with torch.no_grad():
        torch.testing.assert_close(enc(x), enc(r @ x), atol=1e-4, rtol=1e-4)
    # metadata written before the option existed has no "align": such an encoder sees its
    # clouds as given, as it was trained to
    meta = {k: v for k, v in enc.meta.items() if k != "align"}
    old = get("points").build_backbone("pointnet", meta, run.config.model)
    assert old.align == "none"


def test_an_aligned_point_encoder_exports_to_onnx(tmp_path):
    """The frame is computed with plain tensor arithmetic, so ONNX export still works (LAPACK's
    eigh has no ONNX operator)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from selfsup.exporting import export_onnx

    run = _one_epoch(tmp_path, _skewed_clouds(n=24, p=64).numpy(), np.arange(24) % 2)
    check = export_onnx(run.dir, tmp_path / "enc.onnx")
    assert check.max_abs_diff < 1e-4 and (tmp_path / "enc.onnx").is_file()
