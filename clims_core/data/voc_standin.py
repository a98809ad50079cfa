"""A VOC-shaped stand-in dataset, generated: PASCAL VOC 2012 + SBD's layout, split sizes, image-size mix and class
list, with scenes from the demo world's renderer, so `config/voc12.yaml` can be rehearsed without the download.

What matches VOC: the folders (``JPEGImages``, ``Annotations``, ``SegmentationClass`` for train and val,
``SegmentationClassAug`` for train_aug as SBD's greyscale index PNGs, ``ImageSets/Segmentation/{train,val}.txt``,
``ImageSets/SegmentationAug/train_aug.txt``), the split sizes (10,582 / 1,464 / 1,449, ``train`` inside
``train_aug``, times ``scale``), the 20 class names in VOC order (mask index = VOC index) and the mix of image
sizes (long side 500, :data:`VOC_SIZE_MIX`). What does not: the content. Scenes are the demo world's, at 500 px and
cropped to each image's size, so only its six classes (aeroplane, bird, boat, car, person, train) ever appear and
the other 14 have no images. Results on it are meaningless; speed, memory and robustness at VOC's shapes are not.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from clims_core.data.demo_world.plan import image_streams, plan_images
from clims_core.data.demo_world.scene import InstanceRecord, render_scene
from clims_core.data.demo_world.settings import KNOWN_CLASSES, DemoWorldSettings
from clims_core.data.demo_world.stuff import world_bank
from clims_core.data.demo_world.writer import annotation_xml, save_jpeg
from clims_core.io.atomic import atomic_directory
from clims_core.io.masks import IGNORE_INDEX, save_mask

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
VOC_SPLIT_SIZES = {"train_aug": 10_582, "train": 1_464, "val": 1_449}
# (width, height, share): VOC 2012's common sizes, long side 500; approximate shares (500 x 375 is most of VOC).
VOC_SIZE_MIX = ((500, 375, 0.52), (375, 500, 0.16), (500, 333, 0.12), (333, 500, 0.04), (500, 334, 0.04),
                (500, 332, 0.03), (500, 400, 0.03), (500, 366, 0.02), (500, 281, 0.02), (500, 500, 0.02))
RENDER_SIZE = 500  # the square the scene is drawn at (VOC's long side), then cropped to the image's size
SPLIT_CODES = {"train_aug": 11, "val": 12}  # not the demo world's (1, 2): other draws
ID_YEAR = {"train_aug": 2008, "val": 2010}
LISTS = {"train_aug": "ImageSets/SegmentationAug/train_aug.txt", "train": "ImageSets/Segmentation/train.txt",
         "val": "ImageSets/Segmentation/val.txt"}


@dataclass(frozen=True)
class StandinSettings:
    scale: float = 1.0  # of VOC's split sizes (0.01: 106 / 15 / 14 images)
    seed: int = 0
    jpeg_quality: int = 92
    # Each split has at least this many images, so a small copy still fills one batch of the paper's sizes (CCT and
    # DeepLab take 10 pixel-labeled / pseudo-labeled images a step) without scaling train_aug up with it.
    min_images: int = 1
    # VOC's long side is 500; a smaller one shrinks every size of the mix alike (same aspect ratios), for a test that
    # runs voc12.yaml's path on a few images in seconds rather than minutes.
    long_side: int = RENDER_SIZE

    def __post_init__(self) -> None:
        if not 0 < self.scale <= 1:
            raise ValueError(f"voc stand-in scale: expected a number in (0, 1], got {self.scale!r}")
        if self.min_images < 1:
            raise ValueError(f"voc stand-in min_images: expected an integer >= 1, got {self.min_images!r}")
        if not 32 <= self.long_side <= RENDER_SIZE:
            raise ValueError(f"voc stand-in long_side: expected an integer in [32, {RENDER_SIZE}], "
                             f"got {self.long_side!r}")

    def split_sizes(self) -> dict[str, int]:
        return {split: max(self.min_images, round(n * self.scale)) for split, n in VOC_SPLIT_SIZES.items()}

    def world(self) -> DemoWorldSettings:
        sizes = self.split_sizes()
        return DemoWorldSettings(seed=self.seed, image_size=self.long_side, n_train_aug=sizes["train_aug"],
                                 labeled_fraction=sizes["train"] / sizes["train_aug"], n_val=sizes["val"],
                                 n_captions=0, classes=KNOWN_CLASSES, jpeg_quality=self.jpeg_quality)


def image_id(split: str, index: int) -> str:
    """VOC's form, ``2008_000012``; the years keep train_aug and val apart."""
    return f"{ID_YEAR[split]}_{index:06d}"


