"""An image folder: ``ROOT/<class>/<image>`` (labels from the sorted folder names), or images
directly in ``ROOT`` (unlabelled). When ``ROOT`` holds ``train/`` and ``test/`` those are the
splits.

Only files with an image extension are read; other files are ignored. A folder that holds both
class sub-folders with images and images of its own is refused (which of them is the dataset?).
Every image is converted to RGB, or to grayscale when all of the images are single-channel (L,
I;16, 1, P of grays; float (F) images in [0, 1] are scaled to 0-255, other float ranges refused).
Images of mixed sizes are resized to ``image_size``, or by default to the most common size. File
names need not be UTF-8: they are read as bytes and shown with surrogate escapes.
An unreadable image stops loading with its name, unless ``skip_corrupt`` is set: then it is skipped
and counted in ``info['skipped']``.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ImageData, Splits

IMAGE_EXTENSIONS = {
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
    ".pgm",
}


def is_image_file(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def list_folder(
    root: Path, keep: Callable[[Path], bool] = is_image_file, what: str = "image"
) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """Files (those ``keep`` accepts) and labels of one split folder: ``ROOT/<class>/...`` or the
    files of ``ROOT`` itself, never both (one line names ``what`` the stray files are)."""
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    direct = sorted(p for p in root.iterdir() if keep(p))
    files: list[Path] = []
    labels: list[int] = []
    classes: list[str] = []
    for d in subdirs:
        found = sorted(p for p in d.rglob("*") if keep(p))
        if not found:
            continue
        classes.append(d.name)
        files += found
        labels += [len(classes) - 1] * len(found)
    if classes and direct:
        raise DataError(
            f"'{root}' holds both class folders "
            f"({', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''}) and {len(direct)} "
            f"{what}(s) of its own (e.g. '{direct[0].name}'); move those {what}s into a class "
            "folder, or remove them, so that it is clear which files are the dataset"
        )
    if classes:
        return files, labels, classes
    return direct, None, None


def _decode(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "F":  # 32-bit float: [0, 1] is scaled to 0-255; anything else is refused
                a = np.asarray(im, dtype=np.float64)
                lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
                if not (np.isfinite(lo) and np.isfinite(hi) and lo >= 0 and hi <= 1):
                    return ValueError(
                        f"a float image must hold values in [0, 1], this one holds {lo:g} .. {hi:g}"
                    )
                return Image.fromarray(np.round(a * 255.0).astype(np.uint8), mode="L")
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(im, dtype=np.float64)
                hi = a.max() if a.max() > 255 else 255.0
                arr = np.round(a * (255.0 / max(hi, 1.0))).clip(0, 255).astype(np.uint8)
                return Image.fromarray(arr, mode="L")
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            if im.mode in ("RGBA", "LA", "PA"):
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                bg.alpha_composite(im.convert("RGBA"))
                im = bg.convert("RGB")
            if im.mode not in ("L", "RGB"):
                im = im.convert("L" if im.mode == "1" else "RGB")
            return im.copy()
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
    ) as err:
        return err


def decode_files(files: list[Path], image_size: int | None, skip_corrupt: bool, where: str):
    images, keep, skipped = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, f in enumerate(files):
            im = _decode(f)
            if isinstance(im, Exception):
                if not skip_corrupt:
                    why = (
                        f"{type(im).__name__}: {im}"
                        if type(im) is ValueError and str(im)
                        else type(im).__name__
                    )
                    raise DataError(
                        f"cannot read image '{f}' ({why}); fix or remove "
                        "the file, or pass --skip-corrupt to skip unreadable images"
                    )
                skipped.append(str(f))
                continue
            images.append(im)
            keep.append(i)
    if not images:
        extra = f" ({len(skipped)} unreadable skipped)" if skipped else ""
        raise DataError(
            f"no readable images in '{where}'{extra}; expected ROOT/<class>/<image> or "
            "ROOT/<image> files"
        )
    gray = all(im.mode == "L" for im in images)
    if image_size is not None:
        size = (image_size, image_size)
    else:
        size = Counter(im.size for im in images).most_common(1)[0][0]
    out = np.empty((len(images), size[1], size[0], 1 if gray else 3), dtype=np.uint8)
    from PIL import Image

    for j, im in enumerate(images):
        if not gray and im.mode != "RGB":
            im = im.convert("RGB")
        if im.size != size:
            im = im.resize(size, Image.BILINEAR)
        a = np.asarray(im, dtype=np.uint8)
        out[j] = a[..., None] if gray else a
    return out, keep, skipped


def load_split(
    root: Path,
    image_size: int | None,
    skip_corrupt: bool,
    name: str,
    classes: list[str] | None = None,
) -> ImageData:
    files, labels, found = list_folder(root)
    if not files:
        raise DataError(
            f"folder '{root}' holds no images (extensions: "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}); expected ROOT/<class>/<image> or ROOT/<image>"
        )
    x, keep, skipped = decode_files(files, image_size, skip_corrupt, str(root))
    y = None
    if labels is not None:
        lab = np.asarray(labels, dtype=np.int64)[keep]
        if classes is not None and found is not None:  # align test labels with the train classes
            index = {c: i for i, c in enumerate(classes)}
            missing = [c for c in found if c not in index]
            if missing:
                raise DataError(
                    f"'{root}' has class folders not in the training split: {', '.join(missing)}"
                )
            lab = np.asarray([index[found[v]] for v in lab], dtype=np.int64)
            found = classes
        y = lab
    ids = [_rel(files[i], root) for i in keep]  # each image's file, relative to the split folder
    info = {"skipped": len(skipped), "skipped_files": skipped[:20], "ids": ids}
    return ImageData(x, y, found, name, info)


def _rel(path: Path, root: Path) -> str:
    return os.fsdecode(path.relative_to(root)).replace(os.sep, "/")


def load_folder(root: Path, image_size: int | None = None, skip_corrupt: bool = False) -> Splits:
    if (root / "train").is_dir() and (root / "test").is_dir():
        ignored = _check_split_root(root)
        train = load_split(root / "train", image_size, skip_corrupt, f"{root.name}/train")
        if ignored:
            train.info["ignored"] = ignored
        size = image_size or train.size
        test = load_split(root / "test", size, skip_corrupt, f"{root.name}/test", train.classes)
        if test.channels != train.channels:
            test = ImageData(
                _match_channels(test.x, train.channels), test.y, test.classes, test.name, test.info
            )
        return Splits(train, test)
    return Splits(load_split(root, image_size, skip_corrupt, root.name))


def _check_split_root(root: Path) -> list[str]:
    """A ``train/`` + ``test/`` root: loose images there are refused; the other image folders (which
    are ignored) are returned, and reported as a DataWarning by :func:`selfsup.data.load_source`."""
    loose = sorted(p for p in root.iterdir() if is_image_file(p))
    if loose:
        raise DataError(
            f"'{root}' holds train/ and test/ and also {len(loose)} image(s) of its own (e.g. "
            f"'{loose[0].name}'); move them into train/ or test/, or remove them"
        )
    other = sorted(
        d.name
        for d in root.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")
        and d.name not in ("train", "test")
        and any(is_image_file(p) for p in d.rglob("*"))
    )
    return other[:5] + (["..."] if len(other) > 5 else [])


def _match_channels(x: np.ndarray, c: int) -> np.ndarray:
    if c == 3:
        return np.repeat(x, 3, axis=3)
    return np.round(x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(
        np.uint8
    )[..., None]
