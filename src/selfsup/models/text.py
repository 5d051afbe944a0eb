"""Text encoders on token ids (B, T) (padding = the tokenizer's pad id, after the last token):
sentence embeddings by mean pooling over the non-padding tokens (special tokens included).

- ``text_transformer``: a small pre-norm transformer trained from scratch (width 128 x
  ``model.width``, 4 blocks, 4 heads, learned positions, dropout 0.1, which is SimCSE's noise);
- ``pretrained``: a local BERT-family checkpoint folder (``--set model.pretrained=DIR``) loaded
  with ``transformers`` (``local_files_only``: nothing is downloaded); its architecture is kept in
  the encoder's metadata, so a saved encoder loads without the folder.

Padding never changes a text's embedding: attention ignores it and pooling leaves it out. So
:class:`TextEncoder` cuts the columns of padding after a batch's longest text (token views shorten
texts; a resumed or hand-made batch may be padded wider), and in eval mode embeds a large batch
in chunks of :data:`EVAL_CHUNK` texts of similar length, each cut to its own longest text: an
evaluation batch of 512 sentences is otherwise padded to its longest (on Rotten Tomatoes about 65
tokens, 2.4 times the mean of 27), and every padding token costs as much as a real one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .points import Block

EVAL_CHUNK = 64
"""Texts a backbone call embeds at once in eval mode (sorted by length first)."""


def trim_padding(ids: Tensor, pad_id: int) -> Tensor:
    """``ids`` (B, T) without the columns after the last non-padding token of every row."""
    if ids.shape[1] == 0:
        return ids
    keep = (ids != pad_id).any(0)
    t = int(torch.arange(1, ids.shape[1] + 1, device=ids.device)[keep].max()) if keep.any() else 1
    return ids[:, :t] if t < ids.shape[1] else ids


def mean_pool(h: Tensor, keep: Tensor) -> Tensor:
    """Mean of ``h`` (B, T, D) over the positions where ``keep`` (B, T) is true."""
    w = keep.to(h.dtype).unsqueeze(-1)
    return (h * w).sum(1) / w.sum(1).clamp_min(1)


class TextTransformer(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        pad_id: int,
        width: float = 1.0,
        depth: int = 4,
        heads: int = 4,
        max_len: int = 512,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        dim = max(heads * 8, int(128 * width) // heads * heads)
        self.tok = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.pos = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.out_dim = dim
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)

    def forward(self, ids: Tensor) -> Tensor:
        keep = ids != self.pad_id
        t = ids.shape[1]
        h = self.drop(self.tok(ids) + self.pos(torch.arange(t, device=ids.device)))
        for blk in self.blocks:
            h = blk(h, ~keep)
        return mean_pool(self.norm(h), keep)


class PretrainedText(nn.Module):
    """A ``transformers`` encoder from a local folder (weights) or its config (architecture)."""

    def __init__(self, config: dict, pad_id: int, folder: str | None = None) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        cfg = dict(config)
        model_type = cfg.pop("model_type")
        hf_cfg = AutoConfig.for_model(model_type, **cfg)
        if folder is not None:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no progress bar in the run's output
            self.model = AutoModel.from_pretrained(folder, local_files_only=True)
        else:
            self.model = AutoModel.from_config(hf_cfg)
        self.pad_id = pad_id
        self.out_dim = int(hf_cfg.hidden_size)

    def forward(self, ids: Tensor) -> Tensor:
        keep = ids != self.pad_id
        out = self.model(input_ids=ids, attention_mask=keep.long())
        return mean_pool(out.last_hidden_state, keep)


class TextEncoder(nn.Module):
    """The text encoder a method trains: the backbone on token ids (no input normalisation)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.out_dim: int = backbone.out_dim

    def forward(self, ids: Tensor) -> Tensor:
        pad = int(getattr(self.backbone, "pad_id", 0))
        ids = trim_padding(ids, pad)
        if self.training or len(ids) <= EVAL_CHUNK:
            return self.backbone(ids)
        # eval: no dropout, so chunks of similar length give the same features, with less padding
        pos = torch.arange(1, ids.shape[1] + 1, device=ids.device)
        length = ((ids != pad) * pos).amax(1)
        order = length.argsort(stable=True)
        parts = [
            self.backbone(trim_padding(ids[order[i : i + EVAL_CHUNK]], pad))
            for i in range(0, len(ids), EVAL_CHUNK)
        ]
        out = torch.cat(parts)
        return out[order.argsort()]


TEXT_BACKBONES = ("text_transformer", "pretrained")