_SIZE_SHARES = np.array([share for *_, share in VOC_SIZE_MIX]) / sum(share for *_, share in VOC_SIZE_MIX)


def draw_size(rng: np.random.Generator, long_side: int = RENDER_SIZE) -> tuple[int, int]:
    """(height, width) drawn from :data:`VOC_SIZE_MIX`, scaled so that the long side is ``long_side``."""
    width, height, _ = VOC_SIZE_MIX[int(rng.choice(len(VOC_SIZE_MIX), p=_SIZE_SHARES))]
    return round(height * long_side / RENDER_SIZE), round(width * long_side / RENDER_SIZE)  # exact at 500


_VOC_INDEX = np.zeros(256, dtype=np.uint8)  # demo class index -> VOC class index (0 and 255 kept)
_VOC_INDEX[IGNORE_INDEX] = IGNORE_INDEX
for _i, _name in enumerate(KNOWN_CLASSES):
    _VOC_INDEX[_i + 1] = VOC_CLASSES.index(_name) + 1


def _cropped_instances(instances: list[InstanceRecord], mask: np.ndarray, y0: int, x0: int) -> list[InstanceRecord]:
    """The instances still visible in the crop, boxes moved into it (1-based, inclusive) and clipped."""
    height, width = mask.shape
    kept = []
    for inst in instances:
        xmin, ymin = max(inst.bbox[0] - x0, 1), max(inst.bbox[1] - y0, 1)
        xmax, ymax = min(inst.bbox[2] - x0, width), min(inst.bbox[3] - y0, height)
        index = VOC_CLASSES.index(inst.name) + 1
        if xmin > xmax or ymin > ymax or not (mask[ymin - 1:ymax, xmin - 1:xmax] == index).any():
            continue
        cut = (xmin, ymin, xmax, ymax) != (inst.bbox[0] - x0, inst.bbox[1] - y0, inst.bbox[2] - x0, inst.bbox[3] - y0)
        kept.append(replace(inst, bbox=(xmin, ymin, xmax, ymax), truncated=inst.truncated or cut))
    return kept


