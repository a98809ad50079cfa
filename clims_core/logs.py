"""Logging for stage runs: to the rule's log file and to the terminal, with the failure cause as the last lines."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def stage_logging(log_path: str | Path | None, stage: str) -> Iterator[logging.Logger]:
    """Send library logs to ``log_path`` and stderr; log any exception (with traceback) before re-raising it."""
    root = logging.getLogger()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    logger = logging.getLogger(f"clims.{stage}")
    try:
        yield logger
    except BaseException as error:
        logger.exception("%s failed: %s", stage, error)
        raise
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
