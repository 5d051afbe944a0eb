"""Text as a member of a paired run: .npz with a string member, two text columns of a file, the
built-in ``digits_captions``, and a clip run with cross-modal retrieval."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import selfsup
from selfsup.data import load_source
from selfsup.data.audio import AudioData
from selfsup.data.base import ImageData
from selfsup.data.text import TextData, describe_digits, make_topics
from selfsup.errors import DataError

FAST = ["train.progress=none", "train.threads=1", "model.width=0.125", "eval.report=false",
        "eval.diagnostics=false", "eval.baselines=false", "model.proj_hidden=32",
        "model.proj_dim=16"]  # fmt: skip


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFSUP_CACHE", str(tmp_path / "cache"))


def _images_and_texts(n=40, seed=0):
    """Images whose bright column is the class; texts that name the class and the row."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    x = rng.integers(0, 40, (n, 8, 8)).astype(np.uint8)
    rows = rng.integers(0, 8, n)
    texts = []
    for i in range(n):
        x[i, :, 2 * y[i]] = 255
        x[i, rows[i], :] = 200
        texts.append(f"a bright column number {y[i]} crossed on row {rows[i]}")
    return x, y, np.array(texts)


def test_a_string_member_of_a_paired_npz_is_text(tmp_path):
    x, y, t = _images_and_texts()
    t[3] = "  "
    p = tmp_path / "pair.npz"
    np.savez(p, x_a=x, x_b=t, y=y, x_a_test=x[:8], x_b_test=t[10:18], y_test=y[:8])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s = load_source(str(p))
    d = s.train
    assert type(d).modality == "paired" and isinstance(d.a, ImageData) and isinstance(d.b, TextData)
    assert len(d) == 39 and d.info["skipped"] == 1  # the empty text's pair left out of both
    assert any("1 pair(s) with an empty text skipped" in str(m.message) for m in w)
    assert d.b.texts[3] == str(t[4]) and np.array_equal(d.a.x[3, ..., 0], x[4])
    assert np.array_equal(d.y, np.delete(y, 3)) and np.array_equal(d.b.y, d.y)
    assert s.test is not None and s.test.b.texts == [str(v) for v in t[10:18]]
    t = _images_and_texts()[2]
    np.savez(tmp_path / "text2.npz", x_a=t, x_b=t[::-1].copy())  # text with text
    s = load_source(str(tmp_path / "text2.npz"))
    assert isinstance(s.train.a, TextData) and isinstance(s.train.b, TextData)


def test_bad_text_members_are_one_line(tmp_path):
    x, y, t = _images_and_texts()
    np.savez(tmp_path / "a.npz", x_a=x, x_b=t.reshape(8, 5))
    with pytest.raises(DataError, match=r"'x_b' is a string array of shape \(8, 5\).*\(N,\)"):
        load_source(str(tmp_path / "a.npz"))
    np.savez(tmp_path / "b.npz", x_a=x, x_b=t[:-1])
    with pytest.raises(DataError, match="'x_a' has 40 samples but 'x_b' has 39"):
        load_source(str(tmp_path / "b.npz"))
    np.savez(tmp_path / "c.npz", x_a=x, x_b=np.array([""] * len(x)))
    with pytest.raises(DataError, match="every pair has an empty text"):
        load_source(str(tmp_path / "c.npz"))
    np.savez(tmp_path / "d.npz", x_a=t)
    with pytest.raises(DataError, match="no 'x_b'"):
        load_source(str(tmp_path / "d.npz"))


def test_sound_with_text_is_read_by_the_text_source(tmp_path):
    y = np.arange(12) % 3
    a = (0.5 * np.sin(2 * np.pi * 300 * 2 ** y[:, None] * np.arange(2400) / 8000)).astype(
        np.float32
    )
    texts = np.array([f"a tone of class {k}" for k in y])
    p = tmp_path / "st.npz"
    np.savez(p, x_a=a, sr_a=8000, x_b=texts, y=y)
    d = load_source(str(p)).train
    assert isinstance(d.a, AudioData) and d.a.sr == 16000 and isinstance(d.b, TextData)


def _table(path: Path, rows, header) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_two_text_columns_are_a_paired_source(tmp_path):
    rows = [(t, t.upper()[::-1], k) for t, k in make_topics(50)]
    p = _table(tmp_path / "t.csv", rows, ("title", "body", "topic"))
    opts = {"text_column": "title", "pair_column": "body"}
    s = load_source(str(p), label_column="topic", options=opts)
    assert isinstance(s.train.a, TextData) and isinstance(s.train.b, TextData)
    assert len(s.train) == 40 and len(s.test) == 10
    assert sorted(np.bincount(s.test.y).tolist()) == [2, 2, 2, 2, 2]  # stratified 80/20
    assert s.train.b.texts[0] == s.train.a.texts[0].upper()[::-1]  # the pairs stay together
    (tmp_path / "t.jsonl").write_text(
        "\n".join(json.dumps({"q": a, "ans": b}) for a, b, _ in rows), encoding="utf-8"
    )
    s = load_source(str(tmp_path / "t.jsonl"), options={"text_column": "q", "pair_column": "ans"})
    assert len(s.train) == 50 and s.test is None and s.train.y is None
    with pytest.raises(DataError, match="no column 'abstract'.*--pair-column"):
        load_source(str(p), options={"text_column": "title", "pair_column": "abstract"})
    with pytest.raises(DataError, match="also the --text-column"):
        load_source(str(p), options={"text_column": "title", "pair_column": "title"})
    with pytest.raises(DataError, match="name the first with --text-column"):
        load_source(str(tmp_path / "t.jsonl"), options={"pair_column": "ans"})


