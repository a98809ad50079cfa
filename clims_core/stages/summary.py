"""Stage ``summary``: gather every stage's metrics into ``summary.json`` (see :mod:`clims_core.report.summary`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clims_core.report.summary import write_summary
from clims_core.version import code_version


def run(path: str | Path, provenance: dict[str, Any] | None = None, **inputs: Any) -> dict:
    """Write summary.json; the provenance gets the library version that wrote it.

    The version is recorded here rather than passed in by the rule: as a rule parameter, any edit anywhere in the
    library would rerun the summary and the report (the rule's rerun trigger is this stage's own code).
    """
    provenance = {"code_version": code_version(), **(provenance or {})}
    return write_summary(path, provenance=provenance, **inputs)
