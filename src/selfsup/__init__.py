"""selfsup: self-supervised representation learning.

>>> import selfsup
>>> run = selfsup.train(method="simclr", data="digits", epochs=2)   # doctest: +SKIP
>>> encoder = selfsup.load_encoder(run.dir)                          # doctest: +SKIP
"""

from . import data, eval, losses, methods, models, views  # noqa: A004
from .api import Run, evaluate, load_encoder, train
from .config import Config
from .embedding import embed
from .errors import SelfSupError
from .exporting import export
from .finetuning import finetune, predict
from .pretrained import from_pretrained, save_pretrained

__version__ = "0.1.0"
__all__ = [
    "train",
    "evaluate",
    "load_encoder",
    "save_pretrained",
    "from_pretrained",
    "embed",
    "finetune",
    "predict",
    "export",
    "Run",
    "Config",
    "SelfSupError",
    "data",
    "eval",
    "losses",
    "methods",
    "models",
    "views",
    "__version__",
]
