"""``generate_world``: plan every split, render the images (in parallel when asked), write the folder atomically.

Each image is drawn from its own generator seeded by (seed, split, index), and the per-split decisions (stuff quotas,
the labeled subset, the captions' kinds) from per-split generators, so the bytes written depend on the settings only,
never on ``workers``.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from clims_core.data.demo_world.captions import isolated_object_caption, isolated_stuff_caption, scene_caption
from clims_core.data.demo_world.isolated import render_isolated_object, render_isolated_stuff
from clims_core.data.demo_world.plan import CAPTION_KINDS, LABELED_SUBSET, ImagePlan, image_streams, plan_images, split_stream
from clims_core.data.demo_world.scene import render_scene
from clims_core.data.demo_world.settings import DemoWorldSettings, validate_settings
from clims_core.data.demo_world.statistics import RenderRecord, compute_statistics
from clims_core.data.demo_world.stuff import world_bank
from clims_core.data.demo_world.writer import make_folders, write_caption_image, write_captions, write_list, write_scene
from clims_core.io.atomic import atomic_directory, write_json

SPLIT_CODES = {"train_aug": 1, "val": 2, "captions": 3}
ID_PREFIX = {"train_aug": "w", "val": "v", "captions": "c"}
RENDER_STREAM = 1
CHUNK = 32


@dataclass(frozen=True)
class _Task:
    """One image to draw: a scene (from its plan) or an isolated object or stuff patch."""

    split: str
    index: int
    kind: str  # scene, isolated_object, isolated_stuff
    plan: ImagePlan  # scene: the plan; isolated: the one class (objects) or stuff name (stuff)
    with_mask: bool = False

    @property
    def image_id(self) -> str:
        return image_id(self.split, self.index)


def image_id(split: str, index: int) -> str:
    """``w000012`` (train_aug), ``v000003`` (val), ``c000100`` (captions): never overlapping."""
    return f"{ID_PREFIX[split]}{index:06d}"


def labeled_subset(settings: DemoWorldSettings) -> list[int]:
    """Indices of train_aug that form `train` (pixel-labeled), like VOC's train inside train_aug."""
    n = round(settings.labeled_fraction * settings.n_train_aug)
    rng = split_stream(settings.seed, SPLIT_CODES["train_aug"], LABELED_SUBSET)
    return sorted(int(i) for i in rng.permutation(settings.n_train_aug)[:n])


def plan_tasks(settings: DemoWorldSettings) -> list[_Task]:
    """Every image of the world, in id order per split: train_aug, val, captions."""
    labeled = set(labeled_subset(settings))
    tasks = []
    for split, n in (("train_aug", settings.n_train_aug), ("val", settings.n_val)):
        plans = plan_images(settings, SPLIT_CODES[split], list(range(n)))
        tasks.extend(_Task(split, i, "scene", plan, split == "val" or i in labeled) for i, plan in enumerate(plans))

    code, n = SPLIT_CODES["captions"], settings.n_captions
    rng = split_stream(settings.seed, code, CAPTION_KINDS)
    order = [int(i) for i in rng.permutation(n)]
    n_isolated = round(settings.isolated_fraction * n)
    n_objects = (n_isolated + 1) // 2
    kinds: dict[int, tuple[str, ImagePlan]] = {}
    objects = [settings.classes[k % len(settings.classes)] for k in rng.permutation(n_objects)]
    stuffs = [settings.stuff_classes[k % len(settings.stuff_classes)] for k in rng.permutation(n_isolated - n_objects)]
    for index, name in zip(order[:n_objects], objects):
        kinds[index] = ("isolated_object", ImagePlan((name,), ()))
    for index, name in zip(order[n_objects:n_isolated], stuffs):
        kinds[index] = ("isolated_stuff", ImagePlan((), (name,)))
    scene_indices = sorted(order[n_isolated:])
    for index, plan in zip(scene_indices, plan_images(settings, code, scene_indices)):
        kinds[index] = ("scene", plan)
    tasks.extend(_Task("captions", i, *kinds[i]) for i in range(n))
    return tasks


