"""COLA's loss against a slow float64 loop; cola and byola train; existing methods train on sound
unchanged; padding never changes an embedding; a run resumes bit-identically; the CLI picks the
sound defaults."""

import json
import math

import pytest
import torch

import selfsup
from selfsup.losses.cola import bilinear_loss
from selfsup.methods.byola import post_normalise

TINY = [
    "train.progress=none",
    "model.width=0.125",
    "model.proj_hidden=32",
    "model.proj_dim=16",
    "eval.report=false",
    "eval.baselines=false",
    "eval.diagnostics=false",
]


def slow_cola(a, p, w, symmetric):
    b = len(a)
    s = [[sum(a[i, k] * w[k, m] * p[j, m] for k in range(a.shape[1]) for m in range(a.shape[1]))
          for j in range(b)] for i in range(b)]  # fmt: skip
    fwd = -sum(s[i][i] - math.log(sum(math.exp(s[i][j]) for j in range(b))) for i in range(b)) / b
    if not symmetric:
        return fwd
    bwd = -sum(s[j][j] - math.log(sum(math.exp(s[i][j]) for i in range(b))) for j in range(b)) / b
    return (fwd + bwd) / 2


@pytest.mark.parametrize("symmetric", [False, True])
def test_cola_loss_equals_the_slow_loop(symmetric):
    g = torch.Generator().manual_seed(0)
    a, p, w = (torch.randn(5, 4, generator=g, dtype=torch.float64) for _ in range(3))
    w = torch.randn(4, 4, generator=g, dtype=torch.float64)
    got = float(bilinear_loss(a, p, w, symmetric))
    assert abs(got - slow_cola(a.numpy(), p.numpy(), w.numpy(), symmetric)) < 1e-9


