"""Property-based tests (hypothesis): config parsing, the array and image loaders, and checkpoint
loading, fed random input. Whatever comes in, only the documented exception of each boundary
escapes (ConfigError, DataError, CheckpointError), and what loads satisfies the documented form."""

from __future__ import annotations

import io
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from selfsup import config as conf
from selfsup.data import load_source
from selfsup.errors import CheckpointError, ConfigError, DataError
from selfsup.resolve import resolve_config
from selfsup.train import checkpoint as ckpt

#: a fixed, quick sample by default; SELFSUP_HYPOTHESIS_EXAMPLES=N explores N random examples
_N = int(os.environ.get("SELFSUP_HYPOTHESIS_EXAMPLES", "0"))
SETTINGS = settings(
    max_examples=_N or 40,
    deadline=None,
    derandomize=not _N,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# -- config ----------------------------------------------------------------------------------------

SECTIONS = ["data", "views", "model", "optim", "train", "eval", "loss"]
FIELDS = [
    "source",
    "image_size",
    "n_views",
    "crop_scale",
    "backbone",
    "width",
    "lr",
    "name",
    "epochs",
    "batch_size",
    "seed",
    "max_bad_steps",
    "rollback",
    "rollback_lr_factor",
    "knn_k",
    "protocols",
    "temperature",
    "progress",
    "nope",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=6,
)
config_dicts = st.dictionaries(
    st.sampled_from(SECTIONS + ["method", "out", "extra"]),
    st.one_of(
        values, st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), values, max_size=4)
    ),
    max_size=5,
)


@SETTINGS
@given(d=config_dicts, overrides=st.lists(st.text(max_size=30), max_size=3))
def test_config_parsing_raises_only_config_error(d, overrides):
    try:
        cfg = resolve_config(d, overrides)
    except ConfigError as e:
        assert "\n" not in str(e)
    else:
        assert isinstance(cfg, conf.Config) and conf.validate(cfg.to_dict()) == cfg


@SETTINGS
@given(key=st.text(max_size=20), value=st.text(max_size=30))
def test_set_overrides_raise_only_config_error(key, value):
    try:
        resolve_config(None, [f"{key}={value}"])
    except ConfigError:
        pass


@SETTINGS
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_yaml_files_raise_only_config_error(text):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.yaml"
        p.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            resolve_config(str(p))
        except ConfigError:
            pass


# -- arrays ----------------------------------------------------------------------------------------

dtypes = st.sampled_from([np.uint8, np.int64, np.float32, np.float64, np.bool_, np.int8, np.uint16])
arrays = dtypes.flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6))
)


def _check_images(d):
    assert d.x.dtype == np.uint8 and d.x.ndim == 4 and d.x.shape[3] in (1, 3) and len(d) > 0
    if d.y is not None:
        assert d.y.shape == (len(d),) and d.y.dtype == np.int64


@SETTINGS
@given(
    arrs=st.dictionaries(
        st.sampled_from(["x", "y", "x_test", "y_test", "other"]), arrays, max_size=4
    )
)
def test_npz_loader_raises_only_data_error(arrs):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "d.npz"
        np.savez(p, **arrs)
        try:
            s = load_source(str(p))
        except DataError as e:
            assert "\n" not in str(e)
        else:
            _check_loaded(s.train)
            if s.test is not None:
                _check_loaded(s.test)


def _check_loaded(d):
    """An .npz decodes to images, series (float (N, C, T)) or table rows (finite float (N, F))."""
    if d.modality == "image":
        _check_images(d)
    elif d.modality == "table":
        assert d.x.dtype == np.float32 and d.x.ndim == 2 and len(d) > 0 and np.isfinite(d.x).all()
    else:
        assert d.x.dtype == np.float32 and d.x.ndim == 3 and len(d) > 0
    if d.y is not None:
        assert d.y.shape == (len(d),) and d.y.dtype == np.int64


@SETTINGS
@given(data=st.binary(max_size=400), cut=st.integers(0, 400))
def test_damaged_npz_files_raise_only_data_error(data, cut):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "d.npz"
        good = io.BytesIO()
        np.savez(good, x=np.zeros((2, 4, 4), np.uint8))
        raw = good.getvalue()
        p.write_bytes(raw[:cut] + data if data else raw[:cut])  # truncated and/or garbage
        try:
            _check_images(load_source(str(p)).train)
        except DataError:
            pass


# -- image folders ---------------------------------------------------------------------------------

MODES = ["L", "RGB", "RGBA", "P", "CMYK", "I;16", "1", "LA", "I", "F"]


