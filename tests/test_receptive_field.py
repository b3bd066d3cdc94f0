"""vizlib.receptive_field: the Araujo et al. table, against gradients of real torch models."""

from __future__ import annotations

import random

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.segmentation import FCN
from torchvision.models.segmentation.fcn import FCNHead
from torchvision.ops import clip_boxes_to_image

from vizlib.receptive_field import (
    Layer,
    empirical_receptive_field,
    layers_from_model,
    receptive_field_of_unit,
    receptive_field_table,
)


def mask_box(mask: torch.Tensor) -> list[float]:
    """Bounding box (x1, y1, x2, y2), pixel edges, of the True pixels of a [H, W] mask."""
    rows, cols = mask.nonzero(as_tuple=True)
    return [cols.min().item(), rows.min().item(), cols.max().item() + 1, rows.max().item() + 1]


# ------------------------------------------------------------------------------- the table


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 10])
def test_stacked_3x3_convs_follow_the_1_plus_2L_rule(depth):
    rows = receptive_field_table([Layer("conv", 3, padding=1)] * depth)
    assert [r.size for r in rows] == [(1 + 2 * (i + 1),) * 2 for i in range(depth)]
    assert all(r.jump == (1, 1) and r.start == (0.0, 0.0) for r in rows)  # "same" padding


def test_dilations_1_2_4_give_15():
    rows = receptive_field_table([Layer("conv", 3, dilation=d) for d in (1, 2, 4)])
    assert [r.size[0] for r in rows] == [3, 7, 15]
    assert rows[-1].start == (7.0, 7.0)  # unpadded: centred 7 pixels in


def test_stride_multiplies_the_growth():
    layers = [Layer("conv", 3, stride=2), Layer("conv", 3), Layer("pool", 2, 2), Layer("conv", 3)]
    rows = receptive_field_table(layers)
    assert [r.size[0] for r in rows] == [3, 3 + 2 * 2, 7 + 1 * 2, 9 + 2 * 4]
    assert [r.jump[0] for r in rows] == [2, 2, 4, 4]


def test_vgg16_matches_araujo_et_al():
    # Distill 2019, table of architectures: VGG 16 has r = 212, effective stride 32 and
    # effective padding 90, i.e. unit 0 centred at (r - 1) / 2 - 90 = 15.5.
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    modules = []
    for v in cfg:  # torchvision's VGG-16 layout; channels do not matter, keep them tiny
        modules += [nn.MaxPool2d(2, 2)] if v == "M" else [nn.Conv2d(1, 1, 3, padding=1), nn.ReLU()]
    last = receptive_field_table(layers_from_model(nn.Sequential(*modules)), 224)[-1]
    assert last.size == (212, 212) and last.jump == (32, 32) and last.start == (15.5, 15.5)
    assert last.output_hw == (7, 7)


def test_pairs_give_independent_axes():
    rows = receptive_field_table([Layer("conv", (3, 5), stride=(1, 2), padding=(1, 0))], (9, 9))
    assert rows[0].size == (3, 5) and rows[0].jump == (1, 2) and rows[0].start == (0.0, 2.0)
    assert rows[0].output_hw == (9, 3)


def test_unit_box_is_clipped_to_the_image():
    layers = [Layer("conv", 3, padding=1)] * 3  # r = 7
    assert receptive_field_of_unit(layers, (5, 5), 16).tolist() == [2, 2, 9, 9]
    assert receptive_field_of_unit(layers, (0, 15), 16).tolist() == [12, 0, 16, 4]


def unclipped_window(layers, unit) -> torch.Tensor:
    """[1, 4] xyxy pixel edges of the unit's whole window, from the table (Araujo et al.)."""
    last = receptive_field_table(layers)[-1]
    lo = [last.start[a] + unit[a] * last.jump[a] - (last.size[a] - 1) / 2 for a in (0, 1)]
    return torch.tensor([[lo[1], lo[0], lo[1] + last.size[1], lo[0] + last.size[0]]])


