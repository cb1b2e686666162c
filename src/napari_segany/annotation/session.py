"""The model side of interactive annotation: one model, its predictor and cached embeddings.

Plain Python, no Qt: the widget calls these methods on a worker thread, one at a time. The
session alone owns the model, the device and the precision; the widget shows them and asks
for changes through :meth:`InteractiveSession.select`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Hashable
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal

from ..embeddings import (
    EmbeddingCache,
    EmbeddingKey,
    EmbeddingStore,
    ImageEmbedding,
    plane_embedding_key,
)
from ..predictor import Predictor
from ..progress import ProgressCallback, drain
from .prediction import Prediction
from .tiled_slices import TiledSlices, tiled_prediction

if TYPE_CHECKING:
    from ..automatic import MaskRecord
    from ..tiling import TiledMaskRecord, TiledPredictor

Notify = Callable[[str], None]
GPU_FALLBACK_NOTICE = "The GPU ran out of memory; continuing on the CPU (slower)."


class InteractiveSession:
    """Loads a model on demand, encodes slices once, and decodes prompts against them."""

    device_changed = Signal(str)
    """The session moved to another device by itself (the GPU ran out of memory)."""

    def __init__(
        self, cache: EmbeddingCache | None = None, store: EmbeddingStore | None = None
    ) -> None:
        self.cache = cache or EmbeddingCache()
        # Embeddings precomputed on disk (``napari-segany embed``) are used instead of encoding.
        self.store = store if store is not None else EmbeddingStore()
        self.last_from_store = False
        self.model_name: str | None = None
        self.device: str = "auto"
        self.precision: str = "auto"
        self.predictor: Predictor | None = None
        self._current_key: EmbeddingKey | None = None
        self.last_encode_seconds: float | None = None
        # Slices larger than about 1.5 times the model's input are tiled.
        self.tiled = TiledSlices("auto")

    # ---- model -----------------------------------------------------------------------------

    def select(self, model_name: str, device: str = "auto", precision: str = "auto") -> bool:
        """Choose the model, device and encoder precision; loading happens at the next use.
        Returns whether anything changed (a change drops the loaded model)."""
        if (model_name, device, precision) == (self.model_name, self.device, self.precision):
            return False
        self.model_name, self.device, self.precision = model_name, device, precision
        self.predictor = None
        self._current_key = None
        self.tiled.clear()
        return True

    @property
    def device_in_use(self) -> str | None:
        return None if self.predictor is None else str(self.predictor.device)

    def precision_in_use(self) -> str:
        """What the encoder runs in with the chosen precision on the chosen device (``auto``
        resolved for this machine): ``fp32``, ``bf16`` or ``fp16``."""
        if self.predictor is not None:
            return self.predictor.precision_name
        from ..devices import resolve_device
        from ..precision import resolved_precision_name

        return resolved_precision_name(self.precision, resolve_device(self.device))

    def ensure_model(self, progress: ProgressCallback | None = None) -> Predictor:
        """Load the chosen model if it is not loaded yet (downloading it when needed)."""
        if self.predictor is None:
            if self.model_name is None:
                raise ValueError("No model chosen: pick one in the model list.")
            from ..weights.loading import load_model

            model = load_model(self.model_name, self.device, progress=progress)
            self.predictor = Predictor(model, precision=self.precision)
            self._current_key = None
        return self.predictor

    # ---- embeddings -----------------------------------------------------------------------

    def key(self, source: Hashable, slice_key: tuple, contrast: tuple | None) -> EmbeddingKey:
        """Cache key of one slice of one image as seen through the current model.

        source names the image and the version of its pixels (e.g. (layer id, data version)),
        so that all of an image's embeddings can be dropped at once; the precision is what
        the encoder really runs in on this machine, not ``auto``.
        """
        return (source, tuple(slice_key), self.model_name, self.precision_in_use(), contrast)

    def has_embedding(self, key: EmbeddingKey) -> bool:
        """Whether the slice is encoded, or tiled (its tiles are encoded as prompts need them)."""
        return key in self.cache or key in self.tiled

    def tiled_status(self, key: EmbeddingKey) -> str | None:
        """``tiled 4 x 5, 3 tiles encoded`` for a tiled slice, None for an untiled one."""
        tiled = self.tiled.get(key)
        return None if tiled is None else tiled.status()

    def encode_tiles(
        self,
        key: EmbeddingKey,
        progress: ProgressCallback | None = None,
        encode_progress: ProgressCallback | None = None,
    ) -> int:
        """Encode every tile of a tiled slice not encoded yet, saving each into the embedding
        store (so that memory stays bounded and later sessions find them); returns how many.

        progress: ``(done, total)`` tiles; encode_progress: of each tile's encoder blocks
        (raising from either stops between two blocks).
        """
        tiled = self.tiled.get(key)
        if tiled is None:
            raise KeyError(f"Slice {key!r} is not tiled; encode it first.")
        steps = tiled.iter_encode_tiles()
        stored = tiled.embeddings  # a StoredTileEmbeddings: TiledSlices.prepare backs every one
        tiled.encode_progress = encode_progress
        clicks_write, stored.write = stored.write, True
        try:
            return drain(steps, progress)
        finally:
            steps.close()
            tiled.encode_progress = None
            stored.write = clicks_write

    def drop_where(self, stale: Callable[[EmbeddingKey], bool]) -> None:
        """Forget the embeddings and tiled slices whose keys ``stale(key)`` is true of."""
        self.cache.drop_where(stale)
        self.tiled.drop_where(stale)

    def encode(
        self,
        key: EmbeddingKey,
        image: np.ndarray,
        contrast_limits: tuple[float, float] | None,
        progress: ProgressCallback | None = None,
        notify: Notify | None = None,
        encode_progress: ProgressCallback | None = None,
        tiles: bool = False,
    ) -> ImageEmbedding | None:
        """Encode one 2-D slice (unless cached) and make it the current image.

        progress: of a model download, if one is needed; encode_progress: of the encoder's
        blocks (raising from it stops the encoder between two blocks). tiles: a slice large
        enough to be tiled is only cut into tiles (and None returned), each tile encoded when
        a prompt needs it; without, every slice is encoded whole (what work on the whole
        embedding needs).
        """
        cached = self.cache.get(key)
        if cached is not None:
            self.activate(key)
            return cached
        if tiles and key in self.tiled:
            return None
        predictor = self.ensure_model(progress)
        start = time.perf_counter()
        tiled = None
        if tiles:
            tiled = self.tiled.prepare(
                key, image, contrast_limits, predictor, self.store, self.model_name
            )
        if tiled is not None:
            self.last_from_store, self.last_encode_seconds = False, None
            return None
        stored = self._from_store(image, contrast_limits)
        self.last_from_store = stored is not None
        if stored is not None:
            predictor.set_image_embedding(stored.features, stored.original_size)
        else:
            self._with_gpu_fallback(
                lambda: self.predictor.set_image(image, contrast_limits, encode_progress), notify
            )
        self.last_encode_seconds = time.perf_counter() - start
        embedding = self.predictor.get_embedding_state()
        self.cache.put(key, embedding)
        self._current_key = key
        return embedding

    def _from_store(
        self, image: np.ndarray, contrast_limits: tuple[float, float] | None
    ) -> ImageEmbedding | None:
        """A precomputed embedding of exactly this plane, model and precision, if on disk."""
        if not self.store.folder.is_dir() or not any(self.store.folder.glob("*.npz")):
            return None  # nothing precomputed: skip hashing the image and the checkpoint
        key = plane_embedding_key(
            image, contrast_limits, self.model_name, self.predictor.precision_name
        )
        found = self.store.load(key)
        expected = (int(image.shape[0]), int(image.shape[1]))
        return found if found is not None and tuple(found.original_size) == expected else None

    def activate(self, key: EmbeddingKey) -> None:
        """Make a cached embedding the predictor's current image (no encoding)."""
        if key == self._current_key and self.predictor is not None:
            return
        embedding = self.cache.get(key)
        if embedding is None:
            raise KeyError(f"No embedding cached for {key!r}; encode the slice first.")
        predictor = self.ensure_model()
        predictor.set_image_embedding(embedding.features, embedding.original_size)
        self._current_key = key

    def image_replaced(self) -> None:
        """Other work (a propagation through a stack) set the predictor's image: the next
        decode activates its slice's embedding again."""
        self._current_key = None

    # ---- prompts --------------------------------------------------------------------------

    def predict(
        self,
        key: EmbeddingKey,
        points: np.ndarray | None,
        labels: np.ndarray | None,
        boxes: np.ndarray | None,
        notify: Notify | None = None,
        encode_progress: ProgressCallback | None = None,
    ) -> Prediction:
        """Decode prompts on an encoded slice.

        A single click is ambiguous, so it gets SAM's 3 candidates; several clicks or boxes
        get one mask each. points: (N, 2) (row, col), labels (N,), boxes (K, 4).
        On a tiled slice the tiles the prompts need are encoded first (encode_progress: of the
        encoder's blocks; raising from it stops between two).
        """
        has_points = points is not None and len(points) > 0
        has_boxes = boxes is not None and len(boxes) > 0
        multimask = has_points and not has_boxes and len(points) == 1
        tiled = self.tiled.get(key)
        if tiled is not None:
            tiled.encode_progress = encode_progress
            try:
                return self._with_gpu_fallback(
                    lambda: tiled_prediction(
                        tiled, points if has_points else None, labels if has_points else None,
                        boxes if has_boxes else None, multimask,
                    ),
                    notify,
                )  # fmt: skip
            finally:
                tiled.encode_progress = None
        self.activate(key)
        masks, scores, _ = self._with_gpu_fallback(
            lambda: self.predictor.predict(
                points if has_points else None,
                labels if has_points else None,
                box=np.asarray(boxes).reshape(-1, 4) if has_boxes else None,
                multimask=multimask,
            ),
            notify,
        )
        if not has_boxes:
            masks, scores = masks[None], scores[None]
        return Prediction.from_masks(masks, scores, multimask)

    def iter_segment_everything(
        self,
        key: EmbeddingKey,
        image: np.ndarray,
        contrast_limits: tuple[float, float] | None,
        params: dict[str, Any],
        encode_progress: ProgressCallback | None = None,
    ) -> Generator[tuple[int, int], None, list[MaskRecord] | list[TiledMaskRecord]]:
        """Segment everything on one slice; yields (done, total) and returns the masks.

        A slice large enough to be tiled is segmented tile by tile (its records' masks cover
        their boxes only); its tiles already encoded by clicks, or held by the store, are
        reused. Otherwise the slice's cached embedding is reused, and crops encode their own
        images. encode_progress: of a tile's encoder blocks (raising from it stops there).
        """
        from ..automatic import iter_generate_masks

        predictor = self.ensure_model()
        if int(params.get("crop_n_layers", 0)) == 0:
            tiled = self.tiled.prepare(
                key, image, contrast_limits, predictor, self.store, self.model_name
            )
            if tiled is not None:
                from ..tiling import iter_generate_tiled_masks

                steps = iter_generate_tiled_masks(tiled, **params)
                return (yield from _reporting_encodes(tiled, encode_progress, steps))
            self.encode(key, image, contrast_limits, encode_progress=encode_progress)
            return (yield from iter_generate_masks(self.predictor, None, **params))
        self._current_key = None  # every crop replaces the predictor's image
        return (
            yield from iter_generate_masks(
                predictor, image, contrast_limits=contrast_limits, **params
            )
        )

    def iter_segment_instances(
        self,
        key: EmbeddingKey,
        image: np.ndarray,
        contrast_limits: tuple[float, float] | None,
        mode: str,
        params: dict[str, Any],
        notify: Notify | None = None,
        encode_progress: ProgressCallback | None = None,
    ) -> Generator[tuple[int, int], None, np.ndarray]:
        """Segment instances (``ais`` or ``apg``) with the model's decoder on one slice; yields
        (done, total) and returns the (H, W) int32 labels.

        AIS on a slice large enough to be tiled runs the decoder tile by tile (reusing the
        tiles clicks encoded) and one watershed; APG and smaller slices use the slice's
        embedding, encoded whole unless cached. A model without a decoder is refused before
        anything is encoded.
        """
        from ..instances import iter_segment_instances
        from ..weights.instance_decoder import require_instance_decoder

        predictor = self.ensure_model()
        require_instance_decoder(predictor.model)
        if mode == "ais":
            tiled = self.tiled.prepare(
                key, image, contrast_limits, predictor, self.store, self.model_name
            )
            if tiled is not None:
                steps = iter_segment_instances(tiled, mode=mode, **params)
                return (yield from _reporting_encodes(tiled, encode_progress, steps))
        self.encode(key, image, contrast_limits, notify=notify, encode_progress=encode_progress)
        return (yield from iter_segment_instances(self.predictor, mode=mode, **params))

    def _with_gpu_fallback(self, work: Callable, notify: Notify | None):
        """Run ``work``; if the GPU runs out of memory, move to the CPU for good and retry.

        The session stays on the CPU until the user picks a device again; ``device_changed``
        tells the widget so that its device picker shows it.
        """
        import torch

        try:
            return work()
        except torch.cuda.OutOfMemoryError:
            if self.predictor is None or self.predictor.device.type == "cpu":
                raise
            self.predictor.model.to("cpu")
            self.predictor.reset_image()
            if self._current_key is not None:
                key, self._current_key = self._current_key, None
                if key in self.cache:
                    self.activate(key)
            self.device = "cpu"
            torch.cuda.empty_cache()
            self.device_changed.emit("cpu")
            if notify is not None:
                notify(GPU_FALLBACK_NOTICE)
            return work()


def _reporting_encodes(
    tiled: TiledPredictor, encode_progress: ProgressCallback | None, steps: Generator
) -> Generator:
    """Run ``steps`` (work on ``tiled``) with its tiles' encodings reporting to
    ``encode_progress``; the tiled slice reports to nobody once they end or are closed."""
    tiled.encode_progress = encode_progress
    try:
        return (yield from steps)
    finally:
        tiled.encode_progress = None
