"""Stage ``summary``: gather every stage's metrics into ``summary.json`` (see :mod:`clims_core.report.summary`)."""

from clims_core.report.summary import write_summary as run

__all__ = ["run"]
