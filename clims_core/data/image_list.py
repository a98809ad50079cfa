"""The user's own images for ``segment`` and ``voc_submission``: a folder of image files or a text file of paths
(listed with pathlib only, so the workflow can list them at plan time), and the decode check of every one."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def image_paths(source: str | Path) -> list[Path]:
    """The images a ``segment.images`` value names: a folder's image files, or a list file's paths, in order."""
    source = Path(source)
    if source.is_dir():
        paths = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise ValueError(f"segment.images {source}: the folder holds no image files (expected "
                             f"{', '.join(IMAGE_SUFFIXES)})")
        return paths
    if not source.is_file():
        raise ValueError(f"segment.images {source}: no such folder or list file (expected a folder of images or a "
                         f"text file with one image path per line)")
    lines = [line.strip() for line in source.read_text(encoding="utf-8").splitlines()]
    paths = [p if p.is_absolute() else source.parent / p for p in (Path(line) for line in lines if line)]
    if not paths:
        raise ValueError(f"segment.images {source}: the list file names no images (one path per line)")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"segment.images {source}: {len(missing)} listed images do not exist, e.g. {missing[:5]}")
    return paths


def check_images(paths: list[Path]) -> None:
    """Decode every image fully; raise naming every file that is not a readable image."""
    bad = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.load()
        except Exception as error:  # PIL raises several kinds for corrupt, truncated or non-image files
            bad.append(f"{path} ({error.__class__.__name__})")
    if bad:
        raise ValueError(f"{len(bad)} of {len(paths)} files are not readable images: {bad[:10]}"
                         f"{' ...' if len(bad) > 10 else ''}")
