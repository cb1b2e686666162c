"""The instance decoder's maps of one image, from the predictor's current embedding.

The decoder reads the embedding that clicks use (``Predictor.get_image_embedding``), so maps
cost no second encoding, and a saved embedding gives them too. Both AIS and APG start here;
keep the maps to try other thresholds without running the decoder again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..weights.instance_decoder import require_instance_decoder

if TYPE_CHECKING:
    from ..modeling.instance_decoder import InstanceDecoder
    from ..modeling.workspace import Workspace
    from ..predictor import Predictor


@dataclass(frozen=True, eq=False)
class InstanceMaps:
    """The decoder's three sigmoid outputs at the image's size, each (H, W) float32:
    foreground probability, distance to the object's centre and to its boundary."""

    foreground: np.ndarray
    center_distances: np.ndarray
    boundary_distances: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.foreground.shape)  # type: ignore[return-value]


def predict_instance_maps(
    predictor: Predictor,
    decoder: InstanceDecoder | None = None,
    workspace: Workspace | None = None,
) -> InstanceMaps:
    """Run the instance decoder (default: the model's own) on the predictor's embedding.

    The decoder runs in the predictor's precision (``fp32``, or ``bf16``/``fp16`` where
    ``auto`` picks them), like the encoder. ``workspace``: the decoder's buffers, kept by a
    caller that decodes many embeddings in turn (``modeling.workspace``). ValueError when no
    image is set or the model has no decoder.
    """
    import torch

    from ..modeling.instance_decoder import maps_to_image

    if not predictor.is_image_set:
        raise ValueError("No image is set: call predictor.set_image(image) first.")
    decoder = decoder if decoder is not None else require_instance_decoder(predictor.model)
    device = decoder.device
    embedding = torch.as_tensor(predictor.get_image_embedding(), device=device)
    dtype = predictor.dtype if device == predictor.device else torch.float32
    with (
        torch.inference_mode(),
        torch.autocast(device.type, dtype, enabled=dtype != torch.float32),
    ):
        maps = decoder.eval()(embedding, workspace).float()
        maps = maps_to_image(
            maps, predictor.model.image_size, predictor.input_size, predictor.original_size
        )
    foreground, center, boundary = maps[0].cpu().numpy()
    return InstanceMaps(foreground, center, boundary)
