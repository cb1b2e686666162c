"""Progress bars on stderr for the commands: planes done, and bytes downloaded."""

from __future__ import annotations

import sys
from typing import Any


class Bar:
    """A tqdm bar on stderr, created at the first update (so nothing shows for no work)."""

    def __init__(self, quiet: bool, what: str) -> None:
        self.quiet, self.what, self.bar = quiet, what, None

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def _options(self, total: int) -> dict[str, Any]:
        raise NotImplementedError

    def update(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(file=sys.stderr, **self._options(total))
        self.bar.n = done
        self.bar.refresh()


class Progress(Bar):
    """Bar over planes, with failures printed above it as they happen."""

    def _options(self, total: int) -> dict[str, Any]:
        return {"total": total, "unit": "plane", "desc": self.what}

    def result(self, result: Any) -> None:
        if result.status != "failed":
            return
        line = f"FAILED {result.input}: {result.message}"
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)


class ByteProgress(Bar):
    """Bar over downloaded bytes, shown only once a download really starts."""

    def _options(self, total: int) -> dict[str, Any]:
        return {
            "total": total or None,
            "unit": "B",
            "unit_scale": True,
            "unit_divisor": 1024,
            "desc": f"downloading {self.what}",
        }
