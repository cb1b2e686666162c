"""How long each object took: SAM's data-engine figure, kept for the user's own session.

SAM's assisted-manual stage measured the seconds per mask (34 s falling to 14 s as the model
improved). Here the clock of an object starts at its first prompt and stops when it is
committed; the prompts in between are counted. A commit of K objects (several boxes) shares
the time and prompts out between them, so the mean per object is what the user spent per
object. Objects from segment-everything are recorded apart, with the run's time shared out.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from ..atomic import write_text_atomic

SOURCES = ("click", "box", "everything")


@dataclass(frozen=True)
class ObjectRecord:
    """One committed object: its label id, the slice it is on (leading indices, empty for a
    2-D image), seconds from its first prompt to its commit, prompts used, and where it came
    from (``click``, ``box`` or ``everything``)."""

    id: int
    slice: tuple[int, ...]
    seconds: float
    prompts: float
    source: str


class AnnotationRecord:
    """The objects committed in a session, and the clock of the object being prompted.

    clock: a monotonic time source in seconds (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.objects: list[ObjectRecord] = []
        self._started: float | None = None
        self._prompts = 0

    # ---- the object being prompted -----------------------------------------------------------

    def prompt_added(self, count: int = 1) -> None:
        """The user added ``count`` prompts (points or boxes) to the current object."""
        if self._started is None:
            self._started = self.clock()
        self._prompts += count

    def discard(self) -> None:
        """The prompts were cleared without a commit: the next prompt starts a new clock."""
        self._started = None
        self._prompts = 0

    def commit(self, ids: Sequence[int], slice_key: tuple[int, ...], source: str) -> None:
        """``ids`` were committed from the current prompts (K objects share time and prompts)."""
        if not len(ids):
            return
        now = self.clock()
        seconds = 0.0 if self._started is None else now - self._started
        share = 1.0 / len(ids)
        prompts = self._prompts * share
        for i in ids:
            self.objects.append(
                ObjectRecord(int(i), tuple(slice_key), seconds * share, prompts, source)
            )
        self.discard()

    def add_automatic(self, ids: Sequence[int], slice_key: tuple[int, ...], seconds: float) -> None:
        """Objects segment-everything added in ``seconds``, with no prompts of the user's."""
        share = seconds / max(1, len(ids))
        self.objects += [
            ObjectRecord(int(i), tuple(slice_key), share, 0.0, "everything") for i in ids
        ]

    # ---- what the user sees --------------------------------------------------------------------

    def summary(self) -> str:
        """ "12 objects · 9.4 s and 3.1 prompts per object", plus segment-everything's count."""
        manual = [o for o in self.objects if o.source != "everything"]
        automatic = len(self.objects) - len(manual)
        if not manual and not automatic:
            return "No objects committed yet"
        parts = []
        if manual:
            seconds = sum(o.seconds for o in manual) / len(manual)
            prompts = sum(o.prompts for o in manual) / len(manual)
            noun = "object" if len(manual) == 1 else "objects"
            parts.append(
                f"{len(manual)} {noun} · {seconds:.1f} s and {prompts:.1f} prompts per object"
            )
        if automatic:
            parts.append(f"{automatic} from automatic segmentation")
        return " · ".join(parts)

    def to_csv(self) -> str:
        """One row per object: id, slice, seconds, prompts, source."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([f.name for f in fields(ObjectRecord)])
        for record in self.objects:
            row = list(astuple(record))
            row[1] = " ".join(str(i) for i in record.slice)
            row[2] = f"{record.seconds:.3f}"
            row[3] = f"{record.prompts:.3g}"
            writer.writerow(row)
        return out.getvalue()

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_csv` to ``path``, whole or not at all."""
        return write_text_atomic(path, self.to_csv())
