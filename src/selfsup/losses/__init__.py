"""Objectives as pure functions of embeddings; stateful ones wrap their state in small modules."""

from .nt_xent import nt_xent

__all__ = ["nt_xent"]
