"""The HDF5 CAM store against float32 .npy: bytes per image, write time per gzip level, time to read one image's CAMs.

Synthetic CAMs shaped like real ones: a stride-16 map of smooth noise (coarse blobs plus finer detail), ReLU'd so that
objects cover part of the image, bilinearly upsampled to stride 4 and to full size, each class normalised by its max
(as make_cams does). Two sizes: VOC (500 x 375, 3 classes) and the demo world (128 x 128, 2 classes).

Prints, measured in this run, for each gzip level: store bytes per image / float32 .npy bytes per image (``keys``,
``cam`` and ``high_res`` each saved as .npy, IRNet's layout without the pickle) and write ms per image; then, at the
default level, the median ms to read one image's high-res CAMs from an open store (targets: <= 40 %, <= 5 ms).

    .venv/bin/python bench/bench_cam_store.py [--images 40] [--levels 0 1 2 3 4 6 9]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from clims_core.io.cam_store import DEFAULT_COMPRESSION_LEVEL, CamStore, CamStoreWriter, stride_shape

SIZES = {"voc": (375, 500, 3), "demo": (128, 128, 2)}  # height, width, classes


def synthetic_cams(rng: np.random.Generator, height: int, width: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(keys, cam, high_res)`` float32, smooth and mostly zero like real max-normalised CAMs."""
    h16, w16 = -(-height // 16), -(-width // 16)
    coarse = torch.from_numpy(rng.standard_normal((1, k, max(2, h16 // 4), max(2, w16 // 4)), dtype=np.float32))
    fine = torch.from_numpy(rng.standard_normal((1, k, h16, w16), dtype=np.float32))
    stride16 = F.interpolate(coarse, size=(h16, w16), mode="bicubic", align_corners=False) + 0.3 * fine
    stride16 = F.relu(stride16 - 0.5)
    high = F.interpolate(stride16, size=(height, width), mode="bilinear", align_corners=False)[0]
    cam = F.interpolate(stride16, size=stride_shape(height, width), mode="bilinear", align_corners=False)[0]
    scale = high.amax(dim=(1, 2), keepdim=True) + 1e-5
    keys = np.sort(rng.choice(20, k, replace=False))
    return keys, (cam / scale).numpy(), (high / scale).numpy()


def npy_bytes(*arrays: np.ndarray) -> int:
    total = 0
    for array in arrays:
        buffer = io.BytesIO()
        np.save(buffer, array)
        total += buffer.getbuffer().nbytes
    return total


def measure(size: str, n_images: int, levels: list[int], work: Path) -> dict:
    height, width, k = SIZES[size]
    rng = np.random.default_rng(0)
    images = [synthetic_cams(rng, height, width, k) for _ in range(n_images)]
    npy = sum(npy_bytes(keys.astype(np.int64), cam, high) for keys, cam, high in images) / n_images
    zero_share = float(np.mean([(high == 0).mean() for _, _, high in images]))
    per_level = {}
    for level in levels:
        path = work / f"{size}-{level}.h5"
        start = time.perf_counter()
        with CamStoreWriter(path, {"bench": size}, "0" * 64, compression_level=level) as writer:
            for i, (keys, cam, high) in enumerate(images):
                writer.write(f"img{i:05d}", keys, cam, high)
        write_ms = 1000 * (time.perf_counter() - start) / n_images
        per_level[level] = {"ratio": path.stat().st_size / n_images / npy, "write_ms": write_ms}
    path = work / f"{size}-{DEFAULT_COMPRESSION_LEVEL}.h5"
    if DEFAULT_COMPRESSION_LEVEL not in per_level:
        with CamStoreWriter(path, {"bench": size}, "0" * 64) as writer:
            for i, (keys, cam, high) in enumerate(images):
                writer.write(f"img{i:05d}", keys, cam, high)
    store = CamStore(path)
    store.read("img00000")  # open the file; the read time is per image from an open store
    read_ms = []
    for _ in range(3):
        for i in range(n_images):
            start = time.perf_counter()
            store.read(f"img{i:05d}")
            read_ms.append(1000 * (time.perf_counter() - start))
    store.close()
    ratio = path.stat().st_size / n_images / npy
    return {"npy_kib": npy / 1024, "zero_share": zero_share, "levels": per_level, "ratio": ratio,
            "read_ms": statistics.median(read_ms), "read_ms_p90": float(np.percentile(read_ms, 90))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--levels", type=int, nargs="+", default=[0, 1, 2, 3, 4, 6, 9])
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench-cam-store-") as work:
        for size in SIZES:
            height, width, k = SIZES[size]
            result = measure(size, args.images, args.levels, Path(work))
            print(f"\n{size}: {k} classes, {width} x {height} px, {args.images} images; float32 .npy "
                  f"{result['npy_kib']:.0f} KiB/image; {100 * result['zero_share']:.0f}% of high-res values are 0")
            print("  gzip level   store/npy   write ms/image")
            for level, entry in result["levels"].items():
                print(f"  {level:>10}   {100 * entry['ratio']:8.1f}%   {entry['write_ms']:14.2f}")
            print(f"  default level {DEFAULT_COMPRESSION_LEVEL}: store/npy {100 * result['ratio']:.1f}% (target <= 40%), "
                  f"read one image {result['read_ms']:.2f} ms median, {result['read_ms_p90']:.2f} ms p90 (target <= 5 ms)")


if __name__ == "__main__":
    main()
