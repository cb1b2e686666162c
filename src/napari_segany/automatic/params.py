"""Settings of segment-everything, the one place that defines them: names, defaults, what each
means, the range a user may pick from, and named presets.

The API (:class:`AutomaticParams`), the command line (``--points-per-side`` ...) and the
widget's panel all read this module, so a setting's help and range are written once.
Names and defaults are the reference ``segment_anything.SamAutomaticMaskGenerator``'s (tuned
there for vit_h), with coordinates in (row, col).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .geometry import layer_point_grids


@dataclass(frozen=True)
class Setting:
    """What users see of one parameter: a short label, help text, and its range and step.

    in_panel: shown in the widget's panel (the others are for scripts and the command line).
    """

    label: str
    help: str
    minimum: float
    maximum: float
    step: float = 1
    in_panel: bool = True


def setting_field(default: Any, *args: Any, **kwargs: Any) -> Any:
    """A dataclass field with its :class:`Setting` (what users see of it) as metadata."""
    return field(default=default, metadata={"setting": Setting(*args, **kwargs)})


@dataclass(frozen=True)
class AutomaticParams:
    """Settings of segment-everything (see each field's ``Setting`` for what it means).

    point_grids: explicit grids, one per crop layer, each an (N, 2) array of (row, col)
    fractions of the crop's height and width in [0, 1]; replaces points_per_side. (The
    reference takes (x, y) here.)
    """

    points_per_side: int | None = setting_field(
        32, "Points per side",
        "grid of N x N point prompts; more finds smaller objects, slower", 1, 256,
    )  # fmt: skip
    points_per_batch: int = setting_field(
        64, "Points per batch",
        "points decoded between two progress reports; lower it if memory runs short", 1, 4096, 8,
    )  # fmt: skip
    pred_iou_thresh: float = setting_field(
        0.88, "Predicted IoU >",
        "keep masks SAM itself rates better than this (0: no filter)", 0.0, 1.0, 0.01,
    )  # fmt: skip
    stability_score_thresh: float = setting_field(
        0.95, "Stability ≥",
        "keep masks that barely change when the threshold moves (0: no filter)", 0.0, 1.0, 0.01,
    )  # fmt: skip
    stability_score_offset: float = setting_field(
        1.0, "Stability offset",
        "the stability score is the IoU of the mask thresholded at +offset and -offset logits",
        0.0, 10.0, 0.1, in_panel=False,
    )  # fmt: skip
    box_nms_thresh: float = setting_field(
        0.7, "Box NMS IoU",
        "of two masks whose boxes overlap by more than this IoU, keep the better one "
        "(1: keep all)", 0.0, 1.0, 0.01,
    )  # fmt: skip
    crop_n_layers: int = setting_field(
        0, "Crop layers",
        "also segment zoomed crops, (2^i)² of them in layer i: finds small objects, slower",
        0, 4,
    )  # fmt: skip
    crop_nms_thresh: float = setting_field(
        0.7, "Crop NMS IoU",
        "box IoU above which masks from different crops are duplicates (the smaller crop's stays)",
        0.0, 1.0, 0.01, in_panel=False,
    )  # fmt: skip
    crop_overlap_ratio: float = setting_field(
        512 / 1500, "Crop overlap",
        "overlap of neighbouring crops in layer 1, as a fraction of the image's short side",
        0.0, 0.99, 0.01, in_panel=False,
    )  # fmt: skip
    crop_n_points_downscale_factor: int = setting_field(
        1, "Crop points downscale",
        "crop layer i gets points_per_side / factor^i points a side", 1, 16, in_panel=False,
    )  # fmt: skip
    point_grids: tuple[tuple[tuple[float, float], ...], ...] | None = field(default=None)
    min_mask_region_area: int = setting_field(
        0, "Min region area",
        "fill holes and remove islands smaller than this many pixels, then drop new "
        "duplicates (0: off)", 0, 1_000_000, 10,
    )  # fmt: skip

    def __post_init__(self) -> None:
        for name, value in self.as_dict().items():
            spec = SETTINGS.get(name)
            if spec is None or value is None:
                continue
            if isinstance(_DEFAULTS[name], int):
                _check_int(name, value, int(spec.minimum))
            else:
                _check_number(name, value, spec)
        if self.point_grids is not None:
            object.__setattr__(self, "point_grids", _normalised_grids(self.point_grids))
            if len(self.point_grids) < self.crop_n_layers + 1:
                raise ValueError(
                    f"point_grids has {len(self.point_grids)} grid(s) but crop_n_layers="
                    f"{self.crop_n_layers} needs one per layer, {self.crop_n_layers + 1} in all."
                )
        elif self.points_per_side is None:
            raise ValueError("Give points_per_side or point_grids: there are no points to use.")
        else:
            layer_point_grids(  # raises when a layer would get no points
                self.points_per_side, self.crop_n_layers, self.crop_n_points_downscale_factor
            )

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def layer_grids(self) -> list[np.ndarray]:
        """One (N, 2) array of (row, col) fractions per crop layer."""
        if self.point_grids is not None:
            return [np.array(g, dtype=np.float64).reshape(-1, 2) for g in self.point_grids]
        return layer_point_grids(
            self.points_per_side, self.crop_n_layers, self.crop_n_points_downscale_factor
        )


SETTINGS: dict[str, Setting] = {
    f.name: f.metadata["setting"] for f in fields(AutomaticParams) if "setting" in f.metadata
}
"""Every parameter a user sets by name, in the order the command line and panel show them."""
_DEFAULTS = {f.name: f.default for f in fields(AutomaticParams)}

# Named sets of parameters; those not named keep their defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "Default (reference SAM)": {},
    "Fast (16 x 16 points)": {
        "points_per_side": 16, "pred_iou_thresh": 0.86, "stability_score_thresh": 0.92,
    },
    "Small objects (1 crop layer)": {
        "pred_iou_thresh": 0.86, "stability_score_thresh": 0.92, "crop_n_layers": 1,
        "min_mask_region_area": 25,
    },
}  # fmt: skip


def defaults() -> dict[str, Any]:
    """The default value of every parameter in :data:`SETTINGS`."""
    return {name: _DEFAULTS[name] for name in SETTINGS}


def preset(name: str) -> dict[str, Any]:
    """Every parameter of :data:`SETTINGS` as preset ``name`` sets it."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}: use one of {', '.join(map(repr, PRESETS))}.")
    return {**defaults(), **PRESETS[name]}


