"""Turning exceptions from libraries into short details for the user's messages."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of the exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
