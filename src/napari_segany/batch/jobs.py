"""The two kinds of batch job, segment and embed: which tasks to submit for an input, and what
to write once all of its planes are in."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .inputs import ImagePlan
from .instances import require_decoder, segment_instances_plane
from .output import (
    COCO_SUFFIX,
    LABELS_SUFFIX,
    all_params,
    json_scalar,
    output_bases,
    write_output,
    write_tiff,
)
from .tiles import Tiling, embed_plane_tiles, segment_plane_tiles
from .worker import (
    ModelSpec,
    PlaneResult,
    embed_plane,
    input_contrast_limits,
    load_cached_model,
    segment_plane,
)

if TYPE_CHECKING:
    from distributed import Client


@dataclass
class Pending:
    """An input being computed: its place in the summary, how to read it, its outputs, the
    results of its planes so far (by plane index) and the first error."""

    index: int
    plan: ImagePlan
    outputs: tuple[Path, ...]
    planes: dict[int, PlaneResult] = field(default_factory=dict)
    error: str = ""


class SegmentJob:
    """Segment everything in each plane; write a label image (and SA-1B JSON) per input."""

    def __init__(
        self,
        spec: ModelSpec,
        params: dict,
        contrast: tuple | None,
        coco: bool,
        tiling: Tiling | None = None,
        store_folder: str | None = None,
        mode: str = "amg",
    ) -> None:
        self.spec, self.params, self.contrast, self.coco = spec, params, contrast, coco
        self.tiling, self.store_folder = tiling, store_folder
        self.mode = mode  # amg (segment everything), or ais/apg with the model's decoder

    def outputs(self, paths: list[Path], out_dir: Path) -> list[tuple[Path, ...]]:
        bases = output_bases(paths, out_dir)
        return [
            (b.with_name(b.name + LABELS_SUFFIX),)
            + ((b.with_name(b.name + COCO_SUFFIX),) if self.coco else ())
            for b in bases
        ]

    def is_done(self, outputs: tuple[Path, ...]) -> bool:
        return all(p.is_file() for p in outputs)

    def prepare(self, client: Client, local: bool) -> None:
        if local:
            model = load_cached_model(self.spec)  # a bad checkpoint fails once, before any input
            if self.mode != "amg":
                require_decoder(model, self.spec)

    def submit(self, client: Client, pending: Pending, tag: str) -> list:
        plan = pending.plan
        task, tiled = segment_plane, ()
        if self.tiling is not None:
            task, tiled = segment_plane_tiles, (self.tiling, self.store_folder)
        if self.mode != "amg":
            task, tiled = segment_instances_plane, (self.mode, self.tiling, self.store_folder)
        return [
            client.submit(
                task,
                plan,
                i,
                self.spec,
                self.params,
                self.contrast,
                self.coco,
                *tiled,
                key=f"segany-segment-{tag}-{pending.index}-{i}",
            )
            for i in range(plan.n_planes)
        ]

    def finish(self, pending: Pending, run_started: float, overwrite: bool) -> list[Path]:
        """Write the input's outputs (those missing, or all with ``overwrite``)."""
        plan = pending.plan
        planes = [pending.planes[i] for i in range(plan.n_planes)]
        offsets = np.cumsum([0] + [p.objects for p in planes])
        total = int(offsets[-1])
        if total > np.iinfo(np.uint32).max:  # ids never wrap: refuse rather than write junk
            raise ValueError(f"{total} objects do not fit the ids of a uint32 label image.")
        labels = np.zeros(plan.shape, dtype=np.uint16 if total <= 0xFFFF else np.uint32)
        flat = labels.reshape((-1, *plan.plane_shape))
        for i, plane in enumerate(planes):
            ids = plane.labels.astype(np.int64)
            flat[i] = np.where(ids > 0, ids + offsets[i], 0)
        labels_path = pending.outputs[0]
        if overwrite or not labels_path.is_file():
            write_output(labels_path, lambda f: write_tiff(f, labels), run_started)
        if self.coco and (overwrite or not pending.outputs[1].is_file()):
            document = self._coco_document(plan, planes, offsets, labels_path.name)
            text = json.dumps(document, separators=(",", ":"), default=json_scalar)
            text = text.encode("utf-8")
            write_output(pending.outputs[1], lambda f: f.write(text), run_started)
        return list(pending.outputs)

    def _coco_document(
        self, plan: ImagePlan, planes: list[PlaneResult], offsets: np.ndarray, labels_name: str
    ) -> dict[str, Any]:
        from .. import __version__

        height, width = plan.plane_shape
        image: dict[str, Any] = {"file_name": plan.path.name, "height": height, "width": width}
        stack = len(plan.shape) > 2
        if stack:
            image["shape"] = list(plan.shape)
        annotations = []
        for i, plane in enumerate(planes):
            where = [int(v) for v in np.unravel_index(i, plan.leading)] if stack else None
            for j, annotation in enumerate(plane.annotations):
                entry = {"id": int(offsets[i]) + j + 1, **annotation}
                if where is not None:
                    entry["slice_index"] = where
                annotations.append(entry)
        return {
            "image": image,
            "annotations": annotations,
            "info": {
                "description": "Segment Anything 'segment everything' by napari-segany",
                "version": __version__,
                "model": self.spec.model,
                "precision": self.spec.precision,
                "params": all_params(self.params),
                "contrast_limits": list(self.contrast) if self.contrast else "percentiles",
                "labels": labels_name,
                "segmentation": "COCO RLE, compressed counts string as pycocotools writes it",
                "coordinates": "x = column, y = row, in pixels; bbox and crop_box are XYWH",
            },
        }


