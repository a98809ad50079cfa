"""Stage ``make_demo_world``: generate the demo dataset (VOC layout + captions corpus + statistics)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from clims_core.data.demo_world import DemoWorldSettings, generate_world

log = logging.getLogger(__name__)


def run(settings: dict[str, Any] | DemoWorldSettings, out_dir: str | Path, workers: int = 1) -> dict:
    """Write the world to ``out_dir`` and return its statistics."""
    if not isinstance(settings, DemoWorldSettings):
        settings = DemoWorldSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})
    start = time.perf_counter()
    stats = generate_world(settings, Path(out_dir), workers=workers, progress=True)
    log.info("demo world written to %s in %.1f s", out_dir, time.perf_counter() - start)
    return stats
