"""File digests that artifacts record to name what they were made from (a checkpoint's SHA-256)."""

from __future__ import annotations

import hashlib
import os


def sha256_file(path: str | os.PathLike, block_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks so multi-GB checkpoints never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(block_size), b""):
            digest.update(block)
    return digest.hexdigest()