def test_cola_loss_identities_and_gradcheck():
    z = torch.zeros(6, 3)
    assert abs(float(bilinear_loss(z, z, torch.eye(3))) - math.log(6)) < 1e-6
    g = torch.Generator().manual_seed(1)
    a = torch.randn(3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    p = torch.randn(3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, p, w: bilinear_loss(a, p, w, True), (a, p, w))
    with pytest.raises(ValueError, match="bilinear_loss"):
        bilinear_loss(a, p[:2], w)


def test_post_normalisation_standardises_the_views_as_the_backbone_sees_them():
    g = torch.Generator().manual_seed(0)
    views = [torch.randn(4, 1, 8, 16, generator=g) * 3 + 2 for _ in range(2)]
    mean, std = torch.full((1, 1, 1, 1), -5.0), torch.full((1, 1, 1, 1), 4.0)
    seen = torch.cat([(v - mean) / std for v in post_normalise(views, mean, std)])
    assert abs(float(seen.mean())) < 1e-5 and abs(float(seen.std()) - 1) < 1e-5


def build(tmp_path, npz, method):
    from selfsup.data import load_source
    from selfsup.parts import assemble
    from selfsup.resolve import resolve_config

    cfg = resolve_config(
        {
            "method": method,
            "data": {"source": str(npz)},
            "model": {"width": 0.125, "proj_hidden": 32, "proj_dim": 16},
            "train": {"batch_size": 8},
        }
    )
    return assemble(cfg, load_source(str(npz)).train, torch.device("cpu"))


@pytest.mark.parametrize("method,preset", [("cola", "cola"), ("byola", "byola")])
def test_a_few_steps_lower_the_loss_without_nan(tmp_path, tones_npz, method, preset):
    from selfsup.methods import Batch

    parts = build(tmp_path, tones_npz, method)
    assert parts.preset == preset
    m, views, x = parts.method, parts.views, parts.x
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    torch.manual_seed(0)
    losses = []
    for step in range(4):
        epoch = []
        for i in range(0, 24, 8):
            xb = x[i : i + 8]
            with torch.random.fork_rng():
                torch.manual_seed(i)
                loss, _ = m(views(xb), Batch(xb, torch.arange(i, i + 8)))
            assert torch.isfinite(loss)
            opt.zero_grad()
            loss.backward()
            opt.step()
            m.after_step(step, 12)
            epoch.append(loss.item())
        losses.append(sum(epoch) / len(epoch))
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("method", ["simclr", "byol", "vicreg", "mae", "cola"])
def test_methods_train_on_sound_unchanged(tmp_path, tones_npz, method):
    run = selfsup.train(
        method=method,
        data=str(tones_npz),
        epochs=1,
        batch_size=8,
        out=str(tmp_path / "r"),
        overrides=TINY,
    )
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["skipped_steps"] == 0 and 0 <= s["eval"]["linear_top1"] <= 1 and run.summary == s
    meta = selfsup.load_encoder(str(tmp_path / "r")).meta
    assert meta["front_end"]["sr"] == 16000 and meta["front_end"]["n_mels"] == 64
    assert meta["backbone"] == ("audio_vit" if method == "mae" else "audio_cnn")


@pytest.mark.parametrize("method", ["simclr", "mae"])  # audio_cnn, audio_vit
def test_padding_never_changes_an_embedding(tmp_path, tones_npz, method):
    from selfsup.modalities import get

    selfsup.train(method=method, data=str(tones_npz), epochs=1, batch_size=8,
                  out=str(tmp_path / "r"), overrides=TINY)  # fmt: skip
    enc = selfsup.load_encoder(str(tmp_path / "r")).eval()
    meta = enc.meta
    mod = get("audio")
    from _audio_data import tones

    from selfsup.data.audio import resample

    x, _, lengths = tones(n=3, seed=5)
    clips = [resample(x[i, : lengths[i]], 8000, 16000) for i in range(3)]
    with torch.no_grad():
        alone = [enc(mod.prepare(torch.from_numpy(c)[None], meta)) for c in clips]
        longest = max(len(c) for c in clips) + 5000
        nan = torch.full((3, longest), float("nan"))
        for i, c in enumerate(clips):
            nan[i, : len(c)] = torch.from_numpy(c)
        batch = enc(mod.prepare(nan, meta))
        for i in range(3):
            torch.testing.assert_close(batch[i : i + 1], alone[i], atol=1e-5, rtol=1e-5)


def test_a_sound_run_resumes_bit_identically(tmp_path, tones_npz, resume_matches_full):
    cfg = {
        "method": "byola",
        "data": {"source": str(tones_npz)},
        "model": {"width": 0.125, "proj_hidden": 32, "proj_dim": 16},
        "train": {"epochs": 3, "batch_size": 8, "progress": "none"},
        "eval": {"report": False, "baselines": False, "diagnostics": False},
    }
    full, resumed = resume_matches_full(cfg)
    assert resumed.summary["eval"] == full.summary["eval"]


@pytest.mark.slow  # a whole CLI run with its report and baselines
def test_a_wav_folder_with_no_flag_takes_the_sound_defaults(tmp_path, capsys):
    import soundfile as sf
    import yaml
    from _audio_data import tones

    from selfsup.cli import main

    x, y, lengths = tones(n=12)
    for i in range(12):
        d = tmp_path / "snd" / ("train" if i < 9 else "test") / f"c{y[i]}"
        d.mkdir(parents=True, exist_ok=True)
        sf.write(d / f"{i}.wav", x[i, : lengths[i]], 8000)
    root = str(tmp_path / "snd")
    code = main(["train", "--data", root, "--epochs", "1", "--out", str(tmp_path / "r"),
                 "--set", "model.width=0.125", "--set", "train.progress=none"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "linear_top1" in out and "raw input" in out and "random init" in out
    cfg = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert cfg["train"]["batch_size"] == 4 and cfg["optim"]["lr"] == 1e-3  # the sound defaults
    assert cfg["eval"]["knn_k"] == 10 and cfg["method"] == "simclr"
    assert selfsup.load_encoder(str(tmp_path / "r")).meta["backbone"] == "audio_cnn"


@pytest.mark.parametrize("name", ["cola", "byola"])
def test_the_recipes_load(name):
    from pathlib import Path

    from selfsup.resolve import resolve_config

    root = Path(__file__).resolve().parents[2]
    cfg = resolve_config(str(root / "configs" / f"{name}-spoken_digits.yaml"))
    assert cfg.method == name and cfg.views.preset == name and cfg.data.source == "spoken_digits"
