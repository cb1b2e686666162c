"""``segment_instances``: every object of an image in one pass of the instance decoder.

:func:`iter_segment_instances` is a generator that yields ``(done, total)`` steps and returns
the labels; :func:`segment_instances` runs it to the end. Stop iterating (or ``close()`` the
generator) to cancel between two steps.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..imaging import to_uint8_rgb
from ..progress import ProgressCallback, drain
from .params import AisParams, ApgParams, params_from

if TYPE_CHECKING:
    from ..modeling.instance_decoder import InstanceDecoder
    from ..predictor import Predictor
    from ..tiling import TiledPredictor
    from .maps import InstanceMaps


def segment_instances(
    predictor: Predictor | TiledPredictor,
    image: np.ndarray | None = None,
    *,
    mode: str = "ais",
    decoder: InstanceDecoder | None = None,
    maps: InstanceMaps | None = None,
    contrast_limits: tuple[float, float] | None = None,
    tile_shape: int | tuple[int, int] | str | None = None,
    halo: int | tuple[int, int] | None = None,
    progress: ProgressCallback | None = None,
    **params: Any,
) -> np.ndarray:
    """(H, W) int32 labels of every object in ``image`` (or the predictor's current image);
    0 is background. See :func:`iter_segment_instances`; ``progress(done, total)`` is called
    after every step."""
    steps = iter_segment_instances(
        predictor, image, mode=mode, decoder=decoder, maps=maps,
        contrast_limits=contrast_limits, tile_shape=tile_shape, halo=halo, **params,
    )  # fmt: skip
    return drain(steps, progress)


def iter_segment_instances(
    predictor: Predictor | TiledPredictor,
    image: np.ndarray | None = None,
    *,
    mode: str = "ais",
    decoder: InstanceDecoder | None = None,
    maps: InstanceMaps | None = None,
    contrast_limits: tuple[float, float] | None = None,
    tile_shape: int | tuple[int, int] | str | None = None,
    halo: int | tuple[int, int] | None = None,
    **params: Any,
) -> Generator[tuple[int, int], None, np.ndarray]:
    """Segment instances with micro-sam's decoder; yields ``(done, total)``, returns labels.

    mode: ``ais`` (a watershed of the decoder's maps; a fraction of a second once the image
    is encoded) or ``apg`` (SAM decodes a point prompt from each seed of the maps).
    predictor: a :class:`~napari_segany.Predictor` whose model has an instance decoder, or
    any predictor with ``decoder=`` given. image: (H, W), (H, W, 3) or (H, W, 4), any dtype
    (converted as :func:`~napari_segany.to_uint8_rgb` does, with ``contrast_limits``) and
    encoded first; without one, the predictor's current embedding is used as it is (the one
    clicks use). maps: the decoder's maps of the current image, from an earlier
    :func:`~napari_segany.instances.predict_instance_maps`, to try other thresholds without
    running the decoder again.

    Large images (AIS): ``tile_shape``/``halo`` as :meth:`Predictor.set_image`'s (``"auto"``,
    a shape, or None for one resize), or a predictor whose image is already tiled (set with a
    tile shape, or a :class:`~napari_segany.tiling.TiledPredictor`). The decoder then runs on
    every tile (encoding those not encoded yet), the tiles' inner blocks are stitched and one
    watershed runs over the whole image, as micro-sam's tiled AIS does. APG needs one
    embedding of the whole image.

    params, with micro-sam 1.8.14's names and defaults (:mod:`.params`):

    - ``ais`` (``InstanceSegmentationWithDecoder.generate``): center_distance_threshold=0.5,
      boundary_distance_threshold=0.5, foreground_threshold=0.5, foreground_smoothing=1.0,
      distance_smoothing=1.6, min_size=0.
    - ``apg`` (``AutomaticPromptGenerator.generate``): min_size=25,
      center_distance_threshold=0.5, boundary_distance_threshold=0.5,
      foreground_threshold=0.5, multimasking=False, batch_size=32, nms_threshold=0.9,
      intersection_over_min=False, mask_threshold=None, refine_with_box_prompts=False.

    Bad parameters, a missing image and a model without a decoder are reported here, before
    the first step.
    """
    from ..tiling import TiledPredictor
    from ..weights.instance_decoder import require_instance_decoder

    settings = params_from(mode, params)
    holder = predictor.predictor if isinstance(predictor, TiledPredictor) else predictor
    if decoder is None and maps is None:
        require_instance_decoder(holder.model)
    if image is not None and maps is not None:
        raise ValueError("Give image or maps, not both: maps belong to an encoded image.")
    tiled = _tiled_for(predictor, image, contrast_limits, tile_shape, halo)
    if tiled is not None:
        if not isinstance(settings, AisParams):
            raise ValueError(
                "APG decodes its prompts on one embedding of the whole image, and this image "
                "is tiled: use mode='ais', or tile_shape=None to encode it whole."
            )
        if maps is not None and tuple(maps.shape) != tuple(tiled.original_size):
            raise ValueError(
                f"These maps are of a {maps.shape} image but the tiled image is "
                f"{tiled.original_size}: compute them again for this image."
            )
        return _tiled_ais(tiled, decoder, maps, settings)
    if isinstance(predictor, TiledPredictor):  # an image of one tile
        predictor = predictor.tile_predictor(0) if image is None else predictor.predictor
    rgb = None
    if image is not None:
        rgb = to_uint8_rgb(image, contrast_limits)
    elif not predictor.is_image_set:
        raise ValueError("No image: pass image=..., or call predictor.set_image(image) first.")
    if maps is not None and tuple(maps.shape) != tuple(predictor.original_size):
        raise ValueError(
            f"These maps are of a {maps.shape} image but the predictor's is "
            f"{predictor.original_size}: compute them again for this image."
        )
    if isinstance(settings, AisParams):
        return _ais(predictor, rgb, decoder, maps, settings)
    return _apg(predictor, rgb, decoder, maps, settings)


def _tiled_for(
    predictor: Predictor | TiledPredictor,
    image: np.ndarray | None,
    contrast_limits: tuple[float, float] | None,
    tile_shape: int | tuple[int, int] | str | None,
    halo: int | tuple[int, int] | None,
) -> TiledPredictor | None:
    """The tiles the work runs on, or None for an image encoded whole. A new image is cut into
    tiles here (nothing is encoded yet: the tiles are encoded as the steps run); one that fits
    a single tile is left to be encoded whole."""
    from ..tiling import TiledPredictor, TileGrid

    if isinstance(predictor, TiledPredictor):
        if image is not None:
            if tile_shape is None and halo is None:
                tile_shape = "auto"
            predictor.set_image(image, contrast_limits, tile_shape, halo)
        elif not predictor.is_image_set:
            raise ValueError("No image: pass image=..., or call tiled.set_image(image) first.")
        return predictor if predictor.grid.is_tiled else None
    if image is None:
        if tile_shape is not None or halo is not None:
            raise ValueError(
                "tile_shape and halo apply to a new image: pass image=..., or set the "
                "predictor's image with them (predictor.set_image(image, tile_shape=...))."
            )
        return predictor.tiled
    if tile_shape is None and halo is None:
        return None
    shape = (int(np.shape(image)[0]), int(np.shape(image)[1]))
    if not TileGrid.for_image(shape, tile_shape, halo, int(predictor.model.image_size)).is_tiled:
        return None
    # Set on the predictor itself, so that clicks afterwards reuse the tiles encoded here.
    predictor.set_image(image, contrast_limits, tile_shape=tile_shape, halo=halo)
    return predictor.tiled


def _tiled_ais(
    tiled: TiledPredictor,
    decoder: InstanceDecoder | None,
    maps: InstanceMaps | None,
    settings: AisParams,
) -> Generator[tuple[int, int], None, np.ndarray]:
    from .ais import watershed_instances
    from .tiled_maps import iter_tiled_instance_maps

    n = 0 if maps is not None else tiled.grid.n_tiles
    if maps is None:
        steps = iter_tiled_instance_maps(tiled, decoder)  # (0, n) first, then one per tile
        while True:
            try:
                done, _ = next(steps)
            except StopIteration as finished:
                maps = finished.value
                break
            yield done, n + 1
    else:
        yield 0, 1
    labels = watershed_instances(maps, settings)
    yield n + 1, n + 1
    return labels


def _ais(
    predictor: Predictor,
    rgb: np.ndarray | None,
    decoder: InstanceDecoder | None,
    maps: InstanceMaps | None,
    settings: AisParams,
) -> Generator[tuple[int, int], None, np.ndarray]:
    from .ais import watershed_instances

    total = (rgb is not None) + (maps is None) + 1
    done = 0
    yield done, total
    maps = yield from _maps(predictor, rgb, decoder, maps, total)
    labels = watershed_instances(maps, settings)
    yield total, total
    return labels


def _apg(
    predictor: Predictor,
    rgb: np.ndarray | None,
    decoder: InstanceDecoder | None,
    maps: InstanceMaps | None,
    settings: ApgParams,
) -> Generator[tuple[int, int], None, np.ndarray]:
    from .apg import iter_decode_prompts, mask_nms, paint, point_prompts, refinement_boxes

    before = (rgb is not None) + (maps is None)
    yield 0, before + 1
    maps = yield from _maps(predictor, rgb, decoder, maps, before + 1)
    points = point_prompts(maps, settings)
    rounds = 2 if settings.refine_with_box_prompts else 1
    batches = -(-len(points) // settings.batch_size)
    total = before + rounds * batches + 1
    yield before, total
    if len(points) == 0:
        yield total, total
        return np.zeros(maps.shape, dtype=np.int32)
    found = yield from _decoding(
        iter_decode_prompts(predictor, settings, points=points), before, settings, total
    )
    if settings.refine_with_box_prompts:
        boxes = refinement_boxes(found, maps.shape)
        steps = iter_decode_prompts(predictor, settings, boxes=boxes)
        found = yield from _decoding(steps, before + batches, settings, total)
    labels = paint(found, mask_nms(found, settings), maps.shape, settings.min_size)
    yield total, total
    return labels


def _decoding(steps, done_before: int, settings: ApgParams, total: int):
    """Re-yield a decoding generator's batches as overall steps; return its masks."""
    while True:
        try:
            decoded = next(steps)
        except StopIteration as finished:
            return finished.value
        yield done_before + -(-decoded // settings.batch_size), total


def _maps(
    predictor: Predictor,
    rgb: np.ndarray | None,
    decoder: InstanceDecoder | None,
    maps: InstanceMaps | None,
    total: int,
) -> Generator[tuple[int, int], None, InstanceMaps]:
    """Encode the image (when given) and run the decoder (unless ``maps`` are given)."""
    from .maps import predict_instance_maps

    done = 0
    if rgb is not None:
        predictor.set_image(rgb)
        done += 1
        yield done, total
    if maps is None:
        maps = predict_instance_maps(predictor, decoder)
        done += 1
        yield done, total
    return maps
