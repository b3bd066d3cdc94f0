"""vizlib.nn's segmentation models: shapes for any image size, parameter counts, the
bilinear initialisation, atrous geometry, ASPP, convolutionalisation, gradients."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

import vizlib.nn as vnn
from vizlib.upsampling import bilinear_conv_transpose, bilinear_upsampling_weights

K = 9  # classes, as in the scenes (background + 5 things + 3 stuff)
SIZES = [(64, 64), (37, 53)]  # divisible by 32, and not

MODELS = {
    "fcn32s": lambda: vnn.FCN(K, "32s"),
    "fcn16s": lambda: vnn.FCN(K, "16s"),
    "fcn8s": lambda: vnn.FCN(K, "8s"),
    "unet": lambda: vnn.UNet(K),
    "unet_bilinear": lambda: vnn.UNet(K, channels=(8, 16, 32), upsampling="bilinear"),
    "unet_wide_odd": lambda: vnn.UNet(K, channels=(8, 16, 32, 64, 64, 64)),
    "segnet": lambda: vnn.SegNet(K),
    "deeplab": lambda: vnn.DeepLab(K),
    "deeplab_os16": lambda: vnn.DeepLab(K, output_stride=16),
    "deeplab_v3plus": lambda: vnn.DeepLab(K, decoder=True),
}


@pytest.fixture(scope="module", params=list(MODELS))
def model(request):
    torch.manual_seed(0)
    return MODELS[request.param]().eval()


@pytest.mark.parametrize("size", SIZES)
def test_logits_have_the_image_size(model, size):
    with torch.no_grad():
        out = model(torch.rand(1, 3, *size))
    assert out.shape == (1, K, *size)
    assert torch.isfinite(out).all()


def test_torchvision_models_have_the_image_size():
    torch.manual_seed(0)
    for model in (vnn.torchvision_fcn(K), vnn.torchvision_deeplabv3(K, output_stride=16)):
        with torch.no_grad():
            out = model.eval()(torch.rand(1, 3, 48, 64))
        assert out.shape == (1, K, 48, 64)


@pytest.mark.parametrize("name", ["fcn8s", "unet", "segnet", "deeplab_v3plus"])
def test_gradient_reaches_every_trainable_parameter(name):
    torch.manual_seed(0)
    model = MODELS[name]().train()
    x = torch.rand(2, 3, 32, 48)
    y = torch.randint(0, K, (2, 32, 48))
    F.cross_entropy(model(x), y).backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{pname} got no gradient"
            assert torch.isfinite(p.grad).all(), pname
    # the image gets a gradient too: the whole path is differentiable
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    model.eval()(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_the_model_does_not_modify_its_input():
    x = torch.rand(1, 3, 37, 41)
    before = x.clone()
    vnn.FCN(K).eval()(x)
    assert torch.equal(x, before)


# ----------------------------------------------------------------------- parameter counts


def conv_block_params(c_in: int, c_out: int, n: int = 2) -> int:
    # each conv: 9 * c_in * c_out weights, no bias; each batch norm: weight and bias
    return sum(9 * (c_in if i == 0 else c_out) * c_out + 2 * c_out for i in range(n))


def test_conv_block_parameter_count():
    assert vnn.count_parameters(vnn.ConvBlock(3, 16, 2)) == conv_block_params(3, 16, 2) == 2800


def test_fcn_parameter_counts_by_hand():
    ch = (16, 32, 64, 128, 128)
    backbone = sum(conv_block_params(a, b) for a, b in zip((3,) + ch[:-1], ch, strict=True))
    head = (9 * 128 * 256 + 256) + (256 * 256 + 256) + (256 * K + K)
    skip = lambda c: c * K + K  # noqa: E731 - a 1x1 scorer with bias
    up2 = K * K * 4 * 4  # a learned 2x transposed conv: [K, K, 4, 4], no bias
    fcn32 = vnn.FCN(K, "32s")
    assert vnn.count_parameters(fcn32) == backbone + head  # the final upsampling is fixed
    assert vnn.count_parameters(vnn.FCN(K, "16s")) == backbone + head + skip(128) + up2
    assert (
        vnn.count_parameters(vnn.FCN(K, "8s")) == backbone + head + skip(128) + skip(64) + 2 * up2
    )
    learned = vnn.FCN(K, "32s", learn_final_upsampling=True)
    assert vnn.count_parameters(learned) == backbone + head + K * K * 64 * 64


def test_unet_parameter_count_by_hand():
    ch = (8, 16, 32)
    enc = conv_block_params(3, 8) + conv_block_params(8, 16) + conv_block_params(16, 32)
    # up from 32 to 16: transposed 2x2 conv 32 -> 16 (+ bias), then a block on 16 + 16 -> 16
    up1 = 32 * 16 * 4 + 16 + conv_block_params(32, 16)
    up2 = 16 * 8 * 4 + 8 + conv_block_params(16, 8)
    assert vnn.count_parameters(vnn.UNet(K, channels=ch)) == enc + up1 + up2 + 8 * K + K


def test_count_parameters_trainable_only():
    model = vnn.FCN(K, "32s", learn_final_upsampling=True)
    model.upscore_final.weight.requires_grad_(False)
    assert (
        vnn.count_parameters(model) - vnn.count_parameters(model, trainable_only=True)
        == K * K * 64 * 64
    )


# ----------------------------------------------------------------- bilinear initialisation


def test_fcn_learned_upsamplings_start_bilinear_and_skips_at_zero():
    model = vnn.FCN(K, "8s")
    for layer in (model.upscore2, model.upscore_pool4):
        assert layer.stride == (2, 2) and layer.kernel_size == (4, 4) and layer.padding == (1, 1)
        torch.testing.assert_close(layer.weight, bilinear_upsampling_weights(K, 2))
        assert layer.weight.requires_grad
    for scorer in (model.score_pool4, model.score_pool3):
        assert not scorer.weight.any() and not scorer.bias.any()


@pytest.mark.parametrize("factor", [2, 3, 8, 16, 32])
def test_fixed_bilinear_upsampling_equals_interpolate_in_the_interior(factor):
    x = torch.rand(2, 3, 5, 4, dtype=torch.float64) + 0.5
    y = vnn.FixedBilinearUpsampling(factor).double()(x)
    want = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert y.shape == want.shape
    b = factor // 2  # the border where a transposed conv fades toward the zero padding
    inner = (..., slice(b, y.shape[-2] - b), slice(b, y.shape[-1] - b))
    torch.testing.assert_close(y[inner], want[inner], atol=1e-6, rtol=0)
    # and it is the same layer as vizlib.upsampling's (dense, channel-diagonal) one
    dense = bilinear_conv_transpose(3, factor).double()
    with torch.no_grad():
        torch.testing.assert_close(y, dense(x), atol=1e-9, rtol=0)
    assert not list(vnn.FixedBilinearUpsampling(factor).parameters())


def test_fcn32s_at_init_is_bilinear_upsampling_of_its_coarse_scores():
    torch.manual_seed(0)
    model = vnn.FCN(K, "32s").eval()
    x = torch.rand(1, 3, 128, 96)
    with torch.no_grad():
        coarse = model.head(model.backbone(x)[-1])  # [1, K, 4, 3]
        out = model(x)
    want = F.interpolate(coarse, scale_factor=32, mode="bilinear", align_corners=False)
    inner = (..., slice(16, -16), slice(16, -16))
    torch.testing.assert_close(out[inner], want[inner], atol=1e-4, rtol=1e-4)


# --------------------------------------------------------------------- backbone and atrous


@pytest.mark.parametrize(
    "output_stride, strides, dilations",
    [
        (32, [2, 4, 8, 16, 32], [1, 1, 1, 1, 1]),
        # pool5 comes after conv5: removing it dilates only what follows the backbone
        (16, [2, 4, 8, 16, 16], [1, 1, 1, 1, 1]),
        (8, [2, 4, 8, 8, 8], [1, 1, 1, 1, 2]),
    ],
)
def test_atrous_backbone_keeps_resolution(output_stride, strides, dilations):
    backbone = vnn.VGGBackbone(output_stride=output_stride).eval()
    assert backbone.strides == strides and backbone.dilations == dilations
    assert backbone.head_dilation == 32 // output_stride
    with torch.no_grad():
        features = backbone(torch.rand(1, 3, 64, 96))
    for f, s, c in zip(features, strides, backbone.channels, strict=True):
        assert f.shape == (1, c, 64 // s, 96 // s)
    convs = [m for m in backbone.stages[-1].modules() if isinstance(m, nn.Conv2d)]
    assert all(m.dilation == (dilations[-1],) * 2 and m.padding == m.dilation for m in convs)


def test_dilate_resnet_layer_matches_torchvision_replace_stride_with_dilation():
    from torchvision.models.resnet import Bottleneck, ResNet

    ours = ResNet(Bottleneck, [2, 2, 2, 2])
    vnn.dilate_resnet_layer(ours.layer3, 2)
    vnn.dilate_resnet_layer(ours.layer4, 4)
    theirs = ResNet(Bottleneck, [2, 2, 2, 2], replace_stride_with_dilation=[False, True, True])

    def geometry(net):
        return [
            (n, m.stride, m.dilation, m.padding)
            for n, m in net.named_modules()
            if isinstance(m, nn.Conv2d)
        ]

    assert geometry(ours) == geometry(theirs)


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_torchvision_resnet18_trunk_output_stride(output_stride):
    model = vnn.torchvision_fcn(K, output_stride=output_stride).eval()
    with torch.no_grad():
        feats = model.model.backbone(torch.rand(1, 3, 64, 64))["out"]
    assert feats.shape == (1, 512, 64 // output_stride, 64 // output_stride)


# ------------------------------------------------------------------------------------ ASPP


def test_aspp_output_shape_and_branches():
    aspp = vnn.ASPP(64, 32, rates=(1, 3, 5)).eval()
    assert len(aspp.branches) == 5  # 1x1, three rates, image pooling
    dilations = [b[0].dilation for b in aspp.branches[1:4]]
    assert dilations == [(1, 1), (3, 3), (5, 5)]
    with torch.no_grad():
        for size in [(8, 8), (5, 11), (1, 1)]:
            assert aspp(torch.rand(2, 64, *size)).shape == (2, 32, *size)
    assert len(vnn.ASPP(64, 32, rates=(2,), image_pooling=False).branches) == 2


def test_aspp_image_pooling_is_the_same_at_every_position():
    aspp = vnn.ASPP(16, 8).eval()
    with torch.no_grad():
        pooled = aspp.branches[-1](torch.rand(2, 16, 6, 7))
    assert pooled.shape == (2, 8, 6, 7)
    assert torch.equal(pooled, pooled[..., :1, :1].expand_as(pooled))


def test_a_rate_as_large_as_the_map_degenerates_to_its_centre_tap():
    # a 3x3 conv with dilation >= the map size reads only zero padding off-centre
    conv = nn.Conv2d(1, 1, 3, padding=8, dilation=8, bias=False)
    centre_only = conv.weight.detach().clone()
    centre_only[..., [0, 0, 0, 1, 1, 2, 2, 2], [0, 1, 2, 0, 2, 0, 1, 2]] = 0
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), F.conv2d(x, centre_only, padding=8, dilation=8))


# ------------------------------------------------------------------ convolutionalisation


def test_linear_to_conv_equals_the_linear_layer_and_slides():
    torch.manual_seed(0)
    linear = nn.Linear(8 * 4 * 4, 5)
    conv = vnn.linear_to_conv(linear, in_channels=8, kernel_size=4)
    x = torch.rand(3, 8, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(conv(x).flatten(1), linear(x.flatten(1)))
        big = torch.rand(1, 8, 7, 9)
        scores = conv(big)  # [1, 5, 4, 6]: one prediction per 4x4 window
        assert scores.shape == (1, 5, 4, 6)
        torch.testing.assert_close(scores[0, :, 2, 3], linear(big[:, :, 2:6, 3:7].flatten(1))[0])
    fc = nn.Linear(5, 3)
    torch.testing.assert_close(
        vnn.linear_to_conv(fc, 5)(scores).permute(0, 2, 3, 1), fc(scores.permute(0, 2, 3, 1))
    )


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: vnn.FCN(K, "4s"), "variant"),
        (lambda: vnn.FCN(K, channels=(8, 16)), "channels"),
        (lambda: vnn.FCN(0), "num_classes"),
        (lambda: vnn.FCN(K, hidden=0), "hidden"),
        (lambda: vnn.FCN(K, in_channels=0), "in_channels"),
        (lambda: vnn.FCN(K, learn_final_upsampling="yes"), "learn_final_upsampling"),
        (lambda: vnn.FCNHead(16, K, dropout=1.5), "dropout"),
        (lambda: vnn.FCNHead(16, 0), "num_classes"),
        (lambda: vnn.pad_to_multiple([1, 2, 3], 4), "x must be a tensor"),
        (lambda: vnn.pad_to_multiple(torch.rand(1, 8, 8), 0), "multiple"),
        (lambda: vnn.crop_to(torch.rand(1, 8, 8), (4,)), "size"),
        (lambda: vnn.crop_to(torch.rand(1, 8, 8), (4, 0)), "size"),
        (lambda: vnn.crop_to(torch.rand(1, 8, 8), (9, 4)), "larger"),
        (lambda: vnn.VGGBackbone(output_stride=12), "output_stride"),
        (lambda: vnn.VGGBackbone(output_stride=64), "output_stride"),
        (lambda: vnn.UNet(K, upsampling="cubic"), "upsampling"),
        (lambda: vnn.UNet(K, channels=(16,)), "channels"),
        (lambda: vnn.FCN(K)(torch.rand(3, 64, 64)), "images"),
        (lambda: vnn.FCN(K)(torch.rand(1, 1, 64, 64)), "channels"),
        (lambda: vnn.UNet(K)(torch.randint(0, 9, (1, 3, 32, 32))), "floating"),
        (lambda: vnn.linear_to_conv(nn.Linear(10, 2), 3, 2), "in_features"),
        (lambda: vnn.linear_to_conv(nn.Conv2d(1, 1, 1), 1), "linear"),
        (lambda: vnn.torchvision_fcn(K, backbone="vgg"), "backbone"),
        (lambda: vnn.torchvision_fcn(K, output_stride=4), "output_stride"),
        (lambda: vnn.torchvision_deeplabv3(K, rates=(2, 0)), "rates"),
        (lambda: vnn.torchvision_deeplabv3(K, rates=()), "rates"),
        (lambda: vnn.LogitsOnly("fcn"), "model"),
        (lambda: vnn.dilate_resnet_layer(nn.Conv2d(1, 1, 3), 2), "layer"),
        (lambda: vnn.UNetUp(8, 4, 4)(torch.rand(1, 8, 4, 4), torch.rand(1, 4, 9, 9)), "same size"),
    ],
)
def test_bad_input_raises_value_error(call, word):
    with pytest.raises(ValueError, match=word):
        call()


def test_pad_and_crop_round_trip():
    x = torch.rand(1, 2, 37, 50)
    padded = vnn.pad_to_multiple(x, 16)
    assert padded.shape == (1, 2, 48, 64)
    assert torch.equal(vnn.crop_to(padded, (37, 50)), x)
    assert padded[..., 37:, :].abs().sum() == 0
    assert vnn.pad_to_multiple(padded, 16) is padded


def test_torchvision_is_recent_enough_for_deeplab_head_rates():
    from torchvision.models.segmentation.deeplabv3 import DeepLabHead

    head = DeepLabHead(32, K, (1, 2, 3))
    assert isinstance(head, nn.Module) and torchvision.__version__
