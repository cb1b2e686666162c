"""Settings of instance segmentation from the decoder, the one place that defines them.

Names and defaults are micro-sam 1.8.14's: :class:`AisParams` those of
``InstanceSegmentationWithDecoder.generate`` (AIS: watershed of the decoder's maps) and
:class:`ApgParams` those of ``AutomaticPromptGenerator.generate`` (APG: a point prompt from
each seed of the maps, decoded by SAM). The API, the command line and the widget read them
here, with a :class:`~napari_segany.automatic.params.Setting` (label, help, range) each.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Any

from ..automatic.params import Setting, setting_field

MODES = ("ais", "apg")


def _center(default: float = 0.5) -> Any:
    return setting_field(
        default, "Centre distance <",
        "seeds lie where the predicted distance to an object's centre is below this", 0.0, 1.0,
        0.01,
    )  # fmt: skip


def _boundary(default: float = 0.5) -> Any:
    return setting_field(
        default, "Boundary distance <",
        "seeds lie where the predicted distance to an object's boundary is below this", 0.0,
        1.0, 0.01,
    )  # fmt: skip


def _foreground(default: float = 0.5) -> Any:
    return setting_field(
        default, "Foreground >",
        "pixels whose foreground probability is above this belong to objects", 0.0, 1.0, 0.01,
    )  # fmt: skip


@dataclass(frozen=True)
class AisParams:
    """Automatic instance segmentation: seeds where both distances are small, grown by a
    watershed over the boundary distances within the foreground."""

    center_distance_threshold: float = _center()
    boundary_distance_threshold: float = _boundary()
    foreground_threshold: float = _foreground()
    foreground_smoothing: float = setting_field(
        1.0, "Foreground smoothing",
        "Gaussian sigma (pixels) applied to the foreground map first (0: none)", 0.0, 10.0, 0.1,
    )  # fmt: skip
    distance_smoothing: float = setting_field(
        1.6, "Distance smoothing",
        "Gaussian sigma (pixels) applied to both distance maps first (0: none)", 0.0, 10.0, 0.1,
    )  # fmt: skip
    min_size: int = setting_field(
        0, "Min size", "objects of fewer pixels are removed (0: keep all)", 0, 1_000_000, 10,
    )  # fmt: skip

    def __post_init__(self) -> None:
        _check(self)


@dataclass(frozen=True)
class ApgParams:
    """Automatic prompt generation: one point at the centre of each seed of the maps,
    decoded by SAM; duplicates removed by mask NMS, small objects dropped."""

    min_size: int = setting_field(
        25, "Min size",
        "masks (and their pieces) of this many pixels or fewer are dropped", 0, 1_000_000, 5,
    )  # fmt: skip
    center_distance_threshold: float = _center()
    boundary_distance_threshold: float = _boundary()
    foreground_threshold: float = _foreground()
    multimasking: bool = setting_field(
        False, "Multimask",
        "decode three masks per point and keep the one SAM rates best", 0, 1, in_panel=False,
    )  # fmt: skip
    batch_size: int = setting_field(
        32, "Batch size", "points decoded at once (and between progress reports)", 1, 4096, 8,
        in_panel=False,
    )  # fmt: skip
    nms_threshold: float = setting_field(
        0.9, "Mask NMS IoU",
        "of two masks that overlap by more than this, keep the better one", 0.0, 1.0, 0.01,
    )  # fmt: skip
    intersection_over_min: bool = setting_field(
        False, "Intersection over min",
        "NMS measures overlap as intersection over the smaller mask instead of IoU", 0, 1,
        in_panel=False,
    )  # fmt: skip
    mask_threshold: float | None = setting_field(
        None, "Mask threshold",
        "logit above which a pixel is in a mask (default: the model's, 0)", -20.0, 20.0, 0.1,
        in_panel=False,
    )  # fmt: skip
    refine_with_box_prompts: bool = setting_field(
        False, "Refine with boxes",
        "decode a second time from each mask's box (1% larger)", 0, 1, in_panel=False,
    )  # fmt: skip

    def __post_init__(self) -> None:
        _check(self)


PARAMS: dict[str, type[AisParams] | type[ApgParams]] = {"ais": AisParams, "apg": ApgParams}


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(
            f"Unknown instance segmentation mode {mode!r}: use 'ais' (watershed of the "
            "decoder's maps, fastest) or 'apg' (SAM prompted from the decoder's seeds)."
        )
    return mode


def params_from(mode: str, params: dict[str, Any]) -> AisParams | ApgParams:
    """Validated settings of ``mode`` from keyword parameters; TypeError names unknown ones
    (and says when a parameter belongs to the other mode)."""
    cls = PARAMS[check_mode(mode)]
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(params) - names)
    if unknown:
        other = [m for m in MODES if m != mode][0]
        theirs = {f.name for f in fields(PARAMS[other])}
        hint = [n for n in unknown if n in theirs]
        extra = f" ({', '.join(hint)} belong to mode={other!r})" if hint else ""
        raise TypeError(
            f"Unknown {mode.upper()} parameter(s) {', '.join(unknown)}{extra}; the parameters "
            f"of mode={mode!r} are {', '.join(sorted(names))}."
        )
    return cls(**params)


def settings(mode: str) -> dict[str, Setting]:
    """What users see of each parameter of ``mode``, in the order the panel shows them."""
    return {f.name: f.metadata["setting"] for f in fields(PARAMS[check_mode(mode)])}


def defaults(mode: str) -> dict[str, Any]:
    return {f.name: f.default for f in fields(PARAMS[check_mode(mode)])}


def _check(params: AisParams | ApgParams) -> None:
    for f in fields(params):
        value, spec = getattr(params, f.name), f.metadata["setting"]
        if isinstance(f.default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{f.name} must be True or False, got {value!r}.")
        elif isinstance(f.default, int):
            integer = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            if not integer or value < spec.minimum:
                raise ValueError(
                    f"{f.name} must be an integer >= {int(spec.minimum)}, got {value!r}."
                )
        elif value is not None:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                if value == "auto":
                    raise ValueError(
                        f"{f.name}='auto' (micro-sam's local Otsu threshold) is not supported; "
                        "give a logit threshold, or None for the model's own."
                    )
                raise ValueError(f"{f.name} must be a number, got {value!r}.")
            if not math.isfinite(value) or (spec.minimum >= 0 and value < 0):
                raise ValueError(f"{f.name} must be a finite number >= 0, got {value!r}.")
