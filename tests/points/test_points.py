"""Point clouds: Chamfer, FPS and grouping against slow references, sources, D2, methods, resume."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import selfsup
from selfsup.data import load_source
from selfsup.data.points import PointsData, make_shapes, sample_surface
from selfsup.errors import DataError
from selfsup.losses.chamfer import chamfer_l2
from selfsup.modalities import get
from selfsup.modalities.points import d2_histogram
from selfsup.views.points import (
    PointViews,
    PointViewsConfig,
    farthest_point_sample,
    knn_group,
    rotation_matrices,
)


def test_chamfer_matches_a_float64_loop():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 7, 3, generator=g), torch.randn(3, 5, 3, generator=g)
    total = 0.0
    for i in range(3):
        pa, pb = a[i].double().tolist(), b[i].double().tolist()

        def d(p, q):
            return sum((x - y) ** 2 for x, y in zip(p, q, strict=True))

        fwd = sum(min(d(p, q) for q in pb) for p in pa) / len(pa)
        bwd = sum(min(d(q, p) for p in pa) for q in pb) / len(pb)
        total += fwd + bwd
    assert float(chamfer_l2(a, b)) == pytest.approx(total / 3, rel=1e-5)
    assert float(chamfer_l2(a, a)) == pytest.approx(0.0, abs=1e-6)


def test_farthest_point_sampling_and_grouping_match_slow_references():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 40, 3, generator=g)
    idx = farthest_point_sample(x, 8)
    for b in range(2):
        pts = x[b].double()
        chosen = [0]
        for _ in range(7):
            dist = [min(float(((pts[j] - pts[c]) ** 2).sum()) for c in chosen) for j in range(40)]
            chosen.append(int(np.argmax(dist)))
        assert idx[b].tolist() == chosen
    centres = x.gather(1, idx[..., None].expand(-1, -1, 3))
    groups = knn_group(x, centres, 5)
    for b in range(2):
        for s in range(8):
            d = ((x[b].double() - centres[b, s].double()) ** 2).sum(1)
            near = torch.argsort(d)[:5]
            want = (x[b, near] - centres[b, s]).double()
            assert torch.allclose(groups[b, s].double(), want, atol=1e-6)


def test_views_keep_shape_and_rotations_are_rotations():
    x = torch.from_numpy(make_shapes(16, 8, points=64).train.x)
    views = PointViews(PointViewsConfig(), 2)(x)
    assert len(views) == 2 and all(v.shape == x.shape and torch.isfinite(v).all() for v in views)
    for mode in ("up", "so3"):
        r = rotation_matrices(6, mode, 2, torch.device("cpu"))
        eye = torch.eye(3).expand(6, 3, 3)
        assert torch.allclose(r @ r.transpose(1, 2), eye, atol=1e-5)
        assert torch.allclose(torch.linalg.det(r), torch.ones(6), atol=1e-5)
    up = rotation_matrices(4, "up", 2, torch.device("cpu"))
    assert torch.allclose(up[:, 2], torch.tensor([0.0, 0.0, 1.0]).expand(4, 3))


def test_d2_baseline_is_invariant_to_rotation_and_point_order():
    x = make_shapes(8, 8, points=128).train.x
    r = rotation_matrices(8, "so3", 2, torch.device("cpu")).numpy()
    rotated = np.einsum("nij,njp->nip", r, x).astype(np.float32)
    a, b = d2_histogram(x), d2_histogram(rotated)
    # a pair on a bin edge may move one bin under float rounding: at most a few pairs of 4096
    assert (a - b).abs().sum(1).max() < 0.05 * a.sum(1).min()
    assert torch.allclose(a.sum(1), torch.full((8,), 32.0))


def test_shapes_aligned_are_the_same_shapes_unrotated():
    """``shapes:aligned`` shares every draw of ``shapes`` but the pose: same labels, same distances
    between a cloud's points up to the (unrotated) surface noise, and each cloud's extent along the
    axes is not the rotated one's; an unknown pose is refused."""
    from selfsup.data import load_source

    a, r = make_shapes(24, 8, points=64, pose="aligned"), make_shapes(24, 8, points=64)
    assert (a.train.y == r.train.y).all() and a.train.name == "shapes:aligned/train"
    da = np.linalg.norm(a.train.x[:, :, :, None] - a.train.x[:, :, None, :], axis=1)
    dr = np.linalg.norm(r.train.x[:, :, :, None] - r.train.x[:, :, None, :], axis=1)
    assert np.abs(da - dr).max() < 0.15 and not np.allclose(a.train.x, r.train.x, atol=0.1)
    assert load_source("shapes:aligned").train.name == "shapes:aligned/train"
    with pytest.raises(ValueError, match="pose"):
        make_shapes(8, 8, pose="up")


