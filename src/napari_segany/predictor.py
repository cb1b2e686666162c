"""Interactive prediction: one image embedding, then masks for any number of prompts.

Numpy in, numpy out. Coordinates follow napari: points are (row, col) and boxes are
(min_row, min_col, max_row, max_col) in the image's pixel coordinates, where pixel (r, c)
covers [r - 0.5, r + 0.5] x [c - 0.5, c + 0.5].
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np

from .embeddings.embedding import ImageEmbedding
from .encoder_progress import reporting_blocks
from .geometry import resize_longest_side, resized_shape, rowcol_to_model_xy
from .imaging import as_rgb, to_uint8
from .precision import precision_name, resolve_precision
from .progress import ProgressCallback
from .prompt_checks import check_boxes, check_mask_input, check_points

if TYPE_CHECKING:
    import torch

    from .decoding import Decoded, Decoder
    from .decoding.upsampling import LogitUpsampler
    from .modeling import Sam
    from .tiling import TiledPredictor
    from .tiling.whole_image import Answer, TiledImage


class Predictor:
    """Encode an image once with :meth:`set_image`, then :meth:`predict` masks for prompts.

    precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` for the image encoder (see
    :mod:`napari_segany.precision`); compile_encoder: run the encoder through
    ``torch.compile`` (worth it on a GPU for many images; the first image pays the compile);
    decoder: ``fast`` (the default, from ``$NAPARI_SEGANY_DECODER`` when set) or
    ``reference``, the model's literal mask decoder (see :mod:`napari_segany.decoding`).

    Large images: ``set_image(image, tile_shape="auto")`` (or a tile shape and halo) cuts an
    image larger than about 1.5 times the model's input into tiles, encoded when a prompt first
    needs them (see :mod:`napari_segany.tiling`; :attr:`tiled` is the tiled predictor).
    :meth:`predict` then takes prompts in whole-image pixels and answers with masks at the
    whole image's size up to 4096 x 4096 pixels, and above that with
    :class:`~napari_segany.tiling.TiledPrediction` windows (masks over the block they were
    decoded in, with its offset); see :mod:`napari_segany.tiling.whole_image`.
    """

    def __init__(
        self,
        model: Sam,
        precision: str = "auto",
        compile_encoder: bool = False,
        decoder: str | None = None,
    ) -> None:
        from .decoding import check_decoder, default_decoder

        self.model = model.eval()
        self.precision = precision
        resolve_precision(precision, self.device)  # fail early on a bad name
        self.decoder_kind = check_decoder(decoder) if decoder is not None else default_decoder()
        self._encoder = model.image_encoder
        self._compiled = compile_encoder
        if compile_encoder:
            import torch

            self._encoder = torch.compile(model.image_encoder)
        self._features: torch.Tensor | None = None
        # Of the current image, made at its first prompt.
        self._decoder: Decoder | None = None
        # Kept across images of one size (the planes of a stack, the slices of a movie): it
        # depends on nothing else, and building it costs 13-28 ms of a 512-1024 pixel decode.
        self._upsampler: LogitUpsampler | None = None
        self._upsampler_for: tuple | None = None
        self.original_size: tuple[int, int] | None = None
        self.input_size: tuple[int, int] | None = None
        self.encode_seconds: float | None = None
        self._tiled_image: TiledImage | None = None

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the image encoder runs in on the model's current device."""
        return resolve_precision(self.precision, self.device)

    @property
    def precision_name(self) -> str:
        """``fp32``, ``bf16`` or ``fp16``: what ``precision`` (``auto`` too) runs in here."""
        return precision_name(self.dtype)

    @property
    def mask_threshold(self) -> float:
        """Logits above this are inside a mask."""
        return float(self.model.mask_threshold)

    @property
    def embedding_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of the model's image embedding (256, 64, 64 for SAM)."""
        h, w = self.model.prompt_encoder.image_embedding_size
        return int(self.model.prompt_encoder.embed_dim), int(h), int(w)

    @property
    def is_image_set(self) -> bool:
        return self._features is not None or self._tiled_image is not None

    @property
    def tiled(self) -> TiledPredictor | None:
        """The current image's tiles (encoding, status, windows), or None when it is not
        tiled."""
        return None if self._tiled_image is None else self._tiled_image.tiled

    def encoder_twin(self) -> Predictor:
        """A new predictor on the same model, precision, decoder and (compiled) encoder, with
        an image of its own: what encodes the tiles of a tiled image."""
        twin = Predictor(self.model, precision=self.precision, decoder=self.decoder_kind)
        twin._encoder, twin._compiled = self._encoder, self._compiled
        return twin

    def reset_image(self) -> None:
        """Forget the current image and its embedding."""
        self._features = None
        self._tiled_image = None
        self._forget_decoding()
        self.original_size = None
        self.input_size = None

    # ---- image -----------------------------------------------------------------------------

    def set_image(
        self,
        image: np.ndarray,
        contrast_limits: tuple[float, float] | None = None,
        progress: ProgressCallback | None = None,
        tile_shape: int | tuple[int, int] | str | None = None,
        halo: int | tuple[int, int] | None = None,
    ) -> None:
        """Run the image encoder on ``image`` and keep its embedding.

        image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), any real dtype; converted with
        :func:`napari_segany.imaging.to_uint8_rgb` (see there for the intensity rule).
        progress: called as ``progress(done, total)`` before the encoder's first block and after
        each block.
        tile_shape, halo: micro-sam's, in image pixels. None encodes the image whole, resized
        to the model's input; ``"auto"`` tiles images whose long side exceeds 1.5 times the
        input (:func:`~napari_segany.tiling.auto_tiling`); a shape and halo tile as given. A
        tiled image is kept, not copied, and its tiles are encoded as prompts need them (or
        ahead, ``tiled.iter_encode_tiles()``); an image that fits one tile is encoded whole.
        """
        import torch

        if tile_shape is not None or halo is not None:
            from .tiling.whole_image import tiled_image

            tiled = tiled_image(self, image, contrast_limits, tile_shape, halo)
            if tiled is not None:  # else it fits one tile: encoded whole
                self.reset_image()
                self._tiled_image, self.original_size = tiled, tiled.original_size
                return
        plane = to_uint8(image, contrast_limits)  # grayscale stays one channel until resized
        start = time.perf_counter()
        resized = as_rgb(resize_longest_side(np.ascontiguousarray(plane), self.model.image_size))
        pixels = torch.as_tensor(resized, device=self.device).permute(2, 0, 1)[None].float()
        dtype = self.dtype
        reduced = dtype != torch.float32
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype, enabled=reduced),
            # Hooks would break a compiled encoder's graph.
            reporting_blocks(self.model.image_encoder, None if self._compiled else progress),
        ):
            features = self._encoder(self.model.preprocess(pixels))
        self._features = features.float()
        self._forget_decoding()
        self._tiled_image = None
        self.original_size = (int(plane.shape[0]), int(plane.shape[1]))
        self.input_size = (int(resized.shape[0]), int(resized.shape[1]))
        self.encode_seconds = time.perf_counter() - start

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
        self._forget_decoding()
        self._tiled_image = None
        self.original_size = (h, w)
        self.input_size = resized_shape(h, w, self.model.image_size)

    def _forget_decoding(self) -> None:
        self._decoder = None

    def _require_image(self) -> None:
        if self._tiled_image is not None:
            raise ValueError(
                "This image is tiled: its embeddings belong to its tiles, not to one image. "
                "Use predict() for masks, or predictor.tiled for the tiles and their embeddings."
            )
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
    ) -> Answer:
        """Masks for the prompts on the current image.

        points: (N, 2) (row, col); labels: (N,) 1 = foreground, 0 = background.
        box: (4,) (min_row, min_col, max_row, max_col), or (K, 4) for K objects in one batch;
        the points, if any, are shared by all K boxes.
        mask_input: (1, 256, 256) low-res logits of a previous round, or (K, 1, 256, 256).
        multimask: three candidate masks (for ambiguous prompts such as one click) or one.

        Returns masks (M, H, W) bool, scores (M,) float32 predicted IoU and low-res logits
        (M, 256, 256) float32, where M is 3 or 1; with a (K, 4) box each gains a leading K axis.
        A tiled image larger than 4096 x 4096 pixels returns a
        :class:`~napari_segany.tiling.TiledPrediction` instead (a list of K for K boxes): the
        masks over a window of the image and its offset. On a tiled image, mask_input is decoded
        in the window of the prediction that gave it.
        """
        import torch

        if self._tiled_image is not None:
            return self._tiled_image.predict(points, labels, box, mask_input, multimask)
        self._require_image()
        coords, point_labels = check_points(points, labels, self.original_size)
        boxes, batched = check_boxes(box, self.original_size)
        if coords is None and boxes is None and mask_input is None:
            raise ValueError("No prompt given: pass points (with labels), a box or a mask_input.")
        n_objects = boxes.shape[0] if boxes is not None else 1
        side = self.model.prompt_encoder.mask_input_size
        masks_in = check_mask_input(mask_input, n_objects, side)

        with torch.inference_mode():
            pts = lbl = None
            if coords is not None:
                xy = torch.as_tensor(self.model_coords(coords), device=self.device)
                pts = xy[None].expand(n_objects, -1, -1)
                lbl = torch.as_tensor(point_labels, device=self.device)[None].expand(n_objects, -1)
            box_t = None if boxes is None else torch.as_tensor(self.model_boxes(boxes))
            mask_t = None if masks_in is None else torch.as_tensor(masks_in)
            masks, scores, low_res = self.predict_torch(pts, lbl, box_t, mask_t, multimask)

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

        if point_coords is None and boxes is None and mask_input is None:
            raise ValueError("No prompt given: pass point_coords, boxes or mask_input.")
        with torch.inference_mode():
            decoded = self.decode_torch(
                point_coords, point_labels, boxes, mask_input, multimask_output
            )
            low_res = self.low_res_logits(decoded)
            upsampler = self.upsampler
            if return_logits:
                b, m = low_res.shape[:2]
                masks = upsampler.logits(low_res.flatten(0, 1)).unflatten(0, (b, m))
            else:
                masks = upsampler.masks(low_res, self.mask_threshold)
        return masks, decoded.iou, low_res

    def decode_torch(
        self,
        point_coords: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask_output: bool = True,
    ) -> Decoded:
        """The first half of :meth:`predict_torch`: prompt encoder and transformer, giving the
        predicted IoU (B, M) at once and the masks of any prompts later through
        :meth:`low_res_logits`. Segment-everything filters on the IoU before upscaling.

        No prompt at all is SAM's answer to an empty prompt (B = 1), which micro-sam's
        propagation decodes after an object's mask became empty; :meth:`predict_torch` and
        :meth:`predict` refuse it, as a user's mistake there."""
        import torch

        self._require_image()
        points = None
        if point_coords is not None:
            if point_labels is None:
                raise ValueError("point_coords need point_labels, one per point.")
            points = (point_coords.to(self.device), point_labels.to(self.device))
        box_t = None if boxes is None else boxes.to(self.device, torch.float32)
        mask_t = None if mask_input is None else mask_input.to(self.device, torch.float32)
        model = self.model
        sparse, dense = model.prompt_encoder(points=points, boxes=box_t, masks=mask_t)
        return self._image_decoder().decode(
            sparse, dense if mask_t is not None else None, multimask_output
        )

    def low_res_logits(
        self, decoded: Decoded, prompts: torch.Tensor | None = None, image_only: bool = False
    ) -> torch.Tensor:
        """Low-res logits (P, M, 256, 256) of the chosen prompts of ``decoded`` (default all).

        image_only: only the rows and columns that reach the image (at least
        ``upsampler.low_res_shape``), skipping the padding of a non-square image.
        """
        grid = None
        if image_only:
            rows, cols = self.upsampler.low_res_shape
            grid = (math.ceil(rows / 4), math.ceil(cols / 4))
        return self._image_decoder().upscale(decoded, prompts, grid)

    @property
    def upsampler(self) -> LogitUpsampler:
        """Low-res logits -> logits and masks at the current image's pixels."""
        from .decoding.upsampling import LogitUpsampler

        self._require_image()
        self._follow_model_device()
        geometry = (self.input_size, self.original_size, self.device)
        upsampler = self._upsampler
        if upsampler is None or self._upsampler_for != geometry:
            low_res = self.model.prompt_encoder.mask_input_size[0]
            upsampler = self._upsampler = LogitUpsampler.build(
                low_res, self.model.image_size, self.input_size, self.original_size, self.device
            )
            self._upsampler_for = geometry
        return upsampler

    def _image_decoder(self) -> Decoder:
        """The chosen decoder bound to the current image, made once per image."""
        from .decoding import make_decoder

        self._follow_model_device()
        if self._decoder is None:
            self._decoder = make_decoder(self.decoder_kind, self.model, self._features)
        return self._decoder

    def _follow_model_device(self) -> None:
        # The model may have moved (to the CPU, after the GPU ran out of memory).
        if self._features is not None and self._features.device != self.device:
            self._features = self._features.to(self.device)
            self._forget_decoding()
