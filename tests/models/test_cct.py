"""CCT's encoder, decoders and perturbations: shapes and what each perturbation does to the features."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from clims_core.models.backbone import BackboneSpec
from clims_core.models.cct import CCT, DEFAULT_DECODERS, KINDS, CctSpec, EncoderSpec, PerturbationSettings
from clims_core.models.cct import perturbations as P
from clims_core.models.cct.decoders import AuxiliaryDecoder, Guidance, Upsampler, icnr_
from clims_core.models.cct.encoder import dilated_trunk

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
    settings = PerturbationSettings(vat_xi=1e-2, cutout_min_area=0.0)
    x = torch.rand(2, 8, 6, 6) + 0.1
    fg = torch.zeros(2, 1, 6, 6)
    fg[:, :, 1:5, 1:5] = 1
    for kind in KINDS:
        decoder = AuxiliaryDecoder(kind, 8, 3, 8, settings)
        guidance = Guidance(fg, min_area=0.0)
        assert not torch.equal(decoder.perturb(x, guidance), x), kind
