"""A captions corpus folder: ``images/<id>.jpg`` and ``captions.tsv`` (``id<TAB>caption``, UTF-8, one pair a line)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from clims_core.io.images import open_rgb


class CaptionsError(ValueError):
    """The corpus is malformed; the message names the file and line."""


def read_captions(folder: str | Path) -> list[tuple[str, str]]:
    """``(id, caption)`` pairs in file order; every malformed line, duplicate id or missing image is reported at once."""
    folder = Path(folder)
    tsv = folder / "captions.tsv"
    if not tsv.is_file():
        raise CaptionsError(f"{tsv}: not found (expected a captions corpus: images/<id>.jpg + captions.tsv)")
    try:
        lines = tsv.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise CaptionsError(f"{tsv}: not UTF-8 ({error})") from None
    pairs: list[tuple[str, str]] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        image_id, tab, caption = line.partition("\t")
        if not tab or not image_id.strip() or not caption.strip():
            problems.append(f"{tsv}:{number}: expected 'id<TAB>caption', got {line[:60]!r}")
        elif image_id in seen:
            problems.append(f"{tsv}:{number}: duplicate id {image_id!r}")
        elif not (folder / "images" / f"{image_id}.jpg").is_file():
            problems.append(f"{tsv}:{number}: image {folder / 'images' / f'{image_id}.jpg'} missing")
        else:
            seen.add(image_id)
            pairs.append((image_id, caption.strip()))
    if problems:
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise CaptionsError(f"{len(problems)} problem(s) in the captions corpus:\n  " + "\n  ".join(problems[:20]) + more)
    if not pairs:
        raise CaptionsError(f"{tsv}: no caption pairs")
    return pairs


def load_images(paths: list[Path], size: int, threads: int = 1) -> np.ndarray:
    """Decode and resize images to ``size x size`` (bicubic) into one ``N x 3 x size x size`` uint8 array."""

    def one(path: Path) -> np.ndarray:
        try:
            image = open_rgb(path)
            if image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BICUBIC)
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
        except OSError as error:
            raise CaptionsError(f"{path}: image cannot be decoded ({error})") from None

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return np.stack(list(pool.map(one, paths))) if paths else np.zeros((0, 3, size, size), np.uint8)