def _crop_origin(class_mask: np.ndarray, instances: list[InstanceRecord], height: int, width: int,
                 rng: np.random.Generator) -> tuple[int, int]:
    """A random crop window that keeps some object, as every VOC image has one: else the window centred on the
    largest instance's box (clamped into the square)."""
    side = class_mask.shape[0]  # the rendered square
    y0 = int(rng.integers(0, side - height + 1))
    x0 = int(rng.integers(0, side - width + 1))
    window = class_mask[y0:y0 + height, x0:x0 + width]
    if ((window > 0) & (window != IGNORE_INDEX)).any() or not instances:
        return y0, x0
    largest = max(instances, key=lambda inst: inst.visible_px)
    cy, cx = (largest.bbox[1] + largest.bbox[3]) // 2, (largest.bbox[0] + largest.bbox[2]) // 2
    return (min(max(cy - height // 2, 0), side - height), min(max(cx - width // 2, 0), side - width))


_WORKER: tuple[StandinSettings, DemoWorldSettings, Path, set[str]] | None = None


def _init_worker(settings: StandinSettings, root: Path, pixel_labeled: set[str]) -> None:
    global _WORKER
    _WORKER = (settings, settings.world(), root, pixel_labeled)


def _render(task: tuple[str, int, object]) -> str:
    """Draw, crop and write one image with its masks and annotation."""
    assert _WORKER is not None, "worker not initialised"
    settings, world, root, pixel_labeled = _WORKER
    split, index, plan = task
    code = SPLIT_CODES[split]
    _, render = image_streams(world.seed, code, index)
    scene = render_scene(plan, world, render, world_bank(world))
    crop_rng = np.random.default_rng([world.seed, code, index, 7])
    height, width = draw_size(crop_rng, settings.long_side)
    y0, x0 = _crop_origin(scene.class_mask, scene.instances, height, width, crop_rng)
    image = np.ascontiguousarray(scene.image[y0:y0 + height, x0:x0 + width])
    mask = _VOC_INDEX[scene.class_mask[y0:y0 + height, x0:x0 + width]]
    name = image_id(split, index)
    save_jpeg(root / "JPEGImages" / f"{name}.jpg", image, world.jpeg_quality)
    if split == "train_aug":  # SBD's masks: greyscale indices
        Image.fromarray(mask, mode="L").save(root / "SegmentationClassAug" / f"{name}.png", optimize=False)
    if split == "val" or name in pixel_labeled:  # VOC's own: palette PNGs
        save_mask(root / "SegmentationClass" / f"{name}.png", mask, atomic=False)
    instances = _cropped_instances(scene.instances, mask, y0, x0)
    xml = annotation_xml(name, width, instances, split == "val" or name in pixel_labeled, height=height,
                         folder="VOC2012", database="CLIMS VOC-shaped stand-in")
    (root / "Annotations" / f"{name}.xml").write_text(xml, encoding="utf-8")
    return name


def generate_standin(settings: StandinSettings, out_dir: str | Path, workers: int = 1, progress: bool = True
                     ) -> dict[str, int]:
    """Write the stand-in under ``out_dir`` (a VOC2012 folder: ``data.root``), atomically; return the split sizes."""
    world = settings.world()
    sizes = settings.split_sizes()
    train_aug = [image_id("train_aug", i) for i in range(sizes["train_aug"])]
    train = sorted(np.random.default_rng([settings.seed, 13]).choice(train_aug, sizes["train"], replace=False).tolist())
    val = [image_id("val", i) for i in range(sizes["val"])]
    tasks = [(split, i, plan) for split, n in (("train_aug", sizes["train_aug"]), ("val", sizes["val"]))
             for i, plan in enumerate(plan_images(world, SPLIT_CODES[split], list(range(n))))]
    workers = max(1, min(workers, os.cpu_count() or 1))
    with atomic_directory(Path(out_dir)) as root:
        for folder in ("JPEGImages", "Annotations", "SegmentationClass", "SegmentationClassAug",
                       "ImageSets/Segmentation", "ImageSets/SegmentationAug"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=len(tasks), desc="VOC stand-in", unit="img", disable=not progress, dynamic_ncols=True)
        initargs = (settings, root, set(train))
        if workers == 1:
            _init_worker(*initargs)
            for task in tasks:
                _render(task)
                bar.update()
        else:
            with multiprocessing.get_context().Pool(workers, initializer=_init_worker, initargs=initargs) as pool:
                for _ in pool.imap_unordered(_render, tasks, chunksize=8):
                    bar.update()
        bar.close()
        for split, ids in (("train_aug", train_aug), ("train", train), ("val", val)):
            (root / LISTS[split]).write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    return {"train_aug": len(train_aug), "train": len(train), "val": len(val)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a VOC-shaped stand-in dataset (VOC 2012 + SBD layout).")
    parser.add_argument("--out", type=Path, required=True, help="the VOC2012 folder to write (config data.root)")
    parser.add_argument("--scale", type=float, default=1.0, help="of VOC's split sizes 10,582 / 1,464 / 1,449")
    parser.add_argument("--min-images", type=int, default=1, help="at least this many images in each split")
    parser.add_argument("--long-side", type=int, default=RENDER_SIZE,
                        help="the images' long side (VOC's: 500); smaller shrinks every size of the mix alike")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    settings = StandinSettings(args.scale, args.seed, min_images=args.min_images, long_side=args.long_side)
    sizes = generate_standin(settings, args.out, args.workers)
    print(f"{args.out}: " + ", ".join(f"{split} {n}" for split, n in sizes.items()))


if __name__ == "__main__":
    main()
