"""Finding a batch run's input files and reading them plane by plane (TIFF of any layout, PNG,
JPEG), with the contrast limits napari would give them."""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UnreadableImageError, first_line
from .summary import InputResult, failed_input

PathLike = str | os.PathLike
Inputs = PathLike | Sequence[PathLike]

TIFF_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = (*TIFF_SUFFIXES, ".png", ".jpg", ".jpeg")


# ---- finding inputs --------------------------------------------------------------------------


def find_inputs(
    inputs: Inputs, exclude: PathLike | None = None
) -> tuple[list[Path], list[InputResult]]:
    """Expand files, folders and glob patterns into image files, in the order given.

    Folders contribute their TIFF, PNG and JPEG files (sorted, not recursive) and patterns the
    matching ones (``**`` recurses); files named explicitly are kept whatever their suffix.
    Files inside ``exclude`` (the output folder) are left out of folders and patterns, so
    earlier outputs are never taken for inputs. Returns the files and a failed
    :class:`InputResult` for each argument that named nothing usable.
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    skip_under = Path(exclude).resolve() if exclude is not None else None
    found: list[Path] = []
    problems: list[InputResult] = []

    def images(candidates: list[Path]) -> list[Path]:
        keep = [p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if skip_under is not None:
            keep = [p for p in keep if not p.resolve().is_relative_to(skip_under)]
        return keep

    for item in items:
        text = os.fspath(item)
        path = Path(text).expanduser()
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            files = images(sorted(path.iterdir()))
            if not files:
                problems.append(failed_input(path, "the folder holds no TIFF, PNG or JPEG files"))
            found += files
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True))
            files = images(matches)
            if not files:
                what = "no files" if not matches else "no TIFF, PNG or JPEG files"
                problems.append(failed_input(path, f"the pattern matches {what}"))
            found += files
        else:
            problems.append(failed_input(path, "no such file or folder"))
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values()), problems


# ---- reading images --------------------------------------------------------------------------


@dataclass(frozen=True)
class ImagePlan:
    """How to read an input plane by plane.

    shape: leading axes + (H, W), the shape of its label image; rgb: planes are (H, W, C)
    colour; source: ``tiff-pages`` (plane i is page i of the first series, its colour axis at
    ``samples_axis`` of the page), ``tiff`` (the whole series is read, its axes moved by
    ``order``) or ``pil`` (one plane).
    """

    path: Path
    shape: tuple[int, ...]
    rgb: bool
    dtype: str
    source: str
    samples_axis: int | None = None
    order: tuple[int, ...] = ()

    @property
    def plane_shape(self) -> tuple[int, int]:
        return (self.shape[-2], self.shape[-1])

    @property
    def leading(self) -> tuple[int, ...]:
        return self.shape[:-2]

    @property
    def n_planes(self) -> int:
        return math.prod(self.leading)


def plan_image(path: PathLike) -> ImagePlan:
    """Look at an input's header: its planes and their layout. Raises UnreadableImageError."""
    path = Path(path)
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            plan = _plan_tiff(path)
        else:
            plan = _plan_pil(path)
    except UnreadableImageError:
        raise
    except Exception as exc:
        raise UnreadableImageError(_unreadable(path, exc)) from None
    if min(plan.shape) < 1:
        raise UnreadableImageError(f"Cannot segment {path.name}: it is empty (shape {plan.shape}).")
    return plan


def read_plane(plan: ImagePlan, index: int) -> np.ndarray:
    """Plane ``index`` (in C order over the leading axes): (H, W) or (H, W, C)."""
    try:
        if plan.source == "pil":
            plane = _read_pil(plan.path)
        elif plan.source == "tiff-pages":
            import tifffile

            plane = tifffile.imread(plan.path, series=0, key=index)
            if plan.samples_axis is not None:
                plane = np.moveaxis(plane, plan.samples_axis, -1)
        else:  # rare layouts: the whole series for each plane, simple rather than fast
            import tifffile

            data = np.transpose(tifffile.imread(plan.path, series=0), plan.order)
            tail = plan.plane_shape + ((data.shape[-1],) if plan.rgb else ())
            plane = data.reshape((-1, *tail))[index]
    except Exception as exc:
        raise UnreadableImageError(_unreadable(plan.path, exc)) from None
    expected = plan.plane_shape
    if tuple(plane.shape[:2]) != expected:
        raise UnreadableImageError(
            f"Cannot read plane {index} of {plan.path.name}: it has shape {plane.shape}, not "
            f"the {expected} announced by the file's header."
        )
    return plane


