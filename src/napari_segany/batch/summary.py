"""What a batch run reports: one :class:`InputResult` per input, gathered in a
:class:`BatchSummary`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class InputResult:
    """What happened to one input.

    status: ``done``, ``skipped`` (outputs were there already) or ``failed`` (see message).
    slices: 2-D planes in the input; objects: masks found (segment) or planes encoded (embed);
    workers: addresses of the dask workers that ran its planes (``local`` outside dask);
    seconds: the compute time of its planes.
    """

    input: Path
    status: str
    outputs: tuple[Path, ...] = ()
    slices: int = 0
    objects: int = 0
    message: str = ""
    workers: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class BatchSummary:
    """Every input's result: arguments that named nothing usable first, then the inputs in
    the order they were found."""

    results: tuple[InputResult, ...]
    seconds: float
    scheduler: str

    def _with(self, status: str) -> list[InputResult]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[InputResult]:
        return self._with("done")

    @property
    def skipped(self) -> list[InputResult]:
        return self._with("skipped")

    @property
    def failed(self) -> list[InputResult]:
        return self._with("failed")

    @property
    def ok(self) -> bool:
        """True when no input failed."""
        return not self.failed

    def report(self) -> str:
        """A few lines for people: counts, then one line per failed input."""
        planes = sum(r.slices for r in self.done)
        lines = [
            f"{len(self.done)} done ({planes} plane{'s' * (planes != 1)}), {len(self.skipped)} "
            f"skipped (outputs already there), {len(self.failed)} failed, in "
            f"{self.seconds:.1f} s on {self.scheduler}."
        ]
        lines += [f"FAILED {r.input}: {r.message}" for r in self.failed]
        return "\n".join(lines)


def failed_input(path: Path, message: str) -> InputResult:
    """The result of an input that could not be read, segmented or written."""
    return InputResult(input=path, status="failed", message=message)