def test_surface_sampling_is_area_weighted():
    # two triangles, one with 3x the area of the other
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [10, 0, 0], [13, 0, 0], [10, 1, 0]], float)
    f = np.array([[0, 1, 2], [3, 4, 5]])
    p = sample_surface(v, f, 4000, np.random.default_rng(0))
    share = float((p[:, 0] >= 10).mean())
    assert abs(share - 0.75) < 0.03
    with pytest.raises(ValueError, match="no surface area"):
        sample_surface(np.zeros((3, 3)), np.array([[0, 1, 2]]), 10, np.random.default_rng(0))


def _off(path, v, f):
    lines = ["OFF", f"{len(v)} {len(f)} 0"] + [" ".join(map(str, p)) for p in v]
    lines += ["3 " + " ".join(map(str, t)) for t in f]
    path.write_text("\n".join(lines) + "\n")


def _tetra(scale=1.0):
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float) * scale
    return v, [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]


def _mesh_folder(root, n=4):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("tetra", "flat"):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                v, f = _tetra(rng.uniform(0.5, 2))
                if c == "flat":
                    v[:, 2] *= 0.05
                _off(d / f"{i}.off", v, f)
    return root


def test_a_mesh_folder_loads_and_bad_files_are_skipped_and_counted(tmp_path):
    root = _mesh_folder(tmp_path / "m")
    d = root / "train" / "tetra"
    _off(d / "degenerate.off", np.zeros((3, 3)), [[0, 1, 2]])
    (d / "nan.xyz").write_text("0 0 0\nnan 1 1\n" * 40)
    (d / "few.xyz").write_text("0 0 0\n1 1 1\n")
    np.save(d / "ok.npy", np.random.default_rng(0).normal(size=(300, 3)))
    (d / "broken.ply").write_bytes(b"not a mesh at all")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s = load_source(str(root), options={"points": 64})
    msgs = [str(x.message) for x in w]
    assert any("skipped 4 file(s)" in m for m in msgs), msgs
    assert isinstance(s.train, PointsData) and s.train.x.shape == (9, 3, 64)
    assert s.train.info["skipped"] == 4 and s.test.x.shape == (8, 3, 64)
    assert np.allclose(np.linalg.norm(s.train.x, axis=1).max(1), 1.0, atol=1e-5)
    assert s.train.classes == ["flat", "tetra"]
    with pytest.raises(DataError, match="--points"):
        load_source(str(root), options={"points": "many"})


def test_a_points_npz_needs_its_marker_and_never_steals_a_series(tmp_path):
    x = np.random.default_rng(0).normal(size=(10, 50, 3)).astype(np.float32)
    y = np.arange(10) % 2
    np.savez(tmp_path / "series.npz", x=x, y=y)
    assert type(load_source(str(tmp_path / "series.npz")).train).modality == "timeseries"
    x[3, 5] = np.nan
    np.savez(tmp_path / "pts.npz", x=x, y=y, kind="points")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s = load_source(str(tmp_path / "pts.npz"))
    assert isinstance(s.train, PointsData) and s.train.x.shape == (9, 3, 50)
    assert any("skipped 1 cloud" in str(m.message) for m in w)
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 5, 2)), kind="points")
    with pytest.raises(DataError, match=r"\(N, P, 3\)"):
        load_source(str(tmp_path / "bad.npz"))


@pytest.mark.parametrize("method", ["pointmae", "pointcmae"])
def test_masked_point_methods_lower_their_loss(method):
    from selfsup import methods
    from selfsup.config import validate
    from selfsup.parts import assemble

    s = make_shapes(32, 8, points=128)
    cfg = validate(
        {
            "method": method,
            "data": {"source": "shapes"},
            "model": {"width": 0.25, "proj_hidden": 32, "proj_dim": 16},
        }
    )
    torch.manual_seed(0)
    parts = assemble(cfg, s.train, torch.device("cpu"))
    m = parts.method
    assert type(m.encoder.backbone).__name__ == "PointTransformer"
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3)
    losses = []
    for step in range(8):
        torch.manual_seed(step % 2)  # the same two masks again and again: the loss must fall
        views = parts.views(parts.x)
        loss, logs = m(views, methods.Batch(parts.x, torch.arange(len(parts.x))))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses) and min(losses[-4:]) < losses[0], losses


