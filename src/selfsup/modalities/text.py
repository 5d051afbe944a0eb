"""Text: UTF-8 byte containers, a tokenizer fitted on the training texts or a pretrained one, text
views, a small transformer or a local BERT-family checkpoint, and TF-IDF as the raw baseline.

The tokenizer travels in the encoder's metadata (``meta["tokenizer"]``: the JSON of a Hugging Face
``tokenizers`` tokenizer), so a saved encoder reads new texts the same way:

- from scratch (the default): WordPiece (BERT's normaliser, lower-cased; at most
  :data:`VOCAB_SIZE` entries: the characters, then the words seen at least twice, most frequent
  first; :func:`fit_tokenizer`) fitted on the training split's texts;
  the ``text_transformer`` backbone;
- ``--set model.pretrained=DIR``: a local checkpoint folder of a BERT-family model
  (``config.json``, weights, ``tokenizer.json`` or the files ``transformers`` builds a fast
  tokenizer from); the folder's tokenizer and the ``pretrained`` backbone (nothing downloaded).
  The "random init" row of such a run is the checkpoint itself, before selfsup trains it.

The encoder takes int64 (N, T) token ids (``prepare`` tokenises a byte batch; see
:mod:`selfsup.views.text`) and returns the mean of its token features over the non-padding
tokens (mean pooling, [CLS] and [SEP] included). Defaults where unset: AdamW at lr 5e-4 from
scratch, 3e-5 from a checkpoint (SimCSE's), a batch of at most 64, epochs for about
:data:`TARGET_STEPS` steps, kNN (k = 5) and linear probes and label retrieval (recall@1/5/10 of
test texts among the training texts). The raw-input baseline is TF-IDF
(scikit-learn, fitted on the evaluation bank, at most :data:`TFIDF_FEATURES` terms, sublinear tf)
with the same probes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Required

import numpy as np
import torch
from torch import Tensor, nn

from ..config import register_views
from ..data import DataOption, Source, register_builtin, register_option, register_source
from ..data.text import (
    TextData,
    claims_paired_npz,
    load_digits_captions,
    load_paired_npz,
    load_paired_table,
    load_text,
)
from ..errors import ConfigError, DataError
from ..views.text import TEXT_PRESETS, TextViewsConfig
from .base import EncoderMeta, Modality, register, step_budget

if TYPE_CHECKING:
    from ..methods.base import Needs

NAME = "text"
VOCAB_SIZE = 8000
TARGET_STEPS = 500
TFIDF_FEATURES = 8192
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def fit_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE, min_count: int = 2) -> str:
    """A WordPiece tokenizer fitted on ``texts``, as JSON (``[CLS] text [SEP]``; pad id 0).

    Its vocabulary, built here so that the same texts always give the same tokenizer (the
    ``tokenizers`` trainer breaks ties differently from run to run, and a resumed run refits it):
    the special tokens, every character of the texts (alone and as a ``##`` continuation, so no
    word is unknown), then the most frequent words seen at least ``min_count`` times (ties in
    alphabetical order), up to ``vocab_size`` entries. BERT's normaliser (lower-cased, accents
    stripped) and pre-tokeniser (words and punctuation) come first."""
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    norm = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for t in texts:
        words.update(w for w, _ in pre.pre_tokenize_str(norm.normalize_str(t)))
    chars = sorted({c for w in words for c in w})
    vocab = list(SPECIALS) + chars + ["##" + c for c in chars]
    seen = set(vocab)
    ranked = sorted((w for w, n in words.items() if n >= min_count), key=lambda w: (-words[w], w))
    for w in ranked:
        if len(vocab) >= vocab_size:
            break
        if w not in seen:
            vocab.append(w)
            seen.add(w)
    tok = Tokenizer(
        models.WordPiece(
            {w: i for i, w in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100
        )
    )
    tok.add_special_tokens(list(SPECIALS))  # already in the vocabulary: marked special only
    tok.normalizer = norm
    tok.pre_tokenizer = pre
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return tok.to_str()


def pretrained_parts(folder: str) -> tuple[str, dict]:
    """``(tokenizer JSON, model config dict)`` of a local checkpoint folder (one-line errors)."""
    d = Path(folder).expanduser()
    if not (d / "config.json").is_file():
        raise ConfigError(
            f"model.pretrained '{folder}' is not a checkpoint folder (no config.json); give a "
            "local folder of a BERT-family model (config.json, weights, tokenizer files)"
        )
    try:
        from transformers import AutoConfig
    except ImportError:
        raise ConfigError(
            "model.pretrained needs transformers; install the text extra (pip install "
            "'selfsup[text]')"
        ) from None
    cfg = AutoConfig.from_pretrained(str(d), local_files_only=True).to_dict()
    if (d / "tokenizer.json").is_file():
        spec = (d / "tokenizer.json").read_text(encoding="utf-8")
    else:
        from transformers import AutoTokenizer

        try:
            hf = AutoTokenizer.from_pretrained(str(d), local_files_only=True, use_fast=True)
            spec = hf.backend_tokenizer.to_str()
        except Exception as err:  # noqa: BLE001  (transformers raises many kinds)
            raise ConfigError(
                f"model.pretrained '{folder}': no tokenizer could be built ({type(err).__name__}); "
                "the folder needs tokenizer.json or vocab.txt"
            ) from None
    return spec, cfg


class TextMeta(EncoderMeta, total=False):
    """A text encoder's ``meta``: the tokenizer (its JSON), its special ids, the token limit, the
    view ops, and for a pretrained checkpoint its folder and configuration."""

    tokenizer: Required[str]
    vocab_size: Required[int]
    pad_id: Required[int]
    mask_id: int
    max_tokens: Required[int]
    ops: dict[str, Any]
    pretrained: str
    hf_config: dict[str, Any]


class TextModality(Modality):
    name = NAME
    meta_type = TextMeta
    input_ndim = 2
    views_fields = frozenset({NAME})
    loads_pretrained = True

    def backbone_names(self) -> list[str]:
        from ..models.text import TEXT_BACKBONES

        return list(TEXT_BACKBONES)

    def config_defaults(self, cfg, train: TextData) -> dict:
        return {
            "train": {
                **step_budget(len(train), 64, TARGET_STEPS),
            },
            "optim": {"lr": 3e-5 if cfg.model.pretrained else 5e-4},
            "eval": {"protocols": ["knn", "linear", "retrieval"], "knn_k": 5},
        }

    def input_meta(self, cfg, train: TextData, needs: Needs):
        preset = cfg.views.preset
        if preset == "auto":
            preset = needs.view_preset if needs.view_preset in TEXT_PRESETS else "default"
        if preset not in TEXT_PRESETS:
            raise ConfigError(
                f"unknown text view preset '{preset}'; choose one of: auto, "
                f"{', '.join(TEXT_PRESETS)}"
            )
        vc = getattr(cfg.views, NAME)
        ops = {
            k: v if (v := getattr(vc, k)) is not None else d
            for k, d in TEXT_PRESETS[preset].items()
        }
        meta: dict = {"in_channels": 1, "preset": preset, "ops": ops, "max_tokens": vc.max_tokens}
        if cfg.model.pretrained:
            spec, hf = pretrained_parts(cfg.model.pretrained)
            meta.update(
                pretrained=str(Path(cfg.model.pretrained).expanduser().resolve()), hf_config=hf
            )
            meta["max_tokens"] = min(vc.max_tokens, int(hf.get("max_position_embeddings", 512)))
        else:
            spec = fit_tokenizer(train.texts)
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(spec)
        pad = tok.token_to_id("[PAD]")
        mask = tok.token_to_id("[MASK]")
        meta.update(
            tokenizer=spec,
            vocab_size=int(tok.get_vocab_size()),
            pad_id=int(pad if pad is not None else 0),
            mask_id=int(mask if mask is not None else tok.token_to_id("[UNK]") or 0),
            mean=[0.0],
            std=[1.0],
        )
        return preset, meta

    def build_views(self, cfg, meta: dict) -> nn.Module:
        from ..views.text import TextViews

        return TextViews(meta, meta["ops"], cfg.views.n_views)

    def default_backbone(self, meta: dict) -> str:
        return "pretrained" if "hf_config" in meta else "text_transformer"

    def build_backbone(self, name: str, meta: dict, model_cfg) -> nn.Module:
        from ..models.text import PretrainedText, TextTransformer

        name = self.default_backbone(meta) if name == "auto" else name
        if name == "pretrained":
            if "hf_config" not in meta:
                raise ConfigError(
                    "the pretrained backbone needs a checkpoint folder: --set model.pretrained=DIR"
                )
            folder = meta.get("pretrained")
            live = folder if folder and Path(folder).is_dir() else None
            return PretrainedText(meta["hf_config"], meta["pad_id"], live)
        if name != "text_transformer":
            raise ConfigError(
                f"unknown text backbone '{name}'; choose one of: text_transformer, pretrained"
            )
        return TextTransformer(
            meta["vocab_size"], meta["pad_id"], model_cfg.width, max_len=meta["max_tokens"]
        )

    def build_encoder(self, meta: dict, model_cfg) -> nn.Module:
        from ..models.text import TextEncoder

        return TextEncoder(self.build_backbone(model_cfg.backbone, meta, model_cfg))

    def to_tensor(self, data: TextData) -> Tensor:
        return torch.from_numpy(data.x)

    def prepare(self, x: Tensor, meta: dict) -> Tensor:
        from ..views.text import tokenize

        return tokenize(x, meta)

    def raw_features(self, data: TextData, meta: dict) -> Tensor:
        """TF-IDF of the texts, fitted on them (:meth:`raw_baseline` fits on the bank)."""
        return tfidf(data.texts, [])[0]

    def raw_baseline(self, bank, query, meta: dict, ec, protocols: list[str]) -> dict:
        from ..eval import protocols as EP

        fb, fq = tfidf(bank.texts, query.texts)
        inputs = EP.EvalInputs(fb, torch.from_numpy(bank.y), fq, torch.from_numpy(query.y), ec)
        return EP.run(protocols, inputs, skip_unavailable=True)


def tfidf(fit: list[str], other: list[str]) -> tuple[Tensor, Tensor]:
    """TF-IDF (sublinear tf, l2-normalised rows, words of 2+ characters) fitted on ``fit``."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(max_features=TFIDF_FEATURES, sublinear_tf=True)
    try:
        a = vec.fit_transform(fit)
    except ValueError:  # no word of two characters anywhere
        return torch.zeros(len(fit), 1), torch.zeros(len(other), 1)
    b = vec.transform(other) if other else None
    to = lambda m: torch.from_numpy(np.asarray(m.todense(), dtype=np.float32))  # noqa: E731
    return to(a), (to(b) if b is not None else torch.zeros(0, a.shape[1]))


_TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".jsonl")


def _claims_table(spec: str, path: Path) -> bool:
    return path.suffix.lower() in _TABLE_SUFFIXES


def _claims_lines(spec: str, path: Path) -> bool:
    return path.suffix.lower() in (".txt", ".jsonl")


def _load(spec: str, label_column=None, skip_corrupt=False, options=None, **_):
    options = options or {}
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"text file '{spec}' does not exist; give the path of a text file")
    column = options.get("text_column")
    pair = options.get("pair_column")
    if pair is not None:
        if column is None:
            raise DataError(
                "--pair-column names a file's second text column; name the first with --text-column"
            )
        return load_paired_table(path, str(column), str(pair), label_column, skip_corrupt)
    return load_text(path, None if column is None else str(column), label_column, skip_corrupt)


register(TextModality())
register_views(NAME, TextViewsConfig)
register_option(
    DataOption(
        "text_column",
        "text: the column of a CSV/TSV/JSON Lines/Parquet file that holds the texts (the file "
        "is then text, not a table)",
        metavar="NAME",
    )
)
register_option(
    DataOption(
        "pair_column",
        "text: a second text column of the --text-column file; the two columns are the two "
        "members of a paired run (clip, isogclr_pair, xhcl)",
        metavar="NAME",
    )
)
register_source(Source("text-paired-npz", claims_paired_npz, load_paired_npz))
register_source(Source("text-table", _claims_table, _load, requires=("text_column",)))
register_builtin("digits_captions", load_digits_captions)
register_source(Source("text-lines", _claims_lines, _load))
