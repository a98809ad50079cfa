"""Stage ``merge_masks``: join the shard parts of a sharded mask folder (IR labels, IRN or CRF masks) into its index.

The shards wrote their PNGs into the folder's ``masks/`` already; this writes ``index.json`` exactly as an unsharded
run would (see :func:`clims_core.refine.mask_folder.merge_parts`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from clims_core.refine.mask_folder import merge_parts

log = logging.getLogger(__name__)


def run(part_paths: list[str | Path], index_path: str | Path) -> dict[str, Any]:
    document = merge_parts(part_paths, index_path)
    log.info("merge_masks: %d masks from %d parts into %s", len(document["ids"]), len(part_paths), index_path)
    return document
