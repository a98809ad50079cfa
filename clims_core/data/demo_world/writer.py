"""Files of the demo world in the VOC layout (and the captions corpus), the same reader serves it and PASCAL VOC.

Writers run inside the world's temporary folder (the whole folder is replaced at the end), so plain writes suffice
here; every output is a deterministic function of its inputs so equal seeds give equal bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from clims_core.data.demo_world.scene import InstanceRecord, SceneResult
from clims_core.io.masks import save_mask

VOC = "VOC"
IMAGES, CLASS_MASKS, STUFF_MASKS, ANNOTATIONS, LISTS = "JPEGImages", "SegmentationClass", "SegmentationStuff", "Annotations", "ImageSets/Segmentation"
CAPTIONS, CAPTION_IMAGES, CAPTIONS_TSV = "captions", "images", "captions.tsv"


def make_folders(root: Path) -> None:
    for folder in (IMAGES, CLASS_MASKS, STUFF_MASKS, ANNOTATIONS, LISTS):
        (root / VOC / folder).mkdir(parents=True, exist_ok=True)
    (root / CAPTIONS / CAPTION_IMAGES).mkdir(parents=True, exist_ok=True)


def annotation_xml(image_id: str, size: int, instances: list[InstanceRecord], segmented: bool,
                   height: int | None = None, folder: str = "demo_world", database: str = "CLIMS demo world") -> str:
    """A VOC annotation: one <object> per visible instance, boxes over its visible pixels, 1-based. ``size`` is the
    width, and the height too unless ``height`` says another (the VOC-shaped stand-in's images are not square)."""
    objects = "".join(
        "\t<object>\n"
        f"\t\t<name>{inst.name}</name>\n"
        "\t\t<pose>Unspecified</pose>\n"
        f"\t\t<truncated>{int(inst.truncated)}</truncated>\n"
        f"\t\t<occluded>{int(inst.occluded)}</occluded>\n"
        "\t\t<difficult>0</difficult>\n"
        "\t\t<bndbox>\n"
        f"\t\t\t<xmin>{inst.bbox[0]}</xmin>\n\t\t\t<ymin>{inst.bbox[1]}</ymin>\n"
        f"\t\t\t<xmax>{inst.bbox[2]}</xmax>\n\t\t\t<ymax>{inst.bbox[3]}</ymax>\n"
        "\t\t</bndbox>\n"
        "\t</object>\n"
        for inst in instances
    )
    return (
        "<annotation>\n"
        f"\t<folder>{folder}</folder>\n"
        f"\t<filename>{image_id}.jpg</filename>\n"
        f"\t<source>\n\t\t<database>{database}</database>\n\t</source>\n"
        f"\t<size>\n\t\t<width>{size}</width>\n\t\t<height>{size if height is None else height}</height>\n"
        "\t\t<depth>3</depth>\n\t</size>\n"
        f"\t<segmented>{int(segmented)}</segmented>\n"
        f"{objects}"
        "</annotation>\n"
    )


def save_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    Image.fromarray(image).save(path, format="JPEG", quality=quality)


def write_scene(root: Path, image_id: str, scene: SceneResult, with_mask: bool, quality: int) -> None:
    """JPEG, stuff mask, annotation XML, and the class mask when the image is pixel-labeled (train, val)."""
    voc = root / VOC
    save_jpeg(voc / IMAGES / f"{image_id}.jpg", scene.image, quality)
    if with_mask:
        save_mask(voc / CLASS_MASKS / f"{image_id}.png", scene.class_mask)
    save_mask(voc / STUFF_MASKS / f"{image_id}.png", scene.stuff_mask)
    xml = annotation_xml(image_id, scene.image.shape[0], scene.instances, with_mask)
    (voc / ANNOTATIONS / f"{image_id}.xml").write_text(xml, encoding="utf-8")


def write_caption_image(root: Path, image_id: str, image: np.ndarray, quality: int) -> None:
    save_jpeg(root / CAPTIONS / CAPTION_IMAGES / f"{image_id}.jpg", image, quality)


def write_list(root: Path, split: str, ids: list[str]) -> None:
    (root / VOC / LISTS / f"{split}.txt").write_text("".join(f"{i}\n" for i in sorted(ids)), encoding="utf-8")


def write_captions(root: Path, pairs: list[tuple[str, str]]) -> None:
    """``id<TAB>caption`` per line, UTF-8, in id order."""
    lines = "".join(f"{image_id}\t{caption}\n" for image_id, caption in sorted(pairs))
    (root / CAPTIONS / CAPTIONS_TSV).write_text(lines, encoding="utf-8")
