"""Settings checks that raise one line naming the key and the expected form (the dataclasses' ``__post_init__``)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def require_one_of(key: str, value: Any, choices: Collection) -> None:
    """``<key>: expected one of <choices>, got <value>`` unless ``value`` is one of ``choices`` (shown as passed)."""
    if value not in choices:
        raise ValueError(f"{key}: expected one of {choices}, got {value!r}")


def require_open_unit(key: str, value: float) -> None:
    """``<key>: expected a number in (0, 1), got <value>`` unless 0 < value < 1 (a threshold or a share)."""
    if not 0 < value < 1:
        raise ValueError(f"{key}: expected a number in (0, 1), got {value}")