def test_mae_on_points_is_refused_in_one_line():
    from selfsup.errors import ConfigError

    with pytest.raises(ConfigError, match="choose another method"):
        get("points").resolve_backbone(
            "auto", {}, selfsup.methods.get("mae").requirements(selfsup.methods.get("mae").Params())
        )


def test_a_points_run_resumes_bit_identically_and_evaluates(tmp_path, resume_matches_full):
    root = _mesh_folder(tmp_path / "m", n=6)
    cfg = {
        "method": "simclr",
        "data": {"source": str(root), "options": {"points": 64}},
        "model": {"width": 0.25, "proj_hidden": 32, "proj_dim": 16},
        "train": {"epochs": 3, "batch_size": 6, "progress": "none"},
        "eval": {"report": False, "diagnostics": False},
    }
    full, resumed = resume_matches_full(cfg)
    ev = full.summary["eval"]
    assert {"knn_top1", "linear_top1", "svm_top1"} <= set(ev) and resumed.summary["eval"] == ev
    assert {"knn_top1", "svm_top1"} <= set(full.summary["baselines"]["raw_input"])
    enc = selfsup.load_encoder(full.dir)
    assert enc.meta["data_options"] == {"points": 64}
    with torch.no_grad():
        assert enc(torch.zeros(2, 3, 64) + 0.1).shape == (2, enc.out_dim)


def test_the_point_transformer_adds_the_centre_embedding_before_every_block():
    from selfsup.models.points import PointTransformer, group

    torch.manual_seed(0)
    pt = PointTransformer(width=0.25, depth=3, groups=8, group_size=8).eval()
    x = torch.from_numpy(make_shapes(8, 8, points=64).train.x[:4])
    centres, patches = group(x, 8, 8)
    ins, outs = [], []
    for blk in pt.blocks:
        blk.register_forward_pre_hook(lambda m, a: ins.append(a[0].detach()))
        blk.register_forward_hook(lambda m, a, o: outs.append(o.detach()))
    with torch.no_grad():
        pt.encode(centres, patches)
        pos = pt.pos(centres)
        tokens = pt.tokens(patches.reshape(-1, 8, 3)).view(4, 8, -1)
    assert torch.allclose(ins[0], tokens + pos, atol=1e-5)
    for i in (1, 2):  # the authors' encoder: block(x + pos) at every block, not only the first
        assert torch.allclose(ins[i], outs[i - 1] + pos, atol=1e-5)


def test_point_transformer_features_pool_every_patch_unmasked_in_eval():
    from selfsup.models.points import PointTransformer, group

    torch.manual_seed(0)
    pt = PointTransformer(width=0.25, depth=2, groups=8, group_size=8).eval()
    x = torch.from_numpy(make_shapes(8, 8, points=64).train.x[:4])
    with torch.no_grad():
        tokens = pt.encode(*group(x, 8, 8))  # all 8 patches, no mask
        f = pt(x)
    assert tokens.shape[1] == 8 and f.shape == (4, pt.out_dim)
    assert torch.equal(f, torch.cat([tokens.amax(1), tokens.mean(1)], 1))