@st.composite
def image_files(draw):
    kind = draw(st.sampled_from(["image", "image", "truncated", "bytes"]))
    ext = draw(st.sampled_from([".png", ".jpg", ".bmp", ".gif", ".tif", ".webp"]))
    if kind == "bytes":
        return ext, draw(st.binary(max_size=300))
    mode = draw(st.sampled_from(MODES))
    w, h = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    im = Image.new(mode, (w, h))
    fmt = {
        ".png": "PNG",
        ".jpg": "JPEG",
        ".bmp": "BMP",
        ".gif": "GIF",
        ".tif": "TIFF",
        ".webp": "WEBP",
    }[ext]
    b = io.BytesIO()
    try:
        im.save(b, format=fmt)
    except (OSError, ValueError, KeyError):  # this format cannot hold this mode
        im.convert("RGB").save(b, format=fmt)
    raw = b.getvalue()
    if kind == "truncated":
        raw = raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
    return ext, raw


@SETTINGS
@given(
    files=st.lists(image_files(), min_size=1, max_size=6),
    skip=st.booleans(),
    size=st.none() | st.integers(4, 9),
)
def test_image_folder_loader_raises_only_data_error(files, skip, size):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "imgs"
        root.mkdir()
        for i, (ext, raw) in enumerate(files):
            (root / f"f{i}{ext}").write_bytes(raw)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = load_source(
                    str(root), image_size=size, skip_corrupt=skip, cache_dir=str(Path(d) / "c")
                )
        except DataError as e:
            assert "\n" not in str(e)
        else:
            _check_images(s.train)
            assert len(s.train) + s.train.info["skipped"] == len(files)
            if size is not None:
                assert s.train.x.shape[1:3] == (size, size)


# -- checkpoints -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    p = tmp_path_factory.mktemp("ck") / "c.safetensors"
    ckpt.save(
        p, {"progress": {"step": 3}, "model": {"w": torch.arange(6.0)}, "rng": [torch.zeros(2)]}
    )
    return p.read_bytes()


@SETTINGS
@given(pos=st.integers(0, 10**6), junk=st.binary(min_size=1, max_size=16), cut=st.booleans())
def test_damaged_checkpoints_raise_only_checkpoint_error(checkpoint_bytes, pos, junk, cut):
    raw = bytearray(checkpoint_bytes)
    pos %= len(raw)
    raw = raw[:pos] if cut else raw[:pos] + junk + raw[pos + len(junk) :]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.safetensors"
        p.write_bytes(bytes(raw))
        try:
            state = ckpt.load(p)
        except CheckpointError as e:
            assert "\n" not in str(e)
        else:
            assert isinstance(state, dict)


def test_a_recipe_builds_on_another_with_defaults(tmp_path):
    from selfsup.errors import ConfigError

    (tmp_path / "base.yaml").write_text(
        "train: {epochs: 7, batch_size: 32}\nloss: {temperature: 0.3}\n"
    )
    (tmp_path / "mine.yaml").write_text("defaults: [base.yaml]\ntrain: {epochs: 9}\n")
    cfg = resolve_config(str(tmp_path / "mine.yaml"))
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.params["temperature"]) == (9, 32, 0.3)
    (tmp_path / "loop.yaml").write_text("defaults: [loop.yaml]\n")
    with pytest.raises(ConfigError, match="cycle"):
        resolve_config(str(tmp_path / "loop.yaml"))


def test_the_former_loss_section_is_read_as_params_everywhere(tmp_path):
    """``loss`` was the name of the method hyper-parameters' section: recipes, --set, Python dicts
    and the config.yaml of older runs keep working, the later setting winning as before."""
    (tmp_path / "old.yaml").write_text("method: moco\nloss: {temperature: 0.3, queue_size: 64}\n")
    cfg = resolve_config(str(tmp_path / "old.yaml"), ["params.temperature=0.1"])
    assert cfg.params == {"temperature": 0.1, "queue_size": 64}
    assert "loss" not in cfg.to_dict() and "params:" in cfg.to_yaml()
    (tmp_path / "new.yaml").write_text("method: moco\nparams: {temperature: 0.3}\n")
    assert resolve_config(str(tmp_path / "new.yaml"), ["loss.temperature=0.05"]).params == {
        "temperature": 0.05
    }
    (tmp_path / "base.yaml").write_text("method: moco\nloss: {temperature: 0.3, queue_size: 64}\n")
    (tmp_path / "mine.yaml").write_text("defaults: [base.yaml]\nparams: {temperature: 0.2}\n")
    assert resolve_config(str(tmp_path / "mine.yaml")).params == {
        "temperature": 0.2,
        "queue_size": 64,
    }
    assert conf.Config.model_validate({"loss": {"temperature": 0.4}}).params == {"temperature": 0.4}
    with pytest.raises(ConfigError, match="former name"):
        conf.validate({"loss": {"temperature": 0.4}, "params": {"temperature": 0.2}})
    with pytest.raises(ConfigError, match=r"config field 'params\.temperatur'"):
        resolve_config(None, ["params.temperatur=0.2"])


