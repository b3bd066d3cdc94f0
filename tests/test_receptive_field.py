"""vizlib.receptive_field: the Araujo et al. table, against gradients of real torch models."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

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
    [nn.Sequential(nn.ConvTranspose2d(1, 1, 2)), nn.Sequential(nn.AdaptiveAvgPool2d(1)),
     nn.Conv2d(1, 1, 3), nn.Sequential(nn.Conv2d(1, 1, 4, padding="same"))],
)
def test_layers_from_model_rejects_unknown_geometry(model):
    with pytest.raises(ValueError, match="model"):
        layers_from_model(model)


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
            modules.append(nn.MaxPool2d(k, s, p, dilation=rng.choice([1, 2]),
                                        ceil_mode=rng.random() < 0.3))
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


def test_caller_model_is_not_changed():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.MaxPool2d(2), nn.GroupNorm(1, 2))
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
        (lambda: empirical_receptive_field(nn.Conv2d(1, 1, 3), (1, 8, 8), (0, 0), channel=1),
         "channel"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
