"""Stage logs: a failed stage's log file ends with the cause (what `Error in rule ...` points the user to)."""

from __future__ import annotations

import logging

import pytest

from clims_core.logs import stage_logging


def test_failure_cause_is_in_the_last_lines(tmp_path):
    log_path = tmp_path / "logs" / "report" / "report.log"
    with pytest.raises(FileNotFoundError), stage_logging(log_path, "report") as log:
        log.info("reading the summary")
        raise FileNotFoundError("results/report/summary.json does not exist (run summary first)")
    lines = log_path.read_text(encoding="utf-8").strip().splitlines()
    assert "reading the summary" in lines[0]
    assert lines[-1] == "FileNotFoundError: results/report/summary.json does not exist (run summary first)"
    assert any("report failed: results/report/summary.json does not exist" in line for line in lines[:-1])
    assert not logging.getLogger().handlers or all(
        getattr(h, "baseFilename", None) != str(log_path) for h in logging.getLogger().handlers)  # handler removed
