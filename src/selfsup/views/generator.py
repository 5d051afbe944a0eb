"""A view maker whose views come from a user's callable (a generative model, a simulator, ...).

The plug-in contract::

    def my_views(x: Tensor, seed: int) -> list[Tensor]:
        '''x: the raw batch as floats on the training device (images: (N, C, H, W) in [0, 1]);
        seed: an int. Returns K views, each of x's shape (images: or (N, C, S, S) with S the run's
        view size), floating point, on the same device (images: values in [0, 1]). The same
        (x, seed) must give the same views.'''

Register it by name with :func:`register_generator` (``views.image.generator=NAME``), or name it as
``package.module:function`` or ``path/to/file.py:function`` in the config. The seed of each batch is
drawn from torch's global generator, which the trainer seeds from ``train.seed`` and stores in every
checkpoint, so a run with generated views is reproducible and resumes bit-identically as long as the
plug-in draws its randomness from ``torch.Generator(device=x.device).manual_seed(seed)``.

A plug-in that returns the wrong number of views, a wrong shape, a non-float dtype or another device
is refused with one :class:`~selfsup.errors.ConfigError` line. :meth:`GeneratedViews.check` runs it
once on two samples when the run is built, so such a plug-in fails before training starts.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

GeneratorFn = Callable[[Tensor, int], "list[Tensor] | tuple[Tensor, ...] | Tensor"]
GENERATORS: dict[str, GeneratorFn] = {}


def register_generator(name: str, fn: GeneratorFn) -> GeneratorFn:
    """Make ``fn`` available as ``views.image.generator=name`` (in this process)."""
    if not callable(fn):
        raise ConfigError(f"view generator '{name}' is not callable")
    GENERATORS[name] = fn
    return fn


def resolve_generator(spec: str | GeneratorFn) -> GeneratorFn:
    """A registered name, ``module:attr`` or ``file.py:attr`` -> the callable."""
    if callable(spec):
        return spec
    if spec in GENERATORS:
        return GENERATORS[spec]
    if ":" not in spec:
        known = ", ".join(sorted(GENERATORS)) or "none registered"
        raise ConfigError(
            f"views.image.generator '{spec}' is not a registered generator ({known}); give NAME, "
            "package.module:function or path/to/file.py:function"
        )
    where, attr = spec.rsplit(":", 1)
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise ConfigError(f"views.image.generator file '{where}' does not exist")
            s = importlib.util.spec_from_file_location(f"selfsup_generator_{path.stem}", path)
            mod = importlib.util.module_from_spec(s)
            s.loader.exec_module(mod)  # type: ignore[union-attr]
        else:
            mod = importlib.import_module(where)
    except ConfigError:
        raise
    # any failure to import the user's module is a config error
    except Exception as err:  # noqa: BLE001
        raise ConfigError(
            f"views.image.generator '{spec}' could not be imported ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''})"
        ) from None
    fn = getattr(mod, attr, None)
    if not callable(fn):
        raise ConfigError(
            f"views.image.generator '{spec}': '{attr}' is not a callable of '{where}'"
        )
    return fn


class GeneratedViews(nn.Module):
    """``n_views`` views of each batch from ``fn(x, seed)``, checked (and, for images, resized to
    the view size ``size``). Any modality: a view must have the batch's shape, or (N, C, size,
    size)."""

    def __init__(
        self,
        fn: GeneratorFn | str,
        size: int | None = None,
        n_views: int = 2,
        name: str | None = None,
    ):
        super().__init__()
        self.fn = resolve_generator(fn)
        self.name = name or (fn if isinstance(fn, str) else getattr(fn, "__name__", "generator"))
        self.size, self.n_views = size, n_views

    def _check(self, out: object, x: Tensor) -> list[Tensor]:
        what = f"views.image.generator '{self.name}'"
        shapes = [tuple(x.shape)]
        if self.size is not None and x.ndim == 4:
            shapes.append((*x.shape[:2], self.size, self.size))
        views = list(out.unbind(0)) if isinstance(out, Tensor) and out.ndim == x.ndim + 1 else out
        if not isinstance(views, (list, tuple)) or not all(isinstance(v, Tensor) for v in views):
            raise ConfigError(
                f"{what} must return a list of tensors (or one (K, N, C, H, W) tensor), "
                f"got {type(out).__name__}"
            )
        if len(views) < self.n_views:
            raise ConfigError(
                f"{what} returned {len(views)} view(s); views.n_views asks for {self.n_views}"
            )
        good = []
        for v in views[: self.n_views]:
            if not v.is_floating_point():
                raise ConfigError(
                    f"{what} returned a view of dtype {v.dtype}; it must return "
                    "float images in [0, 1]"
                )
            if v.device != x.device:
                raise ConfigError(
                    f"{what} returned a view on {v.device}; the batch is on {x.device}"
                )
            if tuple(v.shape) not in shapes:
                raise ConfigError(
                    f"{what} returned a view of shape {tuple(v.shape)}; expected "
                    f"{' or '.join(str(s) for s in dict.fromkeys(shapes))}"
                )
            v = v.float()
            if (
                len(shapes) > 1 and tuple(v.shape) != shapes[1]
            ):  # images at the data size -> the view size
                v = F.interpolate(
                    v,
                    size=shapes[1][2:],
                    mode="bilinear",
                    align_corners=False,
                    antialias=shapes[1][2] < x.shape[2],
                )
            good.append(v)
        return good

    @torch.no_grad()
    def forward(self, x: Tensor) -> list[Tensor]:
        """``x``: a raw batch (uint8 images or float series). The seed comes from torch's global
        generator."""
        seed = int(torch.randint(0, 2**31 - 1, ()))
        return self._check(self.fn(_as_float(x), seed), x)

    @torch.no_grad()
    def check(self, x: Tensor) -> None:
        """Run the plug-in once on (up to) two samples of ``x`` and validate what it returns; leaves
        torch's global generator as it was."""
        with torch.random.fork_rng(devices=[]):
            self._check(self.fn(_as_float(x[:2]), 0), x[:2])


def _as_float(x: Tensor) -> Tensor:
    """uint8 images -> float in [0, 1]; float data as it is."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
