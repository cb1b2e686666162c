"""Interactive prediction: one image embedding, then masks for any number of prompts.

Numpy in, numpy out. Coordinates follow napari: points are (row, col) and boxes are
(min_row, min_col, max_row, max_col) in the image's pixel coordinates, where pixel (r, c)
covers [r - 0.5, r + 0.5] x [c - 0.5, c + 0.5].
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .imaging import to_uint8_rgb
from .precision import resolve_precision
from .prompts import inside_image
from .transforms import resize_longest_side, resized_shape, rowcol_to_model_xy

if TYPE_CHECKING:
    import torch

    from .folded_decoder import FoldedDecoder
    from .modeling import Sam


@dataclass(frozen=True)
class ImageEmbedding:
    """What :meth:`Predictor.set_image` computes, enough to resume without re-encoding.

    features: (1, C, h, w) float32; original_size: the image's (H, W).
    """

    features: np.ndarray
    original_size: tuple[int, int]


class Predictor:
    """Encode an image once with :meth:`set_image`, then :meth:`predict` masks for prompts.

    precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` for the image encoder (see
    :mod:`napari_segany.precision`); compile_encoder: run the encoder through
    ``torch.compile`` (worth it on a GPU for many images; the first image pays the compile).
    """

    def __init__(self, model: Sam, precision: str = "auto", compile_encoder: bool = False) -> None:
        self.model = model.eval()
        self.precision = precision
        resolve_precision(precision, self.device)  # fail early on a bad name
        self._encoder = model.image_encoder
        self._compiled = compile_encoder
        if compile_encoder:
            import torch

            self._encoder = torch.compile(model.image_encoder)
        self._features: torch.Tensor | None = None
        self._dense_pe: torch.Tensor | None = None
        self._folded: FoldedDecoder | None = None  # of the current image, made at 1st click
        self.original_size: tuple[int, int] | None = None
        self.input_size: tuple[int, int] | None = None
        self.encode_seconds: float | None = None

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the image encoder runs in on the model's current device."""
        return resolve_precision(self.precision, self.device)

    @property
    def is_image_set(self) -> bool:
        return self._features is not None

    def reset_image(self) -> None:
        """Forget the current image and its embedding."""
        self._features = None
        self._folded = None
        self.original_size = None
        self.input_size = None

    # ---- image -----------------------------------------------------------------------------

    def set_image(
        self,
        image: np.ndarray,
        contrast_limits: tuple[float, float] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Run the image encoder on ``image`` and keep its embedding.

        image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), any real dtype; converted with
        :func:`napari_segany.imaging.to_uint8_rgb` (see there for the intensity rule).
        progress: called as ``progress(done, total)`` before the encoder's first block and after
        each block.
        """
        import torch

        rgb = to_uint8_rgb(image, contrast_limits)
        start = time.perf_counter()
        resized = resize_longest_side(rgb, self.model.image_size)
        pixels = torch.as_tensor(resized, device=self.device).permute(2, 0, 1)[None].float()
        dtype = self.dtype
        reduced = dtype != torch.float32
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype, enabled=reduced),
            # Hooks would break a compiled encoder's graph.
            _reporting_blocks(self.model.image_encoder, None if self._compiled else progress),
        ):
            features = self._encoder(self.model.preprocess(pixels))
        self._features = features.float()
        self._folded = None
        self.original_size = (int(rgb.shape[0]), int(rgb.shape[1]))
        self.input_size = (int(resized.shape[0]), int(resized.shape[1]))
        self.encode_seconds = time.perf_counter() - start

    @property
    def features(self) -> torch.Tensor:
        """The current embedding as a (1, C, h, w) tensor on the model's device (read only)."""
        self._require_image()
        return self._features

    def get_image_embedding(self) -> np.ndarray:
        """The current embedding as a (1, C, h, w) float32 array (C=256, h=w=64 for SAM)."""
        self._require_image()
        return self._features.cpu().numpy()

    def get_embedding_state(self) -> ImageEmbedding:
        """The embedding and the image size it belongs to, for saving and restoring."""
        return ImageEmbedding(self.get_image_embedding(), self.original_size)

    def set_image_embedding(self, features: np.ndarray, original_size: tuple[int, int]) -> None:
        """Resume from a saved embedding (from :meth:`get_image_embedding`) without encoding.

        features: (1, C, h, w) or (C, h, w); original_size: (H, W) of the encoded image.
        """
        import torch

        features = np.asarray(features, dtype=np.float32)
        if features.ndim == 3:
            features = features[None]
        grid = self.model.prompt_encoder.image_embedding_size
        expected = (1, self.model.prompt_encoder.embed_dim, *grid)
        if features.shape != expected:
            raise ValueError(
                f"This embedding has shape {features.shape} but the model expects {expected}: "
                "it was made by another model. Encode the image again with set_image()."
            )
        h, w = (int(v) for v in original_size)
        if h < 1 or w < 1:
            raise ValueError(
                f"original_size must be a positive (height, width), got {original_size}."
            )
        self._features = torch.as_tensor(features, device=self.device)
        self._folded = None
        self.original_size = (h, w)
        self.input_size = resized_shape(h, w, self.model.image_size)

    def _require_image(self) -> None:
        if self._features is None:
            raise ValueError("No image is set: call set_image(image) before predicting.")

    # ---- prompts ---------------------------------------------------------------------------

    def predict(
        self,
        points: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for the prompts on the current image.

        points: (N, 2) (row, col); labels: (N,) 1 = foreground, 0 = background.
        box: (4,) (min_row, min_col, max_row, max_col), or (K, 4) for K objects in one batch;
        the points, if any, are shared by all K boxes.
        mask_input: (1, 256, 256) low-res logits of a previous round, or (K, 1, 256, 256).
        multimask: three candidate masks (for ambiguous prompts such as one click) or one.

        Returns masks (M, H, W) bool, scores (M,) float32 predicted IoU and low-res logits
        (M, 256, 256) float32, where M is 3 or 1; with a (K, 4) box each gains a leading K axis.
        """
        import torch

        self._require_image()
        coords, point_labels = self._check_points(points, labels)
        boxes, batched = self._check_boxes(box)
        if coords is None and boxes is None and mask_input is None:
            raise ValueError("No prompt given: pass points (with labels), a box or a mask_input.")
        n_objects = boxes.shape[0] if boxes is not None else 1
        masks_in = self._check_mask_input(mask_input, n_objects)

        long_side = self.model.image_size
        with torch.inference_mode():
            pts = None
            if coords is not None:
                xy = rowcol_to_model_xy(coords, self.original_size, long_side)
                pts = (
                    torch.as_tensor(xy, device=self.device)[None].expand(n_objects, -1, -1),
                    torch.as_tensor(point_labels, device=self.device)[None].expand(n_objects, -1),
                )
            box_t = None
            if boxes is not None:
                corners = rowcol_to_model_xy(boxes.reshape(-1, 2, 2), self.original_size, long_side)
                box_t = torch.as_tensor(corners.reshape(-1, 4), device=self.device)
            mask_t = None if masks_in is None else torch.as_tensor(masks_in, device=self.device)
            scores, low_res = self._decode(pts, box_t, mask_t, multimask)
            masks = self._full_size_masks(low_res)

        masks_np = masks.cpu().numpy()
        scores_np = scores.float().cpu().numpy()
        low_res_np = low_res.float().cpu().numpy()
        if not batched:
            return masks_np[0], scores_np[0], low_res_np[0]
        return masks_np, scores_np, low_res_np

    def model_coords(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) (row, col) pixels of the current image -> (..., 2) (x, y) float32 pixels
        of the model input, the frame :meth:`predict_torch` takes."""
        self._require_image()
        points = np.asarray(points, dtype=np.float64)
        return rowcol_to_model_xy(points, self.original_size, self.model.image_size)

    def model_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """(K, 4) (min_row, min_col, max_row, max_col) -> (K, 4) (x0, y0, x1, y1) float32 in
        model-input pixels."""
        corners = self.model_coords(np.asarray(boxes, dtype=np.float64).reshape(-1, 2, 2))
        return corners.reshape(-1, 4)

    def predict_torch(
        self,
        point_coords: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Masks for a batch of B prompts already in the model's frame, as tensors.

        The reference ``SamPredictor.predict_torch``: point_coords (B, N, 2) (x, y) in
        model-input pixels (see :meth:`model_coords`) with point_labels (B, N) (1, 0, or -1 for
        padding); boxes (B, 4) (x0, y0, x1, y1) (see :meth:`model_boxes`); mask_input
        (B, 1, 256, 256) low-res logits. Returns masks (B, M, H, W) bool (float logits with
        ``return_logits``), predicted IoU (B, M) and low-res logits (B, M, 256, 256), on the
        model's device.
        """
        import torch

        self._require_image()
        if point_coords is None and boxes is None and mask_input is None:
            raise ValueError("No prompt given: pass point_coords, boxes or mask_input.")
        with torch.inference_mode():
            points = None
            if point_coords is not None:
                if point_labels is None:
                    raise ValueError("point_coords need point_labels, one per point.")
                points = (point_coords.to(self.device), point_labels.to(self.device))
            box_t = None if boxes is None else boxes.to(self.device, torch.float32)
            mask_t = None if mask_input is None else mask_input.to(self.device, torch.float32)
            scores, low_res = self._decode(points, box_t, mask_t, multimask_output)
            if return_logits:
                masks = self.model.postprocess_masks(low_res, self.input_size, self.original_size)
            else:
                masks = self._full_size_masks(low_res)
        return masks, scores, low_res

    def _decode(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
        multimask: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt encoder + mask decoder: IoU (B, M) and low-res logits (B, M, 256, 256)."""
        model = self.model
        sparse, dense = model.prompt_encoder(points=points, boxes=boxes, masks=masks)
        if masks is None:  # every click of the widget: the decoder's image side is shared
            folded = self._folded_decoder()
            batch = folded.decode(sparse, multimask)
            low_res, scores = folded.upscale(batch), batch.iou
        else:
            low_res, scores = model.mask_decoder(
                image_embeddings=self._features,
                image_pe=self._image_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
            )
        return scores, low_res

    def _full_size_masks(self, low_res: torch.Tensor) -> torch.Tensor:
        """(B, M, h, w) low-res logits -> (B, M, H, W) bool masks of the image."""
        from .mask_upsampling import greater, threshold_masks

        model = self.model
        factor, remainder = divmod(model.image_size, low_res.shape[-1])
        if self.input_size == self.original_size and remainder == 0:
            # The model saw the image unresized (long side 1024): one upsampling, fused with
            # the threshold.
            return threshold_masks(low_res, factor, self.original_size, model.mask_threshold)
        logits = model.postprocess_masks(low_res, self.input_size, self.original_size)
        return greater(logits, model.mask_threshold)

    def _folded_decoder(self) -> FoldedDecoder:
        """The decoder with this image's prompt-independent work done, made once per image."""
        from .folded_decoder import FoldedDecoder

        folded = self._folded
        if folded is None or folded.image_tokens.device != self.device:
            folded = self._folded = FoldedDecoder(self.model, self._features)
        return folded

    def _image_pe(self) -> torch.Tensor:
        """The prompt encoder's positional encoding of the embedding grid, computed once."""
        pe = self._dense_pe
        if pe is None or pe.device != self.device:
            pe = self._dense_pe = self.model.prompt_encoder.get_dense_pe()
        return pe

    # ---- validation ------------------------------------------------------------------------

    def _check_points(
        self, points: np.ndarray | None, labels: np.ndarray | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        if points is None:
            if labels is not None and np.size(labels):
                raise ValueError("labels were given without points.")
            return None, None
        coords = np.asarray(points, dtype=np.float64)
        if coords.size == 0:
            return None, None
        if coords.ndim != 2 or coords.shape[1] != 2:
            raise ValueError(f"points must have shape (N, 2) as (row, col); got {coords.shape}.")
        if labels is None:
            raise ValueError("points need labels: 1 for foreground, 0 for background, one each.")
        lab = np.asarray(labels)
        if lab.ndim != 1 or lab.shape[0] != coords.shape[0]:
            raise ValueError(
                f"{coords.shape[0]} points but labels of shape {lab.shape}: "
                "give one label per point."
            )
        if not np.all(np.isin(lab, (0, 1))):
            raise ValueError(
                f"labels must be 1 (foreground) or 0 (background); got {np.unique(lab)}."
            )
        self._check_inside(coords, "point")
        return coords, lab.astype(np.int32)

    def _check_boxes(self, box: np.ndarray | None) -> tuple[np.ndarray | None, bool]:
        if box is None:
            return None, False
        boxes = np.asarray(box, dtype=np.float64)
        batched = boxes.ndim == 2
        if boxes.shape == (4,):
            boxes = boxes[None]
        if boxes.ndim != 2 or boxes.shape[1] != 4 or boxes.shape[0] == 0:
            raise ValueError(
                "box must be (min_row, min_col, max_row, max_col), or a (K, 4) array of them; "
                f"got shape {boxes.shape}."
            )
        # Rectangles drawn in any direction describe the same box.
        boxes = np.concatenate(
            [np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], axis=1
        )
        self._check_inside(boxes.reshape(-1, 2), "box corner")
        return boxes, batched

    def _check_mask_input(self, mask_input: np.ndarray | None, n_objects: int) -> np.ndarray | None:
        if mask_input is None:
            return None
        m = np.asarray(mask_input, dtype=np.float32)
        side = self.model.prompt_encoder.mask_input_size
        if m.shape == (1, *side):
            m = np.broadcast_to(m[None], (n_objects, 1, *side))
        if m.shape != (n_objects, 1, *side):
            raise ValueError(
                f"mask_input must be the (1, {side[0]}, {side[1]}) low-res logits of a previous "
                f"prediction (or ({n_objects}, 1, {side[0]}, {side[1]}) for {n_objects} boxes); "
                f"got shape {m.shape}."
            )
        if not np.all(np.isfinite(m)):
            raise ValueError("mask_input contains NaN or infinite values.")
        return np.array(m, dtype=np.float32, order="C")  # a writable copy, not a broadcast view

    def _check_inside(self, coords: np.ndarray, what: str) -> None:
        h, w = self.original_size
        if not np.all(np.isfinite(coords)):
            raise ValueError(f"A {what} has a NaN or infinite coordinate.")
        outside = ~inside_image(coords, (h, w))
        if np.any(outside):
            bad = coords[np.argmax(outside)]
            raise ValueError(
                f"A {what} at (row {bad[0]:g}, col {bad[1]:g}) lies outside the {h} x {w} image; "
                "place prompts on the image."
            )


@contextlib.contextmanager
def _reporting_blocks(
    encoder: torch.nn.Module, progress: Callable[[int, int], None] | None
) -> Iterator[None]:
    """Call ``progress(0, total)``, then ``progress(done, total)`` after each transformer or
    MBConv block of ``encoder``."""
    if progress is None:
        yield
        return
    from torch import nn

    blocks = [
        block
        for name, module in encoder.named_modules()
        if name.split(".")[-1] == "blocks" and isinstance(module, nn.ModuleList)
        for block in module
    ]
    done = iter(range(1, len(blocks) + 1))
    handles = [
        b.register_forward_hook(lambda *_: progress(next(done), len(blocks))) for b in blocks
    ]
    try:
        progress(0, len(blocks))
        yield
    finally:
        for handle in handles:
            handle.remove()
