"""segment throughput vs the bare network forward on the same inputs, measured in one run.

A folder of the demo world's val images (128 px JPEGs) is segmented by a DeepLabV2 of the demo's size (ResNet-18 of
width 32 at output stride 8, 7 classes), (a) through the whole ``segment`` stage: listing, the decode check of every
image, loading the checkpoint, decode, whole-image prediction, palette PNG writing and the index, with and without
overlays; and (b) only the network's forward on the same pre-decoded image tensors, one image at a time as the stage
runs them.

On a shared machine the speed of the whole box drifts by tens of percent within a minute, which swamped a ratio of two
long runs. So the images are cut into chunks (4 folders of 100); each chunk is segmented and bare-forwarded back to
back, in an order that alternates, ``--repeats`` times; the ratio is the sum over chunks of each chunk's fastest
bare forward over the sum of its fastest stage run (noise only adds time, so the minimum is the best estimate of
either's cost). The stage's fixed cost per call (checking the folder, loading the checkpoint, the index) is paid once
per chunk, 4 times instead of once: the ratio is conservative (with 8 chunks of 50 it read 0.853 where 4 of 100
read 0.884 in the same hour). Target >= 0.85 (everything around the network costs
<= 15%).

    .venv/bin/python bench/bench_segment.py [--images 400] [--chunks 4] [--threads 2] [--repeats 3] [--jsonl x.jsonl]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clims_core.data.demo_world import DemoWorldSettings, generate_world
from clims_core.data.segmentation import to_tensor
from clims_core.io.checkpoint import save_checkpoint
from clims_core.models.backbone import BackboneSpec
from clims_core.models.deeplab import DeepLab, DeepLabSpec
from clims_core.models.segmentation import architecture_of
from clims_core.stages import segment


def demo_images(folder: Path, n: int) -> Path:
    """n val images of a demo world (128 px JPEGs) in one folder, as a user's own images would be."""
    settings = DemoWorldSettings(image_size=128, n_train_aug=40, labeled_fraction=0.25, n_val=n, n_captions=20)
    generate_world(settings, folder / "world", workers=2, progress=False)
    images = folder / "images"
    images.mkdir()
    for path in sorted((folder / "world" / "VOC" / "JPEGImages").glob("*.jpg"))[-n:]:
        path.rename(images / path.name)
    return images


def bare_forward(model: DeepLab, tensors: list[torch.Tensor]) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        for tensor in tensors:
            model(tensor[None])
    return time.perf_counter() - start


def chunk_folders(images: Path, n_chunks: int) -> list[list[Path]]:
    """The images split into ``n_chunks`` folders of links (sorted order), each a ``segment`` source of its own."""
    paths = sorted(images.glob("*.jpg"))
    chunks = []
    for index in range(n_chunks):
        folder = images.parent / f"chunk{index}"
        folder.mkdir()
        for path in paths[index::n_chunks]:
            (folder / path.name).symlink_to(path)
        chunks.append(sorted(folder.glob("*.jpg")))
    return chunks


def decoded(paths: list[Path]) -> list[torch.Tensor]:
    tensors = []
    for path in paths:
        with Image.open(path) as image:
            # contiguous, as the stage feeds its network (a permuted view would run another kernel path)
            tensors.append(to_tensor(np.array(image.convert("RGB"))))
    return tensors


def measure(settings: segment.SegmentSettings, checkpoint: Path, model: DeepLab, chunks: list[list[Path]],
            classes: list[str], out: Path, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """``repeats x chunks`` seconds of the stage and of the bare forward, each chunk's pair run back to back."""
    tensors = [decoded(paths) for paths in chunks]
    stage, bare = np.zeros((repeats, len(chunks))), np.zeros((repeats, len(chunks)))
    for repeat in range(repeats):
        for index, paths in enumerate(chunks):
            def run_stage() -> float:
                start = time.perf_counter()
                segment.run(settings, checkpoint, paths[0].parent, classes, out / f"{repeat}-{index}", "bench")
                return time.perf_counter() - start

            if (repeat + index) % 2 == 0:
                stage[repeat, index] = run_stage()
                bare[repeat, index] = bare_forward(model, tensors[index])
            else:
                bare[repeat, index] = bare_forward(model, tensors[index])
                stage[repeat, index] = run_stage()
    return stage, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jsonl", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = demo_images(tmp, args.images)
        chunks = chunk_folders(images, args.chunks)
        torch.manual_seed(0)
        model = DeepLab(DeepLabSpec(BackboneSpec(depth=18, width=32, strides=(2, 2, 2, 1), norm="batch"), 7,
                                    pretrained_strides=(2, 2, 2, 1))).eval()
        checkpoint = tmp / "model.pt"
        save_checkpoint(checkpoint, model.state_dict(), {}, 1, architecture=architecture_of(model))
        classes = ["aeroplane", "bird", "boat", "car", "person", "train"]
        warm = chunks[0][:20]  # warm-up of both (the first calls build the convolutions' kernels)
        bare_forward(model, decoded(warm))
        segment.run(segment.SegmentSettings(device="cpu", threads=args.threads, overlays=False), checkpoint,
                    chunks[0][0].parent, classes, tmp / "warm_out", "bench")
        rows = []
        for overlays in (False, True):
            settings = segment.SegmentSettings(device="cpu", threads=args.threads, overlays=overlays)
            stage, bare = measure(settings, checkpoint, model, chunks, classes, tmp / f"out{int(overlays)}",
                                  args.repeats)
            n = sum(len(paths) for paths in chunks)
            best_stage, best_bare = stage.min(0).sum(), bare.min(0).sum()
            rows.append({"images": n, "chunks": len(chunks), "overlays": overlays, "repeats": args.repeats,
                         "threads": args.threads, "stage_img_s": round(n / best_stage, 1),
                         "bare_img_s": round(n / best_bare, 1), "ratio": round(best_bare / best_stage, 3),
                         "ratio_per_repeat": [round(float(r), 3) for r in bare.sum(1) / stage.sum(1)],
                         "ratio_per_chunk_median": round(float(np.median(bare / stage)), 3)})
    for row in rows:
        print(f"segment{' + overlays' if row['overlays'] else ''}: {row['stage_img_s']} img/s, bare forward "
              f"{row['bare_img_s']} img/s, ratio {row['ratio']:.3f} (fastest of {row['repeats']} per chunk of "
              f"{row['chunks']}; whole repeats {row['ratio_per_repeat']}, median chunk pair "
              f"{row['ratio_per_chunk_median']}; {row['images']} images of 128 px)")
        if args.jsonl:
            with open(args.jsonl, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
