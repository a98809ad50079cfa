"""Reading a VOC-layout dataset folder: split lists, images, masks and image-level labels, with named problems.

Works for PASCAL VOC 2012 (+ SBD's SegmentationClassAug and a train_aug list), the demo world, and any dataset laid out
the same way with its own class list. Nothing here decides what to do about bad input: each check returns a
:class:`Problem` naming the file, and the caller (``prepare_data``) stops or skips.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from clims_core.io.masks import IGNORE_INDEX, load_mask

IMAGE_DIR = "JPEGImages"
ANNOTATION_DIR = "Annotations"
STUFF_DIR = "SegmentationStuff"


@dataclass(frozen=True)
class Problem:
    """One bad input: which image, which file, what is wrong."""

    split: str
    image_id: str
    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason} (split {self.split}, id {self.image_id})"


@dataclass
class ImageRecord:
    """What the manifest keeps of one image."""

    image_id: str
    height: int
    width: int
    labels: list[int]  # multi-hot over the foreground classes
    label_source: str  # "annotation" (XML) or the mask folder the labels were read from
    mask: str | None  # mask path relative to the root, when there is one
    problems: list[Problem] = field(default_factory=list)


class VocDataset:
    """A VOC-layout folder with a class list from the config."""

    def __init__(self, root: str | Path, classes: list[str], mask_dirs: list[str] | tuple[str, ...] = ("SegmentationClass", "SegmentationClassAug")):
        self.root = Path(root)
        self.classes = list(classes)
        self.class_index = {name: i for i, name in enumerate(self.classes)}
        self.mask_dirs = list(mask_dirs)

    def image_path(self, image_id: str) -> Path:
        return self.root / IMAGE_DIR / f"{image_id}.jpg"

    def annotation_path(self, image_id: str) -> Path:
        return self.root / ANNOTATION_DIR / f"{image_id}.xml"

    def stuff_path(self, image_id: str) -> Path:
        return self.root / STUFF_DIR / f"{image_id}.png"

    def mask_path(self, image_id: str) -> Path | None:
        """The first mask found in ``mask_dirs`` order (VOC's SegmentationClass before SBD's), or None."""
        for folder in self.mask_dirs:
            candidate = self.root / folder / f"{image_id}.png"
            if candidate.is_file():
                return candidate
        return None

    def read_split(self, list_file: str | Path) -> list[str]:
        """Ids of a split list (one per line; VOC's Main lists' extra columns are ignored); duplicates removed, order kept."""
        path = self.root / list_file
        if not path.is_file():
            raise FileNotFoundError(f"{path}: split list not found (expected one image id per line)")
        ids = [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return list(dict.fromkeys(ids))

    def xml_labels(self, path: Path) -> tuple[list[str], str | None]:
        """Object names of a VOC annotation file, or an error reason."""
        try:
            tree = ElementTree.parse(path)
        except ElementTree.ParseError as error:
            return [], f"annotation XML cannot be parsed ({error})"
        names = [(obj.findtext("name") or "").strip() for obj in tree.getroot().iter("object")]
        return names, None

    def read_record(self, split: str, image_id: str, require_mask: bool) -> ImageRecord:
        """Check one image and collect its size, labels and mask; problems are listed, never raised."""
        record = ImageRecord(image_id, 0, 0, [0] * len(self.classes), "", None)

        def problem(path: Path, reason: str) -> ImageRecord:
            record.problems.append(Problem(split, image_id, str(path), reason))
            return record

        image_path = self.image_path(image_id)
        if not image_path.is_file():
            return problem(image_path, "image listed in the split but missing on disk")
        try:
            with Image.open(image_path) as image:
                image.load()  # full decode: catches truncated and corrupt files
                record.width, record.height = image.size
        except (OSError, SyntaxError, ValueError) as error:
            return problem(image_path, f"image cannot be decoded ({error})")

        mask_path = self.mask_path(image_id)
        mask_values: np.ndarray | None = None
        if mask_path is not None:
            try:
                mask = load_mask(mask_path)
            except (OSError, ValueError, SyntaxError) as error:
                return problem(mask_path, f"mask cannot be read ({error})")
            if mask.shape != (record.height, record.width):
                return problem(mask_path, f"mask size {mask.shape[1]}x{mask.shape[0]} differs from the image's {record.width}x{record.height}")
            mask_values = np.unique(mask)
            bad = [int(v) for v in mask_values if v != IGNORE_INDEX and v > len(self.classes)]
            if bad:
                return problem(mask_path, f"label id(s) {bad} outside the class list (expected 0, 1..{len(self.classes)} or {IGNORE_INDEX})")
            record.mask = str(mask_path.relative_to(self.root))
        elif require_mask:
            return problem(self.root / self.mask_dirs[0] / f"{image_id}.png", f"mask missing (split {split} is pixel-labeled; searched {self.mask_dirs})")

        annotation = self.annotation_path(image_id)
        if annotation.is_file():
            names, error = self.xml_labels(annotation)
            if error:
                return problem(annotation, error)
            unknown = sorted({name for name in names if name not in self.class_index})
            if unknown:
                return problem(annotation, f"class name(s) {unknown} not in the class list {self.classes}")
            indices = {self.class_index[name] for name in names}
            record.label_source = "annotation"
        elif mask_values is not None:
            indices = {int(v) - 1 for v in mask_values if 0 < v != IGNORE_INDEX}
            record.label_source = str(Path(record.mask).parent)
        else:
            return problem(annotation, "no image-level labels: neither an annotation XML nor a mask")
        if not indices:
            return problem(annotation if record.label_source == "annotation" else mask_path, "image has no labels (no foreground class)")
        record.labels = [int(i in indices) for i in range(len(self.classes))]
        return record
