"""The parameters of a propagation, checked once before any plane is touched."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .projection import Projection, projection_named
from .prompts import MaskPrompts, prompts_from_mask

if TYPE_CHECKING:
    from ..predictor import Predictor

# micro-sam's annotator starts from these (its API's box_extension is 0, as segment_volume's):
# what the widget and the propagate command offer first.
ANNOTATOR_DEFAULTS: dict[str, Any] = {
    "projection": "single_point",
    "iou_threshold": 0.5,
    "box_extension": 0.05,
    "motion_smoothing": 0.5,
}


@dataclass(frozen=True)
class PropagationSettings:
    """projection: how a mask becomes the next plane's prompts; iou_threshold: a propagation
    away from the seeds stops where a mask's IoU with the previous one falls below it;
    box_extension: the box grows by this fraction of its size (below 1) or these many pixels
    (from 1 on)."""

    projection: Projection
    iou_threshold: float
    box_extension: float
    low_res_side: int = 256  # the model's mask-prompt grid; see for_model

    def for_model(self, predictor: Predictor) -> PropagationSettings:
        """These settings with the mask-prompt grid of ``predictor``'s model."""
        side = predictor.model.prompt_encoder.mask_input_size
        return replace(self, low_res_side=int(side[0]))

    def prompts(self, mask: np.ndarray, midpoint: bool = False) -> MaskPrompts:
        """The prompts for the next plane from ``mask`` (H, W) bool."""
        projection = self.midpoint_projection if midpoint else self.projection
        return prompts_from_mask(mask, projection, self.box_extension, self.low_res_side)

    @classmethod
    def checked(
        cls, projection: str, iou_threshold: float, box_extension: float
    ) -> PropagationSettings:
        if not _is_number(iou_threshold) or not 0.0 <= iou_threshold <= 1.0:
            raise ValueError(
                f"iou_threshold must be a number from 0 (never stop) to 1; got {iou_threshold!r}."
            )
        if not _is_number(box_extension) or box_extension < 0:
            raise ValueError(
                "box_extension must be 0 or more (a fraction of the box below 1, pixels from 1 "
                f"on); got {box_extension!r}."
            )
        return cls(projection_named(projection), float(iou_threshold), float(box_extension))

    @property
    def midpoint_projection(self) -> Projection:
        """The projection of a plane halfway between two seeds. micro-sam derives its prompts
        without its single-point switch, so ``single_point`` places all the distance map's
        points there, as ``points`` does; kept so results stay micro-sam's."""
        return replace(self.projection, single_point=False)


def check_motion_smoothing(value: float) -> float:
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise ValueError(
            "motion_smoothing must be from 0 (follow the last move) to 1 (keep the first "
            f"move); got {value!r}."
        )
    return float(value)


def flag_for(flag: bool | Mapping[int, bool], object_id: int) -> bool:
    """A stop flag for one object: the same for all, or looked up by id (absent: False)."""
    if isinstance(flag, Mapping):
        return bool(flag.get(object_id, False))
    return bool(flag)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
