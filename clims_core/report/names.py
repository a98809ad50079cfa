"""How methods and refiners are written in tables, plots and the report (no plotting imports: the workflow reads it
at plan time)."""

from __future__ import annotations

METHOD_NAMES = {"cam": "CAM", "puzzlecam": "PuzzleCAM", "clims": "CLIMS"}
REFINER_NAMES = {"irn": "IRN", "crf": "CRF"}


def method_name(method: str) -> str:
    """How a CAM method (or ``method/refiner``) is written in the report."""
    head, _, tail = method.partition("/")
    return METHOD_NAMES.get(head, head) + (f" + {REFINER_NAMES.get(tail, tail)}" if tail else "")
