"""The pseudo-mask folder: palette PNGs with 255 kept, the index, shard parts merged into the unsharded index."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from clims_core.io.masks import load_mask, save_mask, voc_colormap
from clims_core.data.shards import shard_ids
from clims_core.refine.mask_folder import (MaskFolder, index_document, mask_relpath, mask_stats, merge_parts,
                                           write_index)

CLASSES = ["cat", "dog", "train"]


def test_mask_stats_count_ignored_pixels_apart():
    mask = np.array([[0, 1, 2], [3, 255, 0]], dtype=np.uint8)
    stats = mask_stats(mask)
    assert stats == {"pixels": 6, "background": 2, "foreground": 3, "ignored": 1}


def test_palette_and_ignore_round_trip(tmp_path):
    mask = np.zeros((5, 7), dtype=np.uint8)
    mask[1:3, 2:5] = 3
    mask[4] = 255
    path = tmp_path / mask_relpath("img1")
    save_mask(path, mask)
    with Image.open(path) as image:
        assert image.mode == "P"
        palette = np.array(image.getpalette()).reshape(-1, 3)
        assert np.array_equal(palette[:256], voc_colormap())
        assert tuple(palette[255]) == (224, 224, 192) and tuple(palette[3]) == (128, 128, 0)
    assert np.array_equal(load_mask(path), mask)


def write_folder(folder, ids, shard=0, shards=1, part=None):
    stats = {"pixels": 0}
    for image_id in shard_ids(ids, shard, shards):
        mask = np.full((3, 4), int(image_id[1:]) % 4, dtype=np.uint8)
        save_mask(folder / mask_relpath(image_id), mask)
        stats = {k: stats.get(k, 0) + v for k, v in mask_stats(mask).items()}
    document = index_document("train_aug", shard_ids(ids, shard, shards), CLASSES, stats, shard, shards,
                              method="cam", config={"bg_thres": 0.25})
    write_index(part or folder / "index.json", document)


def test_merged_parts_equal_the_unsharded_index(tmp_path):
    ids = [f"i{n}" for n in range(11)]
    write_folder(tmp_path / "whole", ids)
    parts = []
    for shard in range(3):
        parts.append(tmp_path / "sharded" / "shards" / f"{shard + 1}-of-3.json")
        write_folder(tmp_path / "sharded", ids, shard, 3, parts[-1])
    merge_parts(list(reversed(parts)), tmp_path / "sharded" / "index.json")  # order of the parts does not matter
    assert (tmp_path / "sharded" / "index.json").read_bytes() == (tmp_path / "whole" / "index.json").read_bytes()
    folder = MaskFolder.load(tmp_path / "sharded" / "index.json")
    assert folder.ids == ids and folder.split == "train_aug" and folder.classes == CLASSES
    assert folder.load_mask("i7").tolist() == [[3] * 4] * 3
    assert folder.index["stats"]["pixels"] == 11 * 12


def test_merge_refuses_parts_of_different_runs_and_missing_masks(tmp_path):
    ids = [f"i{n}" for n in range(6)]
    parts = [tmp_path / "shards" / f"{s + 1}-of-2.json" for s in range(2)]
    for shard in range(2):
        write_folder(tmp_path, ids, shard, 2, parts[shard])
    other = json.loads(parts[1].read_text())
    other["config"] = {"bg_thres": 0.3}
    parts[1].write_text(json.dumps(other))
    with pytest.raises(ValueError, match=r"differ in \['config'\]"):
        merge_parts(parts, tmp_path / "index.json")
    other["config"] = {"bg_thres": 0.25}
    parts[1].write_text(json.dumps(other))
    (tmp_path / mask_relpath("i3")).unlink()
    with pytest.raises(ValueError, match="missing"):
        merge_parts(parts, tmp_path / "index.json")
    with pytest.raises(ValueError, match="2 distinct shards"):
        merge_parts([parts[0], parts[0]], tmp_path / "index.json")
    assert not (tmp_path / "index.json").exists()


def test_a_part_is_not_a_folder_index(tmp_path):
    write_folder(tmp_path, ["a1", "a2"], 0, 2, tmp_path / "part.json")
    with pytest.raises(ValueError, match="part"):
        MaskFolder.load(tmp_path / "part.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="lacks"):
        MaskFolder.load(tmp_path / "bad.json")
