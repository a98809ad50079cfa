"""Stage ``segment``: a trained segmentation run applied to the user's own images -> palette PNG masks and an index.

The images are a folder (its image files, sorted by name) or a text file with one image path per line (relative
paths from the file's folder). Every image is decoded before the network is loaded, so a file that is not an image
stops the stage with all such files named and nothing written. Predictions use ``seg.eval``'s scales, flip and
optional denseCRF. Writes ``masks/<name>.png`` (VOC palette; 0 background, 1..C the classes), optionally
``overlays/<name>.jpg`` (the image with the mask's colours blended in), and ``index.json``:
``{"run", "checkpoint_sha256", "classes", "images": [{"image", "mask", "overlay", "size", "classes"}]}``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clims_core.data.image_list import check_images, image_paths
from clims_core.io.atomic import atomic_directory, write_json
from clims_core.io.digest import sha256_file
from clims_core.io.predictions import PredictionSettings, write_predictions
from clims_core.models.segmentation import load_for_inference

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentSettings:
    prediction: PredictionSettings = PredictionSettings()
    overlays: bool = True  # as the schema's segment.overlays: users look at the blends first
    device: str = "auto"
    threads: int = 1


def output_names(paths: list[Path]) -> list[str]:
    """One file name per image: its stem, or, where stems repeat (a list across folders), stem + position."""
    stems = [p.stem for p in paths]
    repeated = {s for s, n in Counter(stems).items() if n > 1}
    return [f"{s}_{i}" if s in repeated else s for i, s in enumerate(stems)]


def run(settings: SegmentSettings, checkpoint_path: str | Path, source: str | Path, classes: list[str],
        out_dir: str | Path, run_name: str) -> dict[str, Any]:
    """Segment every image of ``source``; write the folder atomically; return the index."""
    start = time.perf_counter()
    paths = image_paths(source)
    check_images(paths)
    model, _, device = load_for_inference(checkpoint_path, classes, settings.device, settings.threads)
    with atomic_directory(out_dir) as tmp:
        entries = write_predictions(model, paths, output_names(paths), tmp, settings.prediction, device, classes,
                                    overlay_dir="overlays" if settings.overlays else None, desc=f"segment[{run_name}]")
        prediction = settings.prediction
        index = {"run": run_name, "checkpoint_sha256": sha256_file(checkpoint_path), "classes": list(classes),
                 "scales": list(prediction.scales), "flip": prediction.flip, "crf": prediction.crf is not None,
                 "images": entries, "seconds": round(time.perf_counter() - start, 2)}
        write_json(tmp / "index.json", index)
    log.info("segment %s: %d images in %.1f s -> %s", run_name, len(entries), index["seconds"], out_dir)
    return index


def settings_from_config(segment: dict[str, Any], seg_eval: dict[str, Any], densecrf: dict[str, Any] | None,
                         device: str, precision: str, threads: int) -> SegmentSettings:
    return SegmentSettings(PredictionSettings.from_config(seg_eval, densecrf, precision), overlays=segment["overlays"],
                           device=device, threads=threads)