def test_the_authors_initialisation_of_the_point_transformer_and_decoder():
    """Point-MAE's ``_init_weights`` (``init_authors``, ``params.init=authors``): linear and
    conv weights truncated normal of std 0.02 (the attention's qkv projection included), biases 0,
    layer norms 1 and 0; the decoder's blocks Xavier uniform. torch's defaults (the default, the
    measured better here) give a linear(128, 128) weight std 1/sqrt(3 * 128) = 0.051 and non-zero
    biases."""
    from selfsup.config import validate
    from selfsup.models.points import PointTransformer, init_authors
    from selfsup.parts import assemble

    torch.manual_seed(0)
    pt = PointTransformer()
    init_authors(pt)
    lin = [m for m in pt.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv1d)]
    mha = [m for m in pt.modules() if isinstance(m, torch.nn.MultiheadAttention)]
    ln = [m for m in pt.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(lin) == 4 + 2 + 3 * 4 and len(mha) == 4 and len(ln) == 2 * 4 + 1
    weights = [m.weight for m in lin if m.weight.numel() >= 4096] + [m.in_proj_weight for m in mha]
    for w in [w.detach() for w in weights]:
        assert 0.018 < float(w.std()) < 0.022 and float(w.abs().max()) <= 2.0
    for b in [m.bias for m in lin] + [m.in_proj_bias for m in mha]:
        assert torch.count_nonzero(b) == 0
    for m in ln:
        assert torch.all(m.weight == 1) and torch.count_nonzero(m.bias) == 0
    old = PointTransformer()  # torch's defaults stay the default
    assert float(old.blocks[0].mlp[0].weight.detach().std()) > 0.04
    assert torch.count_nonzero(old.pos[0].bias) > 0

    s = make_shapes(16, 8, points=64)
    for init in ("authors", "torch"):
        cfg = validate(
            {"method": "pointmae", "data": {"source": "shapes"}, "params": {"init": init}}
        )
        m = assemble(cfg, s.train, torch.device("cpu")).method
        enc_w = m.transformer.blocks[0].mlp[0].weight.detach()
        dec_w = m.decoder.blocks[0].mlp[0].weight.detach()  # (512, 128): Xavier std 0.0559
        if init == "authors":
            assert 0.018 < float(enc_w.std()) < 0.022
            assert float(dec_w.std()) == pytest.approx(math.sqrt(2 / (512 + 128)), rel=0.05)
            assert torch.count_nonzero(m.decoder.blocks[0].mlp[0].bias) == 0
        else:
            assert float(enc_w.std()) == pytest.approx(1 / math.sqrt(3 * 128), rel=0.05)
            assert torch.count_nonzero(m.decoder.blocks[0].mlp[0].bias) > 0


def test_drop_path_drops_whole_residual_branches_in_training_only():
    from selfsup.models.points import Block, drop_path, set_drop_path

    torch.manual_seed(0)
    x = torch.ones(2000, 4, 8)
    y = drop_path(x, 0.25, True)
    kept = y[:, 0, 0] > 0
    assert torch.all(y[kept] == 1 / 0.75) and torch.all(y[~kept] == 0)
    assert 0.70 < float(kept.float().mean()) < 0.80
    assert torch.equal(drop_path(x, 0.25, False), x) and torch.equal(drop_path(x, 0.0, True), x)
    blocks = torch.nn.ModuleList(Block(16, 2) for _ in range(3))
    set_drop_path(blocks, 0.1)  # the authors' schedule: linear from 0 at the first block
    assert [b.drop_path for b in blocks] == pytest.approx([0.0, 0.05, 0.1])


def test_pointmae_params_set_drop_path_and_the_decoders_centre_embedding():
    from selfsup.config import validate
    from selfsup.parts import assemble

    s = make_shapes(16, 8, points=64)
    cfg = validate(
        {
            "method": "pointmae",
            "data": {"source": "shapes"},
            "model": {"width": 0.25},
            "params": {"drop_path": 0.1, "decoder_depth": 3, "decoder_pos": "every"},
        }
    )
    torch.manual_seed(0)
    m = assemble(cfg, s.train, torch.device("cpu")).method
    assert [b.drop_path for b in m.transformer.blocks][-1] == pytest.approx(0.1)
    assert [b.drop_path for b in m.decoder.blocks] == pytest.approx([0.0, 0.05, 0.1])
    dec = m.decoder.eval()
    ins, outs = [], []
    for blk in dec.blocks:
        blk.register_forward_pre_hook(lambda mod, a: ins.append(a[0].detach()))
        blk.register_forward_hook(lambda mod, a, o: outs.append(o.detach()))
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(2, 8, 3, generator=g)
    z = torch.randn(2, 3, m.transformer.dim, generator=g)
    ids_restore = torch.stack([torch.randperm(8, generator=g) for _ in range(2)])
    with torch.no_grad():
        dec(z, centres, ids_restore)
        pos = dec.pos(centres)
    for i in (1, 2):  # the authors' decoder: block(x + pos) at every block
        assert torch.allclose(ins[i], outs[i - 1] + pos, atol=1e-5)


def test_the_translate_view_shifts_each_cloud_by_one_bounded_offset():
    x = torch.from_numpy(make_shapes(16, 8, points=64).train.x)
    spec = PointViewsConfig(
        rotate="none", scale=(1.0, 1.0), jitter=0, dropout=0, crop_p=0, translate=0.2
    )
    torch.manual_seed(0)
    d = PointViews(spec, 1)(x)[0] - x
    assert torch.allclose(d, d[:, :, :1].expand_as(d), atol=1e-6)
    assert float(d.abs().max()) <= 0.2 and float(d[:, :, 0].std()) > 0.05
