"""Text views: tokenisation of a byte batch, then token deletion, masking and span cropping.

A raw batch is uint8 (B, L) UTF-8 bytes (:mod:`selfsup.data.text`); :func:`tokenize` turns it into
int64 (B, T) token ids (``[CLS] ... [SEP]``, padded with the tokenizer's pad id after the last
token, at most ``max_tokens``) with the tokenizer recorded in the encoder's metadata. Tokenising
runs on the CPU (Hugging Face ``tokenizers``); the ops below run on the device, on the whole batch,
and never touch the special tokens (the first, the last and padding):

1. span crop (DeCLUTR-style, Giorgi et al. 2021): a random contiguous span of ``span`` to 100% of
   the text's tokens (``span`` = 1: off);
2. deletion: each token dropped with probability ``delete`` (the rest close up);
3. masking: each token replaced by ``[MASK]`` with probability ``mask``.

Presets (``views.preset``; ``auto`` is the method's own where the modality has it, else
``default``): ``default`` (span 0.6, delete 0.1, mask 0.1), ``delete`` (0.1), ``mask`` (0.15),
``span`` (0.5), ``none`` (the text unchanged: SimCSE, whose noise is the encoder's dropout).
``views.text.*`` overrides a preset's field.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

TEXT_PRESETS: dict[str, dict[str, float]] = {
    "default": {"span": 0.6, "delete": 0.1, "mask": 0.1},
    "delete": {"span": 1.0, "delete": 0.1, "mask": 0.0},
    "mask": {"span": 1.0, "delete": 0.0, "mask": 0.15},
    "span": {"span": 0.5, "delete": 0.0, "mask": 0.0},
    "none": {"span": 1.0, "delete": 0.0, "mask": 0.0},
}


class TextViewsConfig(BaseModel):
    """``views.text``: tokenisation length and the ops' strengths (None: the preset's)."""

    model_config = ConfigDict(extra="forbid")
    max_tokens: int = Field(default=128, ge=4, le=512)
    """Tokens kept of each text, special tokens included (the rest is cut)."""
    span: float | None = Field(default=None, gt=0, le=1)
    delete: float | None = Field(default=None, ge=0, lt=1)
    mask: float | None = Field(default=None, ge=0, lt=1)


_TOKENIZERS: dict[str, object] = {}


def load_tokenizer(spec: str, max_tokens: int):
    """The ``tokenizers.Tokenizer`` of its JSON ``spec``, truncating and padding (cached)."""
    key = f"{max_tokens}:{spec}"
    tok = _TOKENIZERS.get(key)
    if tok is None:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(spec)
        tok.enable_truncation(max_tokens)
        tok.no_padding()
        _TOKENIZERS.clear() if len(_TOKENIZERS) > 8 else None
        _TOKENIZERS[key] = tok
    return tok


def tokenize(x: Tensor, meta: dict) -> Tensor:
    """int64 (B, T) token ids of a uint8 (B, L) byte batch, on ``x``'s device (T: the longest)."""
    from ..data.text import decode_texts

    tok = load_tokenizer(meta["tokenizer"], meta["max_tokens"])
    enc = tok.encode_batch(decode_texts(x))  # type: ignore[attr-defined]
    t = max(2, max((len(e.ids) for e in enc), default=2))
    ids = torch.full((len(enc), t), meta["pad_id"], dtype=torch.long)
    for i, e in enumerate(enc):
        ids[i, : len(e.ids)] = torch.tensor(e.ids, dtype=torch.long)
    return ids.to(x.device)


def _compact(ids: Tensor, keep: Tensor, pad: int) -> Tensor:
    """The kept tokens of each row moved to the front (order kept), padding after."""
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    out = ids.gather(1, order)
    n = keep.sum(1, keepdim=True)
    return torch.where(torch.arange(ids.shape[1], device=ids.device) < n, out, pad)


class TextViews(nn.Module):
    """``n_views`` views of a byte batch: token ids after span crop, deletion and masking."""

    def __init__(self, meta: dict, ops: dict[str, float], n_views: int) -> None:
        super().__init__()
        self.meta, self.ops, self.n_views = meta, ops, n_views

    def augment(self, ids: Tensor) -> Tensor:
        pad, mask_id = self.meta["pad_id"], self.meta["mask_id"]
        b, t = ids.shape
        dev = ids.device
        pos = torch.arange(t, device=dev).expand(b, t)
        length = (ids != pad).sum(1, keepdim=True)  # tokens incl. [CLS] and [SEP]
        inner = (pos > 0) & (pos < length - 1)  # the text's own tokens
        n = (length - 2).clamp_min(0)
        keep = ids != pad
        span = self.ops["span"]
        if span < 1:
            frac = span + (1 - span) * torch.rand(b, 1, device=dev)
            w = (n.float() * frac).ceil().long().clamp_min(1)
            start = 1 + ((n - w + 1).clamp_min(1).float() * torch.rand(b, 1, device=dev)).long()
            keep = keep & (~inner | ((pos >= start) & (pos < start + w)))
        if self.ops["delete"] > 0:
            drop = inner & (torch.rand(b, t, device=dev) < self.ops["delete"])
            kept_inner = (inner & keep & ~drop).sum(1, keepdim=True)
            drop = drop & (kept_inner > 0)  # never delete every token of a text
            keep = keep & ~drop
        ids = _compact(ids, keep, pad)
        if self.ops["mask"] > 0:
            length = (ids != pad).sum(1, keepdim=True)
            inner = (pos > 0) & (pos < length - 1)
            ids = torch.where(
                inner & (torch.rand(b, t, device=dev) < self.ops["mask"]), mask_id, ids
            )
        return ids

    def forward(self, x: Tensor) -> list[Tensor]:
        ids = tokenize(x, self.meta)
        return [self.augment(ids) for _ in range(self.n_views)]
