"""vizlib.nn.fpn: the feature pyramid (checked against torchvision's FeaturePyramidNetwork
with the same weights), the paper's level rule (against torchvision's LevelMapper) and the
backbone + FPN module Faster R-CNN uses."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.poolers import LevelMapper

from vizlib.nn.backbone import VGGBackbone
from vizlib.nn.fpn import FPN, FPNBackbone, fpn_levels


def _copy_into_torchvision(ours: FPN, theirs: FeaturePyramidNetwork) -> None:
    with torch.no_grad():
        for i, (lat, out) in enumerate(zip(ours.lateral, ours.output, strict=True)):
            theirs.inner_blocks[i][0].weight.copy_(lat.weight)
            theirs.inner_blocks[i][0].bias.copy_(lat.bias)
            theirs.layer_blocks[i][0].weight.copy_(out.weight)
            theirs.layer_blocks[i][0].bias.copy_(out.bias)


@pytest.mark.parametrize("sizes", [[(16, 16), (8, 8), (4, 4)], [(15, 13), (8, 7), (4, 4)]])
def test_fpn_equals_torchvisions_with_the_same_weights(sizes):
    torch.manual_seed(0)
    channels = [8, 16, 12]
    ours = FPN(channels, 10)
    for conv in [*ours.lateral, *ours.output]:  # non-zero biases, so that they are compared
        torch.nn.init.normal_(conv.bias)
    theirs = FeaturePyramidNetwork(channels, 10)
    _copy_into_torchvision(ours, theirs)
    features = [torch.randn(2, c, h, w) for c, (h, w) in zip(channels, sizes, strict=True)]
    got = ours(features)
    want = list(theirs({str(i): f for i, f in enumerate(features)}).values())
    assert [tuple(g.shape) for g in got] == [(2, 10, h, w) for h, w in sizes]
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    # the top-down path carries the coarsest map down to the finest output
    changed = [f.clone() for f in features]
    changed[-1] += 1.0
    assert not torch.allclose(ours(changed)[0], got[0])


def test_fpn_initialises_like_torchvision_and_checks_its_input():
    fpn = FPN([4, 8], 6)
    assert all(float(c.bias.detach().abs().sum()) == 0 for c in [*fpn.lateral, *fpn.output])
    assert fpn.lateral[0].kernel_size == (1, 1) and fpn.output[0].kernel_size == (3, 3)
    with pytest.raises(ValueError, match="list of 2 maps"):
        fpn([torch.randn(1, 4, 8, 8)])
    with pytest.raises(ValueError, match="batch size"):
        fpn([torch.randn(1, 4, 8, 8), torch.randn(2, 8, 4, 4)])
    with pytest.raises(ValueError, match="in_channels_list"):
        FPN([], 6)
    with pytest.raises(ValueError, match="out_channels"):
        FPN([4], 0)


def test_fpn_levels_follow_the_papers_equation():
    boxes = torch.tensor(
        [
            [0.0, 0.0, 224.0, 224.0],  # canonical: level 4
            [0.0, 0.0, 112.0, 112.0],  # half as wide: one level finer
            [0.0, 0.0, 448.0, 448.0],  # twice: one coarser
            [0.0, 0.0, 111.0, 111.0],  # just under 112: level 2
            [10.0, 10.0, 12.0, 12.0],  # tiny: clamped to k_min
            [0.0, 0.0, 2000.0, 2000.0],  # huge: clamped to k_max
            [5.0, 5.0, 5.0, 9.0],  # zero area: the finest level
        ]
    )
    got = fpn_levels(boxes, 2, 5)
    assert got.dtype == torch.int64
    assert got.tolist() == [4, 3, 5, 2, 2, 5, 2]
    # a smaller canonical size moves every box coarser
    assert fpn_levels(boxes[:2], 2, 5, canonical_size=112).tolist() == [5, 4]


def test_fpn_levels_equal_torchvisions_level_mapper():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(500, 2, generator=g) * 300
    wh = torch.exp(torch.rand(500, 2, generator=g) * 7)  # 1 to 1100 pixels
    boxes = torch.cat([xy, xy + wh], dim=1)
    exact = torch.tensor([[0.0, 0.0, 56.0, 56.0], [0.0, 0.0, 896.0, 896.0]])  # 224 * 2**j
    boxes = torch.cat([boxes, exact])
    for k_min, k_max, size, level in [(2, 5, 224, 4), (2, 4, 32, 3), (3, 3, 224, 4)]:
        mapper = LevelMapper(k_min, k_max, canonical_scale=size, canonical_level=level)
        want = mapper([boxes]) + k_min
        assert torch.equal(fpn_levels(boxes, k_min, k_max, size, level), want)


def test_fpn_levels_rejects_bad_input():
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    with pytest.raises(ValueError, match="k_max"):
        fpn_levels(box, 4, 2)
    with pytest.raises(ValueError, match="canonical_size"):
        fpn_levels(box, 2, 4, canonical_size=0)
    with pytest.raises(ValueError, match="x2 < x1"):
        fpn_levels(torch.tensor([[10.0, 0.0, 5.0, 10.0]]), 2, 4)
    with pytest.raises(ValueError, match="boxes"):
        fpn_levels(torch.zeros(3, 3), 2, 4)


def test_fpn_backbone_levels_strides_and_single_scale():
    torch.manual_seed(0)
    body = VGGBackbone((4, 8, 8, 8), convs_per_stage=1)
    pyramid = FPNBackbone(body, levels=(1, 2, 3), out_channels=12)
    assert pyramid.strides == [4, 8, 16] and pyramid.level_numbers == [2, 3, 4]
    x = torch.rand(2, 3, 64, 64)
    out = pyramid(x)
    assert [tuple(f.shape) for f in out] == [(2, 12, 16, 16), (2, 12, 8, 8), (2, 12, 4, 4)]
    # the pyramid is the FPN on the chosen stages
    stages = body(x)
    for got, want in zip(out, pyramid.neck([stages[1], stages[2], stages[3]]), strict=True):
        torch.testing.assert_close(got, want)

    single = FPNBackbone(body, levels=(1, 2, 3), out_channels=12, use_fpn=False)
    assert single.strides == [16] and single.levels == [3]
    assert single.requested_levels == [1, 2, 3]
    (only,) = single(x)
    want = single.neck(stages[3])  # a 1x1 convolution of the last stage
    assert only.shape == (2, 12, 4, 4)
    torch.testing.assert_close(only, want)

    default = FPNBackbone()
    assert default.strides == [4, 8, 16] and default.out_channels == 64
    with pytest.raises(ValueError, match="levels"):
        FPNBackbone(body, levels=(2, 1))
    with pytest.raises(ValueError, match="levels"):
        FPNBackbone(body, levels=(1, 4))
    with pytest.raises(ValueError, match="use_fpn"):
        FPNBackbone(body, use_fpn=1)
    with pytest.raises(ValueError, match="different strides"):
        FPNBackbone(VGGBackbone((4, 8, 8, 8), convs_per_stage=1, output_stride=8), levels=(2, 3))