def test_a_unit_that_sees_only_padding_gets_an_empty_box():
    # issue 12: this unit reads only padding; the box was inside-out, [0, 0, -2, -2]
    layers = [Layer("conv", 1, 1, 3)]
    assert receptive_field_of_unit(layers, (0, 0), 10).tolist() == [0, 0, 0, 0]
    model = nn.Sequential(nn.Conv2d(1, 1, 1, padding=3))
    empty = 0
    for unit in [(i, j) for i in range(16) for j in range(16)]:
        box = receptive_field_of_unit(layers, unit, 10)
        x1, y1, x2, y2 = box.tolist()
        assert 0 <= x1 <= x2 <= 10 and 0 <= y1 <= y2 <= 10
        # one layer: torchvision's clipping of the whole window, zero area outside the image
        assert torch.equal(box, clip_boxes_to_image(unclipped_window(layers, unit), (10, 10))[0])
        mask = empirical_receptive_field(model, (1, 10, 10), unit).mask
        if mask.any():
            assert mask_box(mask) == box.tolist()
        else:
            assert x1 == x2 or y1 == y2
            empty += 1
    assert empty == 16 * 16 - 10 * 10  # the units centred in the padding ring


def padded_stack(rng: random.Random, holes: bool) -> nn.Sequential:
    """Convolutions with padding up to two pixels wider than the kernel, and poolings.

    Without ``holes`` every stride is at most the kernel and nothing is dilated, so a
    unit reads every pixel of its box.
    """
    modules, channels = [], 1
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["conv", "conv", "max", "avg"])
        k = rng.randint(1, 4) if kind == "conv" else rng.randint(2, 3)
        s = rng.randint(1, 3 if holes else min(k, 2))
        d = rng.choice([1, 2]) if holes else 1
        if kind == "conv":
            modules += [nn.Conv2d(channels, 2, k, s, rng.randint(0, k + 2), d), nn.ReLU()]
            channels = 2
        elif kind == "max":
            modules.append(
                nn.MaxPool2d(k, s, rng.randint(0, k // 2), d, ceil_mode=rng.random() < 0.3)
            )
        else:
            modules.append(nn.AvgPool2d(k, s, rng.randint(0, k // 2), ceil_mode=rng.random() < 0.3))
    return nn.Sequential(*modules)


@pytest.mark.parametrize("holes", [False, True])
def test_border_units_see_the_box_cut_at_every_layers_padding(holes):
    # Every unit of the output grid, border ones included: a window that reaches into the
    # padding of the input *or of an intermediate layer* reads nothing there.
    rng = random.Random(2 + holes)
    checked = cut = empty = 0
    while checked < 15:
        model = padded_stack(rng, holes)
        layers = layers_from_model(model)
        try:
            out_h, out_w = receptive_field_table(layers, 9)[-1].output_hw
        except ValueError:  # a kernel larger than its padded input
            continue
        size = receptive_field_table(layers)[-1].size
        for unit in [(i, j) for i in range(out_h) for j in range(out_w)]:
            x1, y1, x2, y2 = (int(v) for v in receptive_field_of_unit(layers, unit, 9))
            assert 0 <= x1 <= x2 <= 9 and 0 <= y1 <= y2 <= 9
            mask = empirical_receptive_field(model, (1, 9, 9), unit).mask
            if not mask.any():
                empty += 1
                if not holes:  # only a hole can hide every pixel of a nonempty box
                    assert x1 == x2 or y1 == y2, (model, unit)
                continue
            if holes:  # the box is the extent: it holds every pixel read, maybe more
                inside = mask.clone()
                inside[y1:y2, x1:x2] = False
                assert not inside.any(), (model, unit)
            else:
                assert mask_box(mask) == [x1, y1, x2, y2], (model, unit)
            cut += (x2 - x1, y2 - y1) != (size[1], size[0])
        checked += 1
    assert cut > 0 and empty > 0  # the cases this test is about did occur


# ----------------------------------------------------------------------------- from a model


def test_layers_from_model_reads_geometry_and_nesting():
    model = nn.Sequential(
        nn.Conv2d(3, 4, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Sequential(nn.MaxPool2d(3, 2, 1, ceil_mode=True), nn.Dropout()),
        nn.AvgPool2d(2),
        nn.Conv2d(4, 4, 5, padding="same", dilation=2),
    )
    layers = layers_from_model(model)
    assert [layer.name for layer in layers] == ["0", "3.0", "4", "5"]
    assert layers[0] == Layer("conv", (3, 5), (2, 1), (1, 2), (1, 2), name="0")
    assert layers[1] == Layer("pool", 3, 2, 1, 1, ceil_mode=True, name="3.0")
    assert layers[2] == Layer("pool", 2, 2, 0, 1, name="4")
    assert layers[3] == Layer("conv", 5, 1, 4, 2, name="5")


@pytest.mark.parametrize(
    "model",
    [
        nn.Sequential(nn.ConvTranspose2d(1, 1, 2)),
        nn.Sequential(nn.AdaptiveAvgPool2d(1)),
        nn.Conv2d(1, 1, 3),
        nn.Sequential(nn.Conv2d(1, 1, 4, padding="same")),
    ],
)
def test_layers_from_model_rejects_unknown_geometry(model):
    with pytest.raises(ValueError, match="model"):
        layers_from_model(model)


def test_layers_from_model_reads_residual_blocks_as_their_main_path():
    resnet = torchvision.models.resnet18(weights=None)
    layers = layers_from_model(nn.Sequential(*list(resnet.children())[:6]))  # up to layer2
    assert [layer.name for layer in layers] == [
        "0",
        "3",
        "4.0.conv1",
        "4.0.conv2",
        "4.1.conv1",
        "4.1.conv2",
        "5.0.conv1",
        "5.0.conv2",
        "5.1.conv1",
        "5.1.conv2",
    ]  # the shortcuts' 1x1 convolutions ("5.0.downsample.0") are not on the longest path
    assert layers[6] == Layer("conv", 3, 2, 1, name="5.0.conv1")
    bottleneck = torchvision.models.resnet50(weights=None).layer2[0]
    names = [layer.name for layer in layers_from_model(nn.Sequential(bottleneck))]
    assert names == ["0.conv1", "0.conv2", "0.conv3"]


def truncated(resnet: nn.Module, depth: int) -> nn.Sequential:
    """The stem (depth 4: conv1, bn1, relu, maxpool) and then ``depth - 4`` stages."""
    return nn.Sequential(*list(resnet.children())[:depth])


def resnet18_dilated() -> nn.Module:
    from vizlib.nn import dilate_resnet_layer

    resnet = torchvision.models.resnet18(weights=None)
    dilate_resnet_layer(resnet.layer3, 2)  # output stride 8, as the DeepLab and FCN chapters
    dilate_resnet_layer(resnet.layer4, 4)
    return resnet


@pytest.mark.parametrize(
    "make, depth, size",
    [
        (lambda: torchvision.models.resnet18(weights=None), 4, 32),
        (lambda: torchvision.models.resnet18(weights=None), 5, 64),
        (lambda: torchvision.models.resnet18(weights=None), 6, 128),
        (lambda: torchvision.models.resnet18(weights=None), 7, 256),
        (lambda: torchvision.models.resnet50(weights=None), 6, 128),  # Bottleneck blocks
        (resnet18_dilated, 7, 96),  # the field (211) is wider than the image: cut
    ],
)
def test_resnet_trunks_table_against_the_gradient_field(make, depth, size):
    torch.manual_seed(0)
    model = truncated(make(), depth).eval()
    layers = layers_from_model(model)
    last = receptive_field_table(layers, size)[-1]
    with torch.no_grad():
        out = model(torch.zeros(1, 3, size, size))
    assert tuple(out.shape[-2:]) == last.output_hw
    row = last.output_hw[0] // 2
    boxes = []
    for unit in [(row, row), (row, row + 1), (0, 0)]:
        box = receptive_field_of_unit(layers, unit, size).tolist()
        mask = empirical_receptive_field(model, (3, size, size), unit).mask
        # the theoretical box bounds the gradient field; no ResNet layer leaves holes, so
        # they are equal
        assert mask_box(mask) == box, unit
        boxes.append(box)
    if last.size[0] < size - 2 * last.jump[0]:  # the centre unit's field fits the image
        assert boxes[0][2] - boxes[0][0] == last.size[1]
        # neighbouring units are one jump apart: the table's jump is the network's stride
        assert boxes[1][0] - boxes[0][0] == last.jump[1] == size // out.shape[-1]


def test_residual_block_whose_shortcut_sees_more_is_refused():
    from torchvision.models.resnet import BasicBlock

    wide = BasicBlock(1, 1, downsample=nn.Sequential(nn.Conv2d(1, 1, 7, padding=3)))
    with pytest.raises(ValueError, match="shortcut"):
        layers_from_model(nn.Sequential(wide))
    skewed = BasicBlock(1, 1, stride=2, downsample=nn.Sequential(nn.Conv2d(1, 1, 1, stride=1)))
    with pytest.raises(ValueError, match="jumps 1 and 2"):
        layers_from_model(nn.Sequential(skewed))


def test_unknown_blocks_and_whole_resnets_are_refused_saying_what_to_do():
    with pytest.raises(ValueError, match=r"nn.Sequential\(\*list\(resnet.children\(\)\)\[:-2\]\)"):
        layers_from_model(torchvision.models.resnet18(weights=None))

    class Custom(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="longest path"):
        layers_from_model(nn.Sequential(nn.Conv2d(1, 1, 3), Custom()))


def random_stack(rng: random.Random) -> nn.Sequential:
    """A few convolutions and poolings with strides, padding and dilation."""
    modules, channels, jump = [], 1, 1
    for _ in range(rng.randint(2, 5)):
        kind = rng.choice(["conv", "conv", "max", "avg"])
        k = rng.randint(1, 4) if kind == "conv" else rng.randint(2, 3)
        s = rng.choice([1, 1, 2]) if jump < 8 else 1
        p = rng.randint(0, k // 2)
        if kind == "conv":
            d = rng.choice([1, 1, 2, 3])
            modules += [nn.Conv2d(channels, 2, k, s, p, d), nn.ReLU()]
            channels = 2
        elif kind == "max":
            modules.append(
                nn.MaxPool2d(k, s, p, dilation=rng.choice([1, 2]), ceil_mode=rng.random() < 0.3)
            )
        else:
            modules.append(nn.AvgPool2d(k, s, p, ceil_mode=rng.random() < 0.3))
        jump *= s
    return nn.Sequential(*modules)


def test_analytic_size_equals_empirical_gradient_field():
    rng = random.Random(0)
    torch.manual_seed(0)
    checked = 0
    while checked < 25:
        model = random_stack(rng)
        layers = layers_from_model(model)
        last = receptive_field_table(layers)[-1]
        size = 2 * last.size[0] + 4 * last.jump[0] + 8  # large enough for an interior unit
        out_h = receptive_field_table(layers, size)[-1].output_hw[0]
        unit = (out_h // 2, out_h // 2)
        box = receptive_field_of_unit(layers, unit, size).tolist()
        # the unit's field lies inside the image: the clipped box is the whole extent
        assert box[2] - box[0] == last.size[0] and box[3] - box[1] == last.size[1]
        measured = empirical_receptive_field(model, (1, size, size), unit)
        assert mask_box(measured.mask) == box, (model, unit)
        # a model's own weights may hide pixels (max pool winners, dead ReLUs), never add
        own = empirical_receptive_field(model, (1, size, size), unit, positive_weights=False)
        x1, y1, x2, y2 = (int(v) for v in box)
        outside = own.mask.clone()
        outside[y1:y2, x1:x2] = False
        assert not outside.any()
        checked += 1


def test_border_units_stay_inside_the_clipped_box():
    rng = random.Random(1)
    for _ in range(10):
        model = random_stack(rng)
        layers = layers_from_model(model)
        size = receptive_field_table(layers)[-1].size[0] + 6
        out_h, out_w = receptive_field_table(layers, size)[-1].output_hw
        for unit in [(0, 0), (out_h - 1, out_w - 1)]:
            x1, y1, x2, y2 = (int(v) for v in receptive_field_of_unit(layers, unit, size))
            mask = empirical_receptive_field(model, (1, size, size), unit).mask
            assert mask[y1:y2, x1:x2].any()
            mask[y1:y2, x1:x2] = False
            assert not mask.any()


def test_dilation_leaves_holes_inside_the_extent():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2))
    mask = empirical_receptive_field(model, (1, 9, 9), (2, 2)).mask
    assert mask_box(mask) == receptive_field_of_unit(layers_from_model(model), (2, 2), 9).tolist()
    assert mask.sum() == 9  # 3 x 3 taps spread over a 5 x 5 extent
    assert mask[2:7:2, 2:7:2].all()


def test_max_pool_hides_pixels_unless_positive():
    model = nn.Sequential(nn.MaxPool2d(4))
    own = empirical_receptive_field(model, (1, 8, 8), (1, 1), positive_weights=False).mask
    full = empirical_receptive_field(model, (1, 8, 8), (1, 1)).mask
    assert own.sum() == 1 and full.sum() == 16


def test_dict_outputs_of_torchvision_segmentation_models_use_out():
    # issue 12: AttributeError 'dict' object has no attribute 'dim' on {"out": ...}
    from vizlib.nn import LogitsOnly, torchvision_fcn

    fcn = torchvision_fcn(3, "resnet18")  # LogitsOnly around torchvision's FCN
    as_dict = empirical_receptive_field(fcn.model, (3, 32, 32), (5, 7))
    as_tensor = empirical_receptive_field(fcn, (3, 32, 32), (5, 7))
    assert torch.equal(as_dict.gradient, as_tensor.gradient) and as_dict.mask.any()
    big = torchvision.models.segmentation.fcn_resnet50(
        weights=None, weights_backbone=None, num_classes=3
    )
    as_dict = empirical_receptive_field(big, (3, 24, 24), (3, 3), channel=2)
    assert torch.equal(
        as_dict.gradient,
        empirical_receptive_field(LogitsOnly(big), (3, 24, 24), (3, 3), channel=2).gradient,
    )


class Pick(nn.Module):
    """``model(x)[key]``: a tensor-valued model to compare a dict-valued one against."""

    def __init__(self, model: nn.Module, key: str):
        super().__init__()
        self.model, self.key = model, key

    def forward(self, x):
        return self.model(x)[self.key]


class AsTuple(nn.Module):
    """Returns a tuple: neither a tensor nor a dict."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3)

    def forward(self, x):
        return (self.conv(x),)


def test_output_key_picks_the_head():
    # torchvision's FCN with a main head on layer2 and an auxiliary one on layer1: the aux
    # head sees less of the image, so the key chosen shows in the mask
    from torchvision.models._utils import IntermediateLayerGetter

    resnet = torchvision.models.resnet18(weights=None)
    backbone = IntermediateLayerGetter(resnet, {"layer1": "aux", "layer2": "out"})
    fcn = FCN(backbone, FCNHead(128, 2), FCNHead(64, 2))
    masks = {}
    for key in ("out", "aux"):
        measured = empirical_receptive_field(fcn, (3, 160, 160), (80, 80), output_key=key)
        assert torch.equal(
            measured.gradient,
            empirical_receptive_field(Pick(fcn, key), (3, 160, 160), (80, 80)).gradient,
        )
        masks[key] = measured.mask
    assert torch.equal(empirical_receptive_field(fcn, (3, 160, 160), (80, 80)).mask, masks["out"])
    assert masks["aux"].sum() < masks["out"].sum() < 160 * 160
    assert not (masks["aux"] & ~masks["out"]).any()
    with pytest.raises(ValueError, match=r"keys \['out', 'aux'\].*output_key = 'logits'"):
        empirical_receptive_field(fcn, (3, 160, 160), (80, 80), output_key="logits")


def test_caller_model_is_not_changed():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.MaxPool2d(2), nn.GroupNorm(1, 2)
    )
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    empirical_receptive_field(model, (1, 12, 12), (2, 2))
    empirical_receptive_field(model, (1, 12, 12), (2, 2), positive_weights=False, channel=1)
    assert model.training and isinstance(model[2], nn.MaxPool2d)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: Layer("deconv", 3), "kind"),
        (lambda: Layer("conv", 0), "kernel"),
        (lambda: Layer("conv", 3, stride=(1, 0)), "stride"),
        (lambda: Layer("conv", 3, padding=-1), "padding"),
        (lambda: Layer("conv", 3, dilation=1.5), "dilation"),
        (lambda: receptive_field_table([(3, 1)]), "layers"),
        (lambda: receptive_field_table([Layer("conv", 5)], 3), "kernel"),
        (lambda: receptive_field_of_unit([Layer("conv", 3)], (8, 0), 10), "unit"),
        (lambda: receptive_field_of_unit([Layer("conv", 3)], (-1, 0), 10), "unit"),
        (lambda: receptive_field_of_unit([], (0, 0), 10), "layers"),
        (lambda: empirical_receptive_field("net", (1, 8, 8), (0, 0)), "model"),
        (lambda: empirical_receptive_field(nn.Conv2d(1, 1, 3), (8, 8), (0, 0)), "input_shape"),
        (lambda: empirical_receptive_field(nn.Conv2d(1, 1, 3), (1, 8, 8), (6, 0)), "unit"),
        (
            lambda: empirical_receptive_field(nn.Conv2d(1, 1, 3), (1, 8, 8), (0, 0), channel=1),
            "channel",
        ),
        (lambda: empirical_receptive_field(AsTuple(), (1, 8, 8), (0, 0)), "model must return"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