class EmbedJob:
    """Encode each plane into an EmbeddingStore, skipping planes already in it."""

    def __init__(
        self,
        spec: ModelSpec,
        contrast: tuple | None,
        store: Any,
        overwrite: bool,
        tiling: Tiling | None = None,
    ):
        self.spec, self.contrast, self.store, self.tiling = spec, contrast, store, tiling
        self.existing: frozenset[str] = frozenset()
        self.existing_future: Any = None
        self.overwrite = overwrite

    def outputs(self, paths: list[Path], out_dir: Path) -> list[tuple[Path, ...]]:
        return [() for _ in paths]  # keyed by content: known only once a plane is read

    def is_done(self, outputs: tuple[Path, ...]) -> bool:
        return False

    def prepare(self, client: Client, local: bool) -> None:
        self.existing = frozenset() if self.overwrite else frozenset(self.store.keys())
        # One copy per worker rather than one per task.
        [self.existing_future] = client.scatter([self.existing], broadcast=True, hash=False)

    def submit(self, client: Client, pending: Pending, tag: str) -> list:
        from distributed import Future

        plan = pending.plan
        contrast: tuple | Future | None = self.contrast
        if contrast is None:
            key = f"segany-range-{tag}-{pending.index}"
            contrast = client.submit(input_contrast_limits, plan, key=key)
        task, tiled = embed_plane, ()
        if self.tiling is not None:
            task, tiled = embed_plane_tiles, (self.tiling, str(self.store.folder))
        return [
            client.submit(
                task,
                plan,
                i,
                self.spec,
                contrast,
                self.existing_future,
                *tiled,
                key=f"segany-embed-{tag}-{pending.index}-{i}",
            )
            for i in range(plan.n_planes)
        ]

    def finish(self, pending: Pending, run_started: float, overwrite: bool) -> list[Path]:
        paths = []
        for i in range(pending.plan.n_planes):
            plane = pending.planes[i]
            paths.extend(plane.saved)  # a tiled plane's tiles, written by its task
            if not plane.key:
                continue
            if plane.embedding is not None:
                paths.append(self.store.save(plane.key, plane.embedding))
            else:
                paths.append(self.store.path_for(plane.key))
        return paths
