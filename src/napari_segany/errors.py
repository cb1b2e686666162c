"""Every exception the package raises on purpose, and how a library's exception becomes a short
detail in a message for the user.

Each message names what was wrong and what to do; the class says which part of the work failed,
so callers (the widget, the command line) can tell a user's problem from a bug.
"""

from __future__ import annotations

from pathlib import Path


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""


class DownloadError(OSError):
    """A file could not be downloaded; the message says where to put it by hand."""

    def __init__(self, message: str, url: str = "", path: Path | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.path = path


class ModelLoadError(RuntimeError):
    """A batch run's model could not be loaded (on a worker); stops the whole run."""


class UnreadableImageError(ValueError):
    """An input that cannot be read as an image; the message names the file and the problem."""


class LabelIdsExhausted(ValueError):
    """No free id of a labels image's dtype is left for new objects."""


class Cancelled(Exception):
    """Raised from a progress callback to stop long work between two of its steps."""


class MissingExtraError(ImportError):
    """An optional feature whose packages are not installed; the message names the extra."""


def first_line(exc: BaseException) -> str:
    """The first line of the exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
