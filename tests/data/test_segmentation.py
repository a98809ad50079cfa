"""Segmentation data: joint augmentation keeps image and mask aligned, seeded sampling, the pseudo-mask index."""

from __future__ import annotations

import json
from itertools import islice

import numpy as np
import pytest
from PIL import Image

from clims_core.data.manifest import Manifest
from clims_core.data.segmentation import (PAD_COLOUR, AugmentSettings, EvalDataset, PassSampler, PseudoMaskIndex,
                                          SegmentationDataset, image_level_ids, joint_augment, split_paths)
from clims_core.io.masks import IGNORE_INDEX, save_mask

COLOURS = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], dtype=np.uint8)


def _blocky(width: int = 40, height: int = 30) -> tuple[Image.Image, np.ndarray]:
    """An image whose colour tells the label: 10 x 10 blocks of labels 0..2."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 3, (height // 10, width // 10))
    mask = np.kron(blocks, np.ones((10, 10), dtype=np.int64)).astype(np.uint8)
    return Image.fromarray(COLOURS[mask]), mask


def test_joint_augment_keeps_image_and_mask_aligned():
    image, mask = _blocky()
    settings = AugmentSettings(crop=24, base_size=40, scale_range=(0.7, 1.6), flip=True)
    for seed in range(20):
        array, out = joint_augment(image, mask, settings, np.random.default_rng(seed))
        assert array.shape == (24, 24, 3) and out.shape == (24, 24)
        inside = out != IGNORE_INDEX
        # away from block borders, a pixel's colour is the colour of its label
        pure = np.all(np.isin(array, (0, 255)), axis=-1) & inside
        assert pure.sum() > 50
        assert np.array_equal(array[pure], COLOURS[out[pure]])


def test_padding_is_ignore_in_the_mask_and_the_mean_colour_in_the_image():
    image, mask = _blocky()
    settings = AugmentSettings(crop=64, base_size=40, scale_range=(1.0, 1.0), flip=False)
    array, out = joint_augment(image, mask, settings, np.random.default_rng(0))
    assert (out == IGNORE_INDEX).sum() == 64 * 64 - 40 * 30
    assert np.all(array[out == IGNORE_INDEX] == PAD_COLOUR)


def test_dataset_is_seeded_by_pass_and_index(tmp_path):
    image, mask = _blocky()
    image.save(tmp_path / "a.jpg")
    save_mask(tmp_path / "a.png", mask)
    dataset = SegmentationDataset([tmp_path / "a.jpg"], [tmp_path / "a.png"], 2,
                                  AugmentSettings(crop=24, base_size=40, scale_range=(0.5, 2.0)), seed=3)
    first, again, other_pass = dataset[0, 0], dataset[0, 0], dataset[1, 0]
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other_pass[0])
    assert first[0].dtype.is_floating_point and 0 <= float(first[0].min()) and float(first[0].max()) <= 1
    unlabeled = SegmentationDataset([tmp_path / "a.jpg"], None, 2, AugmentSettings(crop=24, base_size=40))
    assert (unlabeled[0, 0][1] == IGNORE_INDEX).all()


def test_masks_must_fit_their_image_and_the_classes(tmp_path):
    image, mask = _blocky()
    image.save(tmp_path / "a.jpg")
    save_mask(tmp_path / "small.png", mask[:10])
    save_mask(tmp_path / "bad.png", np.full_like(mask, 7))
    settings = AugmentSettings(crop=24, base_size=40)
    with pytest.raises(ValueError, match="small.png: mask is 40 x 10 px but its image is 40 x 30"):
        SegmentationDataset([tmp_path / "a.jpg"], [tmp_path / "small.png"], 2, settings)[0, 0]
    with pytest.raises(ValueError, match="bad.png: label 7 outside 0..2"):
        EvalDataset([tmp_path / "a.jpg"], [tmp_path / "bad.png"], 2)[0]


def test_pass_sampler_permutes_each_pass_and_is_reproducible():
    keys = list(islice(iter(PassSampler(5, seed=1)), 15))
    assert [k[0] for k in keys] == [0] * 5 + [1] * 5 + [2] * 5
    for p in range(3):
        assert sorted(k[1] for k in keys[5 * p:5 * p + 5]) == list(range(5))
    orders = [tuple(k[1] for k in keys[5 * p:5 * p + 5]) for p in range(3)]
    assert len(set(orders)) > 1  # a fresh permutation per pass
    assert keys == list(islice(iter(PassSampler(5, seed=1)), 15))
    assert keys != list(islice(iter(PassSampler(5, seed=1, stream=1)), 15))


def test_pass_sampler_batches_from_any_start_continue_the_key_sequence():
    sampler = PassSampler(5, seed=1)
    keys = list(islice(iter(sampler), 15))
    batches = list(islice(sampler.batches(3), 5))
    assert [k for b in batches for k in b] == keys  # batches span passes (batch 2 takes pass 0's last and pass 1's)
    assert list(islice(sampler.batches(3, start=3), 2)) == batches[3:]  # a resumed run reads what it would have


def test_splits_and_image_level_set(voc_tree, tmp_path):
    from clims_core.stages.prepare_data import PrepareSettings, run

    run(PrepareSettings(root=voc_tree.root, classes=voc_tree.classes), tmp_path / "m.json")
    manifest = Manifest.load(tmp_path / "m.json")
    assert image_level_ids(manifest) == ["c", "d"]
    ids, images, masks = split_paths(manifest, "train", with_masks=True)
    assert ids == ["a", "b"] and all(p.is_file() for p in masks)
    with pytest.raises(ValueError, match="split train_aug: 1 images have no ground-truth mask"):
        split_paths(manifest, "train_aug", with_masks=True)


def test_pseudo_mask_index(tmp_path):
    (tmp_path / "masks").mkdir()
    index = {"split": "train_aug", "ids": ["a", "b"], "masks": {"a": "masks/a.png", "b": "masks/b.png"},
             "classes": ["cat", "dog"]}
    (tmp_path / "index.json").write_text(json.dumps(index))
    save_mask(tmp_path / "masks" / "b.png", np.zeros((4, 4), np.uint8))
    loaded = PseudoMaskIndex.load(tmp_path / "index.json")
    assert loaded.paths_for(["b"], ["cat", "dog"]) == [tmp_path / "masks" / "b.png"]
    with pytest.raises(ValueError, match=r"1 of 2 image-level images have no pseudo mask \(e.g. \['c'\]\)"):
        loaded.paths_for(["a", "c"], ["cat", "dog"])
    with pytest.raises(ValueError, match="pseudo masks are for classes"):
        loaded.paths_for(["a"], ["cat", "cow"])
    with pytest.raises(ValueError, match=r"1 pseudo-mask files listed in the index do not exist \(e.g. \['.*a.png"):
        loaded.paths_for(["a", "b"], ["cat", "dog"])
    (tmp_path / "bad.json").write_text('{"ids": []}')
    with pytest.raises(ValueError, match="bad.json: not a pseudo-mask index"):
        PseudoMaskIndex.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="missing.json: cannot read"):
        PseudoMaskIndex.load(tmp_path / "missing.json")
