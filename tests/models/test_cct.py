"""CCT's encoder, decoders and perturbations: shapes and what each perturbation does to the features."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from clims_core.models.backbone import BackboneSpec
from clims_core.models.cct import CCT, DEFAULT_DECODERS, KINDS, CctSpec, EncoderSpec, PerturbationSettings
from clims_core.models.cct import perturbations as P
from clims_core.models.cct.decoders import AuxiliaryDecoder, Guidance, Upsampler, icnr_
from clims_core.models.backbone import dilated_trunk

TINY = BackboneSpec(depth=18, width=8, norm="batch")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_encoder_output_stride_8_and_16():
    for stride, size in ((8, 8), (16, 4)):
        trunk = dilated_trunk(TINY, stride).eval()
        out = trunk(torch.rand(1, 3, 64, 64))[-1]
        assert out.shape[-2:] == (size, size)


def _dilations(layer: nn.Sequential) -> list[list[int]]:
    return [[m.dilation[0] for m in block.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
            for block in layer]


def test_dilation_keeps_the_pretrained_sampling_positions():
    # ImageNet weights (strides 2, 2, 2, 2) at output stride 8: torchvision's layer3 x2, layer4 x4; the conv that
    # carried the stride reads the previous grid
    imagenet = dilated_trunk(TINY, 8, (2, 2, 2, 2))
    assert _dilations(imagenet.layer3) == [[1, 2], [2, 2]] and _dilations(imagenet.layer4) == [[2, 4], [4, 4]]
    assert imagenet.layer4[1].conv2.padding == (4, 4)
    bottleneck = dilated_trunk(BackboneSpec(depth=50, width=8, norm="batch"), 8)
    assert _dilations(bottleneck.layer4) == [[2], [4], [4]]
    # the demo CAM trunk (2, 2, 2, 1) is at output stride 16 already: layer4 needs x2 at stride 8, nothing at 16
    cam = dilated_trunk(TINY, 8, (2, 2, 2, 1))
    assert _dilations(cam.layer3) == [[1, 2], [2, 2]] and _dilations(cam.layer4) == [[2, 2], [2, 2]]
    same = dilated_trunk(TINY, 16, (2, 2, 2, 1))
    assert _dilations(same.layer3) == [[1, 1], [1, 1]] and _dilations(same.layer4) == [[1, 1], [1, 1]]
    with pytest.raises(ValueError, match="coarser than the pretrained"):
        dilated_trunk(TINY, 16, (2, 2, 1, 1))


def test_a_dilated_trunk_computes_what_the_strided_trunk_computes_on_its_grid():
    """OS 8 with the right dilation = the OS 16 CAM trunk evaluated densely: subsampling gives the same map."""
    from clims_core.models.backbone import ResNetTrunk

    strided = ResNetTrunk(BackboneSpec(depth=18, width=8, norm="frozen", strides=(2, 2, 2, 1))).eval()
    dense = dilated_trunk(BackboneSpec(depth=18, width=8, norm="frozen"), 8, (2, 2, 2, 1)).eval()
    dense.load_state_dict(strided.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        coarse, fine = strided(x)[-1], dense(x)[-1]
    interior = (slice(None), slice(None), slice(1, -1), slice(1, -1))  # away from the zero padding
    assert torch.allclose(fine[..., ::2, ::2][interior], coarse[interior], atol=1e-4)


def test_dilated_trunk_takes_weights_of_a_strided_trunk():
    from clims_core.models.backbone import ResNetTrunk

    cam_trunk = ResNetTrunk(BackboneSpec(depth=18, width=8, norm="batch", strides=(2, 2, 2, 1)))
    dilated_trunk(TINY, 8).load_state_dict(cam_trunk.state_dict())  # same parameter names and shapes


def test_cct_shapes_and_decoder_counts():
    spec = CctSpec(EncoderSpec(TINY, 8), n_classes=4)
    model = CCT(spec).train()
    assert len(model.aux_decoders) == sum(DEFAULT_DECODERS.values()) == 30
    assert [d.kind for d in model.aux_decoders][:3] == ["vat", "vat", "dropout"]
    x = torch.rand(2, 3, 48, 48)
    features = model.features(x)
    assert features.shape == (2, model.encoder.out_channels, 6, 6) and model.encoder.out_channels == 64 // 4
    assert model(x).shape == (2, 4, 48, 48)
    assert model(torch.rand(2, 3, 44, 52)).shape == (2, 4, 44, 52)  # not a multiple of the stride: resized
    guidance = model.guidance(features, model.main_decoder(features))
    for decoder in model.aux_decoders:
        assert decoder(features, guidance).shape == (2, 4, 48, 48), decoder.kind


def test_parameter_groups_split_trunk_from_new_modules():
    model = CCT(CctSpec(EncoderSpec(TINY, 8), n_classes=3, decoders={"dropout": 1}))
    trunk, rest = model.parameter_groups()
    assert {id(p) for p in trunk}.isdisjoint(id(p) for p in rest)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(trunk) + len(rest) == len(trainable)
    assert any(p is model.main_decoder[0].weight for p in rest)
    assert any(p is model.encoder.psp.bottleneck[0].weight for p in rest)


def test_unknown_decoder_kind_is_refused():
    with pytest.raises(ValueError, match="unknown kinds"):
        CctSpec(EncoderSpec(TINY), 3, decoders={"mixup": 1})


def test_icnr_makes_pixel_shuffle_start_as_nearest_upsampling():
    conv = nn.Conv2d(3, 12, 1, bias=False)
    icnr_(conv.weight)
    out = nn.PixelShuffle(2)(conv(torch.rand(1, 3, 4, 4)))
    assert torch.allclose(out[..., ::2, ::2], out[..., 1::2, 1::2])
    assert torch.allclose(out[..., ::2, ::2], out[..., 1::2, ::2])


def test_upsampler_reaches_the_input_resolution():
    for kind in ("subpixel", "bilinear"):
        assert Upsampler(16, 5, 8, kind)(torch.rand(1, 16, 3, 4)).shape == (1, 5, 24, 32)
    assert Upsampler(16, 5, 8, "subpixel")(torch.randn(1, 16, 3, 4)).min() >= 0  # CCT's steps end in a ReLU
    with pytest.raises(ValueError):
        Upsampler(16, 5, 6)
    with pytest.raises(ValueError, match="decoder: expected one of"):
        CctSpec(EncoderSpec(TINY), 3, decoder="deconv")


def test_bilinear_decoders_keep_every_perturbation():
    model = CCT(CctSpec(EncoderSpec(TINY, 8), n_classes=3, decoder="bilinear")).train()
    assert len(model.aux_decoders) == 30
    x = torch.rand(2, 3, 32, 32)
    features = model.features(x)
    guidance = model.guidance(features, model.main_decoder(features))
    assert {d(features, guidance).shape for d in model.aux_decoders} == {(2, 3, 32, 32)}


def _features() -> torch.Tensor:
    return torch.rand(2, 8, 6, 6) + 0.1


def test_object_masking_keeps_only_predicted_background_and_context_masking_the_objects():
    x = _features()
    prediction = torch.zeros(2, 3, 12, 12)
    prediction[:, 0] = 1.0
    prediction[:, 2, :6, :6] = 5.0  # class 2 in the top-left quarter (at twice the features' size)
    fg = P.foreground_mask(prediction, (6, 6))
    assert fg.shape == (2, 1, 6, 6) and fg[:, :, :3, :3].eq(1).all() and fg.sum() == 2 * 9
    objects_out = P.object_masking(x, fg)
    assert objects_out[:, :, :3, :3].eq(0).all() and torch.equal(objects_out[:, :, 3:], x[:, :, 3:])
    context_out = P.context_masking(x, fg)
    assert torch.equal(context_out[:, :, :3, :3], x[:, :, :3, :3]) and context_out[:, :, 3:].eq(0).all()
    assert torch.equal(objects_out + context_out, x)


def test_feature_noise_is_multiplicative_bounded_and_shared_by_the_batch():
    x = torch.ones(3, 4, 5, 5)
    y = P.feature_noise(x, 0.3)
    assert y.shape == x.shape and not torch.equal(x, y)
    assert ((y - x).abs() <= 0.3 + 1e-6).all() and torch.equal(y[0], y[1])
    assert P.feature_noise(torch.zeros(1, 4, 5, 5), 0.3).eq(0).all()  # multiplicative: zeros stay zero


def test_feature_dropout_removes_the_most_active_region():
    x = torch.full((1, 4, 6, 6), 0.1)
    x[:, :, 2:4, 2:4] = 1.0  # the hot spot
    y = P.feature_dropout(x, 0.6, 0.9)
    assert y[:, :, 2:4, 2:4].eq(0).all() and torch.equal(y[:, :, :2], x[:, :, :2])


def test_spatial_dropout_drops_whole_channels():
    x = torch.ones(4, 64, 5, 5)
    y = P.spatial_dropout(x, 0.5, spatial=True)
    per_channel = y.flatten(2)
    assert ((per_channel == 0).all(-1) | (per_channel == 2).all(-1)).all()  # a channel is all dropped or all kept x2
    dropped = (per_channel == 0).all(-1).float().mean()
    assert 0.3 < dropped < 0.7
    z = P.spatial_dropout(x, 0.5, spatial=False)
    assert not ((z.flatten(2) == 0).all(-1) | (z.flatten(2) == 2).all(-1)).all()


def test_guided_cutout_erases_a_box_inside_each_predicted_object_only():
    fg = torch.zeros(2, 1, 20, 20)
    fg[0, 0, 2:12, 4:14] = 1  # a 10 x 10 object
    fg[0, 0, 16:18, 16:18] = 1  # a 4-pixel speck: 1% of the map
    boxes = P.object_boxes(fg, min_area=0.02)
    assert boxes == [[(0.1, 0.2, 0.5, 0.5)], []]
    x = torch.rand(2, 3, 20, 20) + 0.1
    y = P.guided_cutout(x, boxes, erase=0.4)
    erased = (y[0, 0] == 0)
    assert erased.sum() == 16  # a 4 x 4 rectangle (0.4 of 10 x 10)
    rows, cols = erased.nonzero(as_tuple=True)
    assert rows.min() >= 2 and rows.max() < 12 and cols.min() >= 4 and cols.max() < 14
    assert torch.equal(y[1], x[1])  # no object, nothing cut
    # boxes are fractions: found at the prediction's size, applied at the features'
    small = P.cutout_mask(boxes, (10, 10), 0.4)
    assert (small[0, 0] == 0).sum() == 4


def test_vat_finds_the_direction_that_changes_the_prediction_most():
    torch.manual_seed(1)
    decoder = nn.Conv2d(4, 3, 1)
    with torch.no_grad():
        decoder.weight.zero_()
        decoder.weight[0, 2] = 5.0  # only channel 2 matters to the prediction
        decoder.bias.zero_()
    x = torch.rand(2, 4, 5, 5)
    r = P.vat_perturbation(x, decoder, xi=1e-2, eps=2.0)
    assert r.shape == x.shape
    assert torch.allclose(r.flatten(1).norm(dim=1), torch.full((2,), 2.0), atol=1e-3)
    energy = r.pow(2).sum(dim=(0, 2, 3))
    assert energy[2] / energy.sum() > 0.99
    assert decoder.weight.grad is None  # the decoder's gradients are untouched


def test_each_auxiliary_decoder_changes_its_input():
    settings = PerturbationSettings(vat_xi=1e-2, cutout_regions="area", cutout_min_area=0.0)
    x = torch.rand(2, 8, 6, 6) + 0.1
    fg = torch.zeros(2, 1, 6, 6)
    fg[:, :, 1:5, 1:5] = 1
    for kind in KINDS:
        decoder = AuxiliaryDecoder(kind, 8, 3, 8, settings)
        guidance = Guidance(fg)
        assert not torch.equal(decoder.perturb(x, guidance), x), kind


# --- CCT's feature drop range and guided cutout rule (models/decoders.py of yassouali/CCT at 65d4e5b) ---


def test_feature_drop_gamma_is_drawn_from_cct_range():
    # attention = i / 100 for i = 0..100 (peak 1.0): a position is kept iff i / 100 < gamma, so gamma in [0.7, 0.9]
    # keeps the 70 positions below 0.70 always, never one from 0.90 up, i.e. 70 to 90 positions
    assert PerturbationSettings().feature_drop_range == (0.7, 0.9)
    ramp = (torch.arange(101, dtype=torch.float64) / 100).view(1, 1, 1, 101).repeat(1, 2, 1, 1)
    kept = [int(P.feature_dropout(ramp).ne(0).sum()) // 2 for _ in range(300)]
    assert min(kept) >= 70 and max(kept) <= 90
    assert min(kept) < 74 and max(kept) > 86  # the draws cover the range (a gap of 0.04 at an end: p = 0.8^300)


def test_schema_defaults_of_perturbations_are_the_dataclass_defaults():
    from dataclasses import asdict

    from clims_core.config import load_schema

    schema = load_schema()["properties"]["seg"]["properties"]["cct"]["properties"]["perturbations"]["properties"]
    defaults = {name: tuple(v["default"]) if isinstance(v["default"], list) else v["default"]
                for name, v in schema.items()}
    assert defaults == asdict(PerturbationSettings())
    assert schema["cutout_regions"]["enum"] == list(P.CUTOUT_REGIONS)


def _disc(radius: int, size: int = 80) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (((yy - size // 2) ** 2 + (xx - size // 2) ** 2) <= radius**2).float().view(1, 1, size, size)


def _comb(teeth: int) -> torch.Tensor:
    """A base of rows 20-27 with ``teeth`` teeth of 3 columns on top (rows 14-19), 3 columns apart, flush with the
    base's ends. Its outer contour under CHAIN_APPROX_SIMPLE, by hand: a convex corner is 1 point, a concave corner 2
    (the 8-connected trace cuts it diagonally): 2 base corners + 2 per tooth + 4 per gap = 6 n - 2 points."""
    fg = torch.zeros(1, 1, 40, 6 * teeth + 4)
    fg[0, 0, 20:28, 2:6 * teeth - 1] = 1
    for i in range(teeth):
        fg[0, 0, 14:20, 2 + 6 * i:5 + 6 * i] = 1
    return fg


def test_cct_contours_never_select_a_filled_rectangle():
    # a rectangle's contour is its 4 corners, whatever its size: never more than 50 points
    for top, left, bottom, right in ((3, 4, 9, 11), (5, 2, 60, 70), (0, 0, 79, 79)):
        fg = torch.zeros(1, 1, 80, 80)
        fg[0, 0, top:bottom + 1, left:right + 1] = 1
        assert P.contour_boxes(fg) == [[]]
        assert P.contour_boxes(fg, min_points=3) == [[(top, left, bottom, right)]]  # 4 > 3: the corners' extremes
        assert P.contour_boxes(fg, min_points=4) == [[]]


def test_cct_contours_count_points_strictly_above_the_threshold():
    # 8 teeth: 46 points, 9 teeth: 52 points (6 n - 2)
    assert P.contour_boxes(_comb(8)) == [[]]
    assert P.contour_boxes(_comb(9)) == [[(14, 2, 27, 52)]]
    assert P.contour_boxes(_comb(9), min_points=51) == [[(14, 2, 27, 52)]]
    assert P.contour_boxes(_comb(9), min_points=52) == [[]]  # more than, not at least


def test_cct_contours_select_large_discs_only():
    # per octant the 8-connected boundary of a disc alternates runs of straight and diagonal steps; each run
    # gives one point, about 0.36 r per octant, so ~2.9 r in all: r = 10 gives ~29 points, r = 30 ~86
    assert P.contour_boxes(_disc(10)) == [[]]
    assert P.contour_boxes(_disc(30)) == [[(10, 10, 70, 70)]]
    both = torch.cat([_disc(10), _disc(30)])
    assert [len(b) for b in P.contour_boxes(both)] == [0, 1]


def test_cct_cutout_arithmetic_on_the_prediction_grid():
    # comb of 9 teeth: box rows 14..27, columns 2..52, extents 13 and 50; erase 0.4: a cut of int(5.2) = 5 rows and
    # 20 columns, offset 0..int(7.8) = 7 rows and 0..30 columns from the box's top left
    boxes = P.contour_boxes(_comb(9))
    rows_seen, cols_seen = set(), set()
    for _ in range(200):
        mask = P.contour_cutout_mask(boxes, (40, 58), (40, 58), erase=0.4)
        rows, cols = (mask[0, 0] == 0).nonzero(as_tuple=True)
        assert len(rows) == 100 and rows.max() - rows.min() == 4 and cols.max() - cols.min() == 19
        assert 14 <= rows.min() <= 21 and 2 <= cols.min() <= 32
        rows_seen.add(int(rows.min()))
        cols_seen.add(int(cols.min()))
    assert rows_seen == set(range(14, 22)) and min(cols_seen) == 2 and max(cols_seen) == 32


def test_cct_cutout_mask_is_brought_to_the_features_by_nearest_neighbour():
    # nearest from 80 to 10: feature (i, j) reads the prediction's pixel (8 i, 8 j)
    boxes = P.contour_boxes(_disc(30))
    torch.manual_seed(3)
    full = P.contour_cutout_mask(boxes, (80, 80), (80, 80))
    torch.manual_seed(3)
    small = P.contour_cutout_mask(boxes, (80, 80), (10, 10))
    assert small.shape == (1, 1, 10, 10) and torch.equal(small, full[..., ::8, ::8])
    assert (full == 0).sum() == 24 * 24  # extent 60: int(24.0) = 24 per side
    torch.manual_seed(3)
    odd = P.contour_cutout_mask(boxes, (80, 80), (13, 7))  # not a whole stride: as resizing the full mask
    assert torch.equal(odd, torch.nn.functional.interpolate(full, size=(13, 7), mode="nearest"))


def _logits(fg: torch.Tensor) -> torch.Tensor:
    """Two-class logits whose argmax is ``fg``."""
    return torch.cat([1 - fg, fg], dim=1)


def test_cutout_rules_on_a_rectangle_and_on_a_disc_end_to_end():
    x = torch.rand(1, 8, 10, 10) + 0.1
    rectangle = torch.zeros(1, 1, 80, 80)
    rectangle[0, 0, 8:72, 8:72] = 1
    model = CCT(CctSpec(EncoderSpec(TINY, 8), n_classes=2, decoders={"cutout": 1}))
    cct_rule = model.aux_decoders[0]
    assert cct_rule.settings.cutout_regions == "cct_contours" and cct_rule.settings.cutout_min_points == 50
    area_rule = AuxiliaryDecoder("cutout", 8, 2, 8, PerturbationSettings(cutout_regions="area"))
    guidance = model.guidance(x, _logits(rectangle))
    assert guidance.foreground.shape == (1, 1, 10, 10) and guidance.prediction_size == (80, 80)
    assert torch.equal(cct_rule.perturb(x, guidance), x)  # 4 contour points: CCT never cuts a rectangle
    assert not torch.equal(area_rule.perturb(x, guidance), x)  # 64% of the map: the area rule does
    disc = model.guidance(x, _logits(_disc(30)))
    assert not torch.equal(cct_rule.perturb(x, disc), x)  # a 24 x 24 px cut covers 3 x 3 feature positions


def test_cct_contours_see_all_classes_as_one_foreground():
    # teeth of class 1 on a base of class 2: per class, 10 rectangles (4 points each); together, the 52-point comb
    comb = _comb(9)
    logits = torch.zeros(1, 3, *comb.shape[-2:])
    logits[:, 0] = 0.5
    logits[0, 1, 14:20] = comb[0, 0, 14:20]
    logits[0, 2, 20:28] = comb[0, 0, 20:28]
    model = CCT(CctSpec(EncoderSpec(TINY, 8), n_classes=3, decoders={"cutout": 1}))
    assert model.guidance(torch.rand(1, 8, 5, 7), logits).contour_boxes() == [[(14, 2, 27, 52)]]


def test_bad_cutout_settings_are_refused():
    with pytest.raises(ValueError, match="cutout_regions: expected one of"):
        PerturbationSettings(cutout_regions="contours")
    with pytest.raises(ValueError, match="cutout_min_points"):
        PerturbationSettings(cutout_min_points=-1)
    with pytest.raises(ValueError, match="feature_drop_range"):
        PerturbationSettings(feature_drop_range=(0.9, 0.7))
    from clims_core.config import ConfigError, validate_schema

    with pytest.raises(ConfigError, match="cutout_regions': expected one of"):
        validate_schema({"seg": {"cct": {"perturbations": {"cutout_regions": "contours"}}}})
