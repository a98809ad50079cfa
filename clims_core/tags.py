"""Output tags: a short hash of the config section that made an artifact plus the tags of its inputs.

A new setting gives a new folder (``results/cams/clims-3f2a9c1d/``) and old results stay where they are.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal configs hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def tag(section: Any, *input_tags: str, length: int = 8) -> str:
    """Hash of a config section (any JSON-able value) and the tags of the artifacts it consumed."""
    digest = hashlib.sha256(canonical_json(section).encode())
    for upstream in input_tags:
        digest.update(b"|" + upstream.encode())
    return digest.hexdigest()[:length]
