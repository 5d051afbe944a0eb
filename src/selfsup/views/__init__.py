"""View makers: batched augmentation on the training device, one module per modality."""

from .generator import GeneratedViews, register_generator
from .image import PRESETS, ImageViews, ViewSpec, choose_preset, eval_view, resolve_spec, seeded
from .multicrop import MultiCropViews
from .style import BatchStyle

__all__ = [
    "ImageViews",
    "MultiCropViews",
    "ViewSpec",
    "PRESETS",
    "choose_preset",
    "resolve_spec",
    "eval_view",
    "seeded",
    "BatchStyle",
    "GeneratedViews",
    "register_generator",
]