def settings_from(params: dict[str, Any]) -> AutomaticParams:
    """Validated settings from keyword parameters; TypeError names unknown ones."""
    names = {f.name for f in fields(AutomaticParams)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise TypeError(
            f"Unknown segment-everything parameter(s) {', '.join(unknown)}; the parameters are "
            f"{', '.join(sorted(names))}."
        )
    return AutomaticParams(**params)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def _check_number(name: str, value: Any, spec: Setting) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    if name == "crop_overlap_ratio" and not 0.0 <= value < 1.0:
        raise ValueError(f"crop_overlap_ratio must be in [0, 1), got {value!r}.")


def _normalised_grids(grids: Any) -> tuple[tuple[tuple[float, float], ...], ...]:
    """Sequence of (N, 2) arrays -> nested tuples (hashable, so params compare by value)."""
    out = []
    for i, grid in enumerate(grids):
        points = np.asarray(grid, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
            raise ValueError(
                f"point_grids[{i}] must be a non-empty (N, 2) array of (row, col) fractions; "
                f"got shape {points.shape}."
            )
        if not np.all(np.isfinite(points)) or points.min() < 0 or points.max() > 1:
            raise ValueError(
                f"point_grids[{i}] must hold fractions of the crop size in [0, 1] as (row, col)."
            )
        out.append(tuple((float(r), float(c)) for r, c in points))
    return tuple(out)