def _unreadable(path: Path, exc: BaseException) -> str:
    kind = "TIFF" if path.suffix.lower() in TIFF_SUFFIXES else "an image"
    detail = first_line(exc)
    hint = (
        "Check that the file is complete and really is a TIFF, PNG or JPEG image."
        if path.suffix.lower() in IMAGE_SUFFIXES
        else "Give TIFF (.tif, .tiff), PNG or JPEG files."
    )
    return f"Cannot read {path.name} as {kind} ({type(exc).__name__}: {detail}). {hint}"


def _plan_tiff(path: Path) -> ImagePlan:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise UnreadableImageError(f"{path.name} holds no image data.")
        series = tif.series[0]
        shape, axes, dtype = tuple(series.shape), series.axes, str(series.dtype)
        page = series.keyframe
        page_shape, page_axes = tuple(page.shape), page.axes
        n_pages = len(series.pages)
    if len(shape) < 2:
        raise UnreadableImageError(f"{path.name} is not an image: its data has shape {shape}.")

    samples = axes.index("S") if "S" in axes and shape[axes.index("S")] in (3, 4) else None
    # Y and X are the last two axes that are not samples; other samples (2, or more than 4
    # per pixel) are planes of their own.
    spatial = [i for i, a in enumerate(axes) if a != "S"][-2:]
    if len(spatial) < 2:
        raise UnreadableImageError(f"{path.name} is not a 2-D image: its axes are {axes}.")
    leading = [i for i in range(len(shape)) if i != samples and i not in spatial]
    plane_axes = [a for a in page_axes if a != "S" or samples is None]
    one_plane_per_page = (
        len(plane_axes) == 2
        and shape[len(shape) - len(page_shape) :] == page_shape
        and math.prod(shape[: len(shape) - len(page_shape)]) == n_pages
        and (samples is None or samples >= len(shape) - len(page_shape))
    )
    label_shape = tuple(shape[i] for i in (*leading, *spatial))
    if one_plane_per_page:
        page_samples = page_axes.index("S") if samples is not None else None
        return ImagePlan(path, label_shape, samples is not None, dtype, "tiff-pages", page_samples)
    order = (*leading, *spatial, *(() if samples is None else (samples,)))
    return ImagePlan(path, label_shape, samples is not None, dtype, "tiff", None, order)


_PIL_WIDE = {"I", "F", "I;16", "I;16L", "I;16B", "I;16N"}  # modes of more than 8 bits
_PIL_GRAY = {"1", "L", *_PIL_WIDE}


def _plan_pil(path: Path) -> ImagePlan:
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
        mode = image.mode
    rgb = mode not in _PIL_GRAY and mode != "LA"
    return ImagePlan(path, (height, width), rgb, mode, "pil")


def _read_pil(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        image.load()  # decode now, so a truncated file fails here with PIL's message
        if image.mode == "LA":
            return np.asarray(image)[..., 0]
        if image.mode not in _PIL_GRAY and image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.mode else "RGB")
        return np.asarray(image)


def napari_contrast_limits(plan: ImagePlan) -> tuple[float, float] | None:
    """The contrast limits napari gives a new layer of this input: None (identity) for uint8
    and bool, else (min, max) over all finite values, widened to (0, 1) for constant data."""
    if plan.dtype in ("uint8", "bool") or (plan.source == "pil" and plan.dtype not in _PIL_WIDE):
        return None  # 8-bit: napari shows 0-255
    lo, hi = math.inf, -math.inf
    for index in range(plan.n_planes):
        plane = read_plane(plan, index)
        finite = plane[np.isfinite(plane)] if plane.dtype.kind == "f" else plane
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    if lo > hi:
        return 0.0, 1.0
    if lo == hi:
        return min(lo, 0.0), max(hi, 1.0)
    return lo, hi