def test_descriptions_follow_what_is_drawn():
    """Three strokes: '\\', '|' and '/'; bold, medium and faint ink; the description names each."""
    img = np.zeros((3, 8, 8), np.uint8)
    for r in range(8):
        img[0, r, r] = 120  # '\': the top lies to the left
        img[1, r, 4] = 200
        img[2, r, 7 - r] = 255  # '/': the top lies to the right
    texts = describe_digits(img, np.array([1, 1, 1]))
    left = ("leaning left", "slanted to the left", "tilted left")
    right = ("leaning right", "slanted to the right", "tilted right")
    assert any(w in texts[0] for w in left) and not any(w in texts[0] for w in right)
    assert any(w in texts[2] for w in right) and not any(w in texts[2] for w in left)
    assert any(w in texts[1] for w in ("upright", "straight"))
    assert any(w in texts[0] for w in ("thin", "light", "faint"))
    assert any(w in texts[2] for w in ("bold", "thick", "heavy"))
    assert all("one" in t or "digit 1" in t for t in texts)
    assert describe_digits(img, np.array([1, 1, 1])) == texts  # fixed seed, fixed words


def test_digits_captions_is_built_in():
    s = load_source("digits_captions")
    assert isinstance(s.train.a, ImageData) and isinstance(s.train.b, TextData)
    assert (len(s.train), len(s.test)) == (1347, 450)
    assert len(set(s.train.b.texts)) > 0.9 * len(s.train)  # mostly one description per image
    digits = load_source("digits")
    assert np.array_equal(s.test.a.x, digits.test.x) and np.array_equal(s.test.y, digits.test.y)


def test_clip_trains_images_with_texts_and_retrieves_across(tmp_path):
    x, y, t = _images_and_texts(48)
    p = tmp_path / "pair.npz"
    np.savez(p, x_a=x, x_b=t, y=y)
    run = selfsup.train(
        method="clip", data=str(p), epochs=4, batch_size=16, out=str(tmp_path / "r"), overrides=FAST
    )  # 4 epochs: the text tower trains at its own (lower) rate, 2 are inside the noise
    ev = run.summary["eval"]
    assert {"xmodal_r1", "xmodal_medr", "a_linear_top1", "b_linear_top1", "b_knn_top1"} <= set(ev)
    losses = [
        json.loads(line)["loss"]
        for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
        if '"loss"' in line
    ]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    meta = selfsup.load_encoder(str(tmp_path / "r")).meta
    assert meta["towers"]["b"]["modality"] == "text" and "tokenizer" in meta["towers"]["b"]


def test_a_text_pair_from_columns_trains_from_the_cli(tmp_path):
    from selfsup.cli import main

    rows = [(t, " ".join(t.split()[::-1]), k) for t, k in make_topics(60)]
    p = _table(tmp_path / "t.csv", rows, ("title", "body", "topic"))
    code = main(["train", "--data", str(p), "--text-column", "title", "--pair-column", "body",
                 "--label-column", "topic", "--method", "clip", "--epochs", "1",
                 "--batch-size", "16", "--out", str(tmp_path / "r"),
                 *[a for o in FAST for a in ("--set", o)]])  # fmt: skip
    assert code in (0, None)
    ev = json.loads((tmp_path / "r" / "summary.json").read_text())["eval"]
    assert "xmodal_r1" in ev and "a_linear_top1" in ev


@pytest.mark.slow  # transformers' import and a BERT tower: about 10 s
def test_a_pretrained_text_tower_and_the_refusal_where_no_member_takes_one(tmp_path):
    pytest.importorskip("transformers")
    from transformers import BertConfig, BertModel

    from selfsup.errors import ConfigError
    from selfsup.modalities.text import fit_tokenizer
    from selfsup.views.text import load_tokenizer

    x, y, t = _images_and_texts(32)
    spec = fit_tokenizer([str(v) for v in t])
    d = tmp_path / "bert"
    cfg = BertConfig(vocab_size=load_tokenizer(spec, 32).get_vocab_size(), hidden_size=32,
                     num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=64)  # fmt: skip
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(d)
    (d / "tokenizer.json").write_text(spec, encoding="utf-8")
    np.savez(tmp_path / "p.npz", x_a=x, x_b=t, y=y)
    run = selfsup.train(
        method="clip",
        data=str(tmp_path / "p.npz"),
        epochs=1,
        batch_size=16,
        out=str(tmp_path / "r"),
        overrides=[*FAST, f"model.pretrained={d}"],
    )
    towers = selfsup.load_encoder(str(tmp_path / "r")).meta["towers"]
    assert towers["b"]["backbone"] == "pretrained" and "xmodal_r1" in run.summary["eval"]
    np.savez(tmp_path / "imgs.npz", x_a=x, x_b=x[:, ::-1].copy(), y=y)
    with pytest.raises(
        ConfigError, match="members of .* are image and image; drop model.pretrained"
    ):
        selfsup.train(
            method="clip",
            data=str(tmp_path / "imgs.npz"),
            out=str(tmp_path / "no"),
            batch_size=8,
            overrides=[*FAST, f"model.pretrained={d}"],
        )
    assert not (tmp_path / "no").exists()