def test_former_flat_views_fields_are_read_as_their_sections(tmp_path):
    """``views.size`` and the other image, table and graph fields sat directly under ``views``
    before each modality had its section: recipes, --set, Python dicts and attribute reads keep
    working, and a field given both ways with different values is refused."""
    (tmp_path / "old.yaml").write_text(
        "views: {size: 12, crop_scale: [0.5, 1.0], corruption: 0.2}\n"
    )
    cfg = resolve_config(str(tmp_path / "old.yaml"), ["views.flip=0.25"])
    assert (cfg.views.image.size, cfg.views.image.crop_scale) == (12, (0.5, 1.0))
    assert cfg.views.image.flip == 0.25 and cfg.views.size == 12
    assert cfg.views.table.corruption == 0.2 and cfg.views.graph.corruption == 0.2
    written = cfg.to_dict()["views"]
    assert "size" not in written and written["image"]["size"] == 12
    assert resolve_config(None, ["views.image.size=12"]).views.image == cfg.views.image.model_copy(
        update={"crop_scale": None, "flip": None}
    )
    assert (
        conf.Config.model_validate({"views": {"size": 12, "image": {"size": 12}}}).views.size == 12
    )
    with pytest.raises(ConfigError, match="former name of views.image.size"):
        conf.validate({"views": {"size": 12, "image": {"size": 16}}})
    with pytest.raises(AttributeError):
        _ = cfg.views.no_such_field


def test_an_invalid_field_of_a_views_section_is_named_with_its_section():
    """The error names ``views.<section>.<field>``, the key a user can set (not ``views.<field>``,
    which for most fields is no key at all)."""
    for override, where in [
        ("views.image.crop_scale=[0.9,0.1]", "views.image.crop_scale"),
        ("views.audio.gain_db=-1", "views.audio.gain_db"),
        ("views.audio.rt60=[1,0.5]", "views.audio.rt60"),
        ("views.video.still_p=2", "views.video.still_p"),
        ("views.table.no_such_field=1", "views.table.no_such_field"),
    ]:
        with pytest.raises(ConfigError, match=rf"^config field '{re.escape(where)}': "):
            resolve_config(None, [override])


def test_a_run_whose_config_has_the_former_flat_views_fields_resumes_bit_identically(
    tiny_config, tmp_path
):
    import yaml
    from safetensors.torch import load_file

    import selfsup
    from selfsup.views.image import FORMER_FIELDS

    class Kill(Exception):
        pass

    cfg = tiny_config(views={"image": {"size": 8, "flip": 0.0}}, train={"epochs": 3})
    straight = selfsup.train({**cfg, "out": str(tmp_path / "a")})

    def die(epoch, method):
        if epoch == 2:
            raise Kill()

    with pytest.raises(Kill):
        selfsup.train({**cfg, "out": str(tmp_path / "b")}, on_epoch_end=die)
    written = tmp_path / "b" / "config.yaml"
    old = yaml.safe_load(written.read_text())  # as an earlier version wrote it: flat fields
    image = old["views"].pop("image")  # (fields added since, such as bss_placement, dropped)
    old["views"].update({k: v for k, v in image.items() if k in FORMER_FIELDS})
    written.write_text(yaml.safe_dump(old))
    resumed = selfsup.train(resume=tmp_path / "b")
    a = load_file(str(straight.dir / "encoder.safetensors"))
    b = load_file(str(resumed.dir / "encoder.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_of_an_earlier_version_is_not_a_changed_config():
    """An older checkpoint records views fields flat and lacks fields added since: neither is a
    change of the run's config; a field added since but set away from its default is."""
    from selfsup import resume
    from selfsup.views.image import FORMER_FIELDS

    now = conf.Config().to_dict()
    old = conf.Config().to_dict()
    image = old["views"].pop("image")
    old["views"].update({k: v for k, v in image.items() if k in FORMER_FIELDS})
    old["views"]["corruption"] = old["views"].pop("table")["corruption"]
    del old["views"]["graph"], old["optim"]["lr_factors"]
    old["views"] = conf.former_views(old["views"])
    assert resume._changes(old, now) == []
    moved = conf.Config(optim={"lr_factors": {"encoder.b.": 0.5}}).to_dict()
    assert resume._changes(old, moved) == [
        "config.yaml field 'optim.lr_factors.encoder.b.' is 0.5 (was None)"
    ]