_WORKER: tuple[DemoWorldSettings, Path] | None = None


def _init_worker(settings: DemoWorldSettings, root: Path) -> None:
    global _WORKER
    _WORKER = (settings, root)


def _render(task: _Task) -> RenderRecord:
    """Draw and write one image; return what the statistics need."""
    assert _WORKER is not None, "worker not initialised"
    settings, root = _WORKER
    bank = world_bank(settings)
    rng = image_streams(settings.seed, SPLIT_CODES[task.split], task.index)[RENDER_STREAM]
    size = settings.image_size
    if task.kind == "isolated_object":
        name = task.plan.objects[0]
        result = render_isolated_object(name, size, rng, bank)
        write_caption_image(root, task.image_id, result.image, settings.jpeg_quality)
        return RenderRecord(task.image_id, task.split, task.kind, (name,), (), (), isolated_object_caption(name, result.count))
    if task.kind == "isolated_stuff":
        name = task.plan.stuff[0]
        result = render_isolated_stuff(name, size, rng, bank)
        write_caption_image(root, task.image_id, result.image, settings.jpeg_quality)
        return RenderRecord(task.image_id, task.split, task.kind, (), (name,), (), isolated_stuff_caption(name))

    scene = render_scene(task.plan, settings, rng, bank)
    present = {inst.name for inst in scene.instances}
    classes = tuple(c for c in settings.classes if c in present)
    stuff_ids = set(scene.stuff_mask.ravel().tolist())
    stuff = tuple(s for i, s in enumerate(settings.stuff_classes) if i + 1 in stuff_ids)
    instances = tuple((inst.name, inst.visible_px, inst.full_px, inst.part_px) for inst in scene.instances)
    caption = None
    if task.split == "captions":
        write_caption_image(root, task.image_id, scene.image, settings.jpeg_quality)
        caption = scene_caption([inst.name for inst in scene.instances], list(stuff), rng)
    else:
        write_scene(root, task.image_id, scene, task.with_mask, settings.jpeg_quality)
    return RenderRecord(task.image_id, task.split, "scene", classes, stuff, instances, caption)


def _run(tasks: list[_Task], settings: DemoWorldSettings, root: Path, workers: int, progress: bool) -> list[RenderRecord]:
    bar = tqdm(total=len(tasks), desc="demo world", unit="img", disable=not progress, dynamic_ncols=True)
    try:
        if workers <= 1:
            _init_worker(settings, root)
            records = []
            for task in tasks:
                records.append(_render(task))
                bar.update()
            return records
        with multiprocessing.get_context().Pool(workers, initializer=_init_worker, initargs=(settings, root)) as pool:
            records = []
            for record in pool.imap(_render, tasks, chunksize=CHUNK):
                records.append(record)
                bar.update()
            return records
    finally:
        bar.close()


def generate_world(settings: DemoWorldSettings, out_dir: Path, workers: int = 1, progress: bool = True) -> dict:
    """Write the world under out_dir (atomically: build in a temp dir, then replace) and return the statistics dict."""
    validate_settings(settings)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"generate_world: 'workers' must be an integer >= 1, got {workers!r}")
    workers = min(workers, os.cpu_count() or 1, 64)
    tasks = plan_tasks(settings)
    with atomic_directory(out_dir) as root:
        make_folders(root)
        records = _run(tasks, settings, root, workers, progress)
        by_split: dict[str, list[RenderRecord]] = {"train_aug": [], "val": [], "captions": []}
        for record in records:
            by_split[record.split].append(record)
        labeled = {image_id("train_aug", i) for i in labeled_subset(settings)}
        splits = {
            "train_aug": by_split["train_aug"],
            "train": [r for r in by_split["train_aug"] if r.image_id in labeled],
            "val": by_split["val"],
        }
        for name, split_records in splits.items():
            write_list(root, name, [r.image_id for r in split_records])
        write_captions(root, [(r.image_id, r.caption or "") for r in by_split["captions"]])
        statistics = compute_statistics(settings, splits, by_split["captions"])
        write_json(root / "statistics.json", statistics)
    return statistics
