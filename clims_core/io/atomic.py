"""Atomic writes: readers never see a half-written file or folder.

Everything another stage reads is written to ``name.tmp-XXXX`` beside its final path, closed, then moved into place with
``os.replace`` (atomic on one filesystem). A crash leaves only the temporary, never a truncated artifact.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _default_mode(directory: bool) -> int:
    """What ``open``/``mkdir`` would give under the process umask (mkstemp/mkdtemp use owner-only 0600/0700)."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def _temporary_sibling(path: Path, directory: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    make = tempfile.mkdtemp if directory else tempfile.mkstemp
    created = make(prefix=f"{path.name}.tmp-", dir=path.parent)
    if isinstance(created, tuple):  # mkstemp returns (fd, name)
        os.close(created[0])
        created = created[1]
    os.chmod(created, _default_mode(directory))  # results are shared files, not secrets
    return Path(created)


@contextlib.contextmanager
def _staged(path: str | os.PathLike, directory: bool) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success move it into place (a folder first removing an old one), on
    error delete it."""
    final = Path(path)
    tmp = _temporary_sibling(final, directory=directory)
    try:
        yield tmp
        if directory and final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        if directory:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def atomic_path(path: str | os.PathLike) -> contextlib.AbstractContextManager[Path]:
    """Yield a temporary file path beside ``path``; on success move it into place, on error delete it."""
    return _staged(path, directory=False)


def atomic_directory(path: str | os.PathLike) -> contextlib.AbstractContextManager[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` (an old one is removed first)."""
    return _staged(path, directory=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically, indented and with sorted keys so equal data gives equal bytes."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
