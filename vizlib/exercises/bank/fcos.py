"""Exercises of the chapter "FCOS" (lessons/fcos): the centre-ness target (whose solution
trains a short run in the chapter), FCOS's assignment of locations to objects, and the
GIoU loss.

Expected values come from hand-computed cases and from the library's references,
``vizlib.losses.fcos_centerness_target``, ``vizlib.nn.fcos.assign_fcos_targets`` (equal
to the matching of torchvision's ``FCOS.compute_loss``) and ``vizlib.nn.fcos.giou_loss``
(equal to ``torchvision.ops.generalized_box_iou_loss``), all tested in tests/test_fcos.py."""

from __future__ import annotations

import math

from ..spec import EDGE_WEIGHT, Case, exercise, hidden

_NOT_THE_ANSWER = ("vizlib.exercises", "vizlib.nn", "vizlib.losses", "torchvision")


@exercise(
    "fcos.centerness",
    title="The centre-ness target",
    function="centerness",
    points=3,
    hint="With ltrb = [P, 4] columns l, t, r, b: sqrt(min(l, r) / max(l, r) * min(t, b) / "
    "max(t, b)). Take the minimum and maximum over the pairs (columns 0 and 2, then 1 and "
    "3); where a maximum is 0 (zero width or height) the ratio counts 0, not NaN.",
    forbidden=("fcos_centerness_target",) + _NOT_THE_ANSWER,
)
def _centerness_cases():
    import torch

    from vizlib.losses import fcos_centerness_target

    yield Case(
        "the centre of a box (l = r, t = b) has centre-ness 1",
        (torch.tensor([[5.0, 3.0, 5.0, 3.0]]),),
        expected=torch.tensor([1.0]),
    )
    yield Case(
        "l, t, r, b = 1, 4, 3, 4: sqrt(1/3 * 1)",
        (torch.tensor([[1.0, 4.0, 3.0, 4.0]]),),
        expected=torch.tensor([math.sqrt(1 / 3)]),
        hint="min(l, r) / max(l, r) = 1/3, min(t, b) / max(t, b) = 1, then the square root",
    )
    yield Case(
        "l, t, r, b = 10, 2, 10, 10 and 2, 8, 6, 2: both ratios count",
        (torch.tensor([[10.0, 2.0, 10.0, 10.0], [2.0, 8.0, 6.0, 2.0]]),),
        expected=torch.tensor([math.sqrt(0.2), math.sqrt(1 / 3 * 0.25)]),
        hint="left-right pairs are columns 0 and 2, top-bottom pairs 1 and 3",
    )
    yield Case(
        "a location on a side (l = 0) has centre-ness 0",
        (torch.tensor([[0.0, 2.0, 4.0, 2.0]]),),
        expected=torch.tensor([0.0]),
        weight=EDGE_WEIGHT,
    )
    yield Case(
        "a box of zero width (l = r = 0): 0, not NaN",
        (torch.tensor([[0.0, 2.0, 0.0, 2.0]]),),
        expected=torch.tensor([0.0]),
        hint="0 / 0 is NaN: use torch.where(max > 0, min / max, 0)",
        weight=EDGE_WEIGHT,
    )
    yield Case(
        "no location (an image with no object): an empty tensor [0]",
        (torch.zeros(0, 4),),
        expected=torch.zeros(0),
        weight=EDGE_WEIGHT,
    )
    g = torch.Generator().manual_seed(7)
    ltrb = torch.rand(40, 4, generator=g) * 30 + 0.5
    yield Case("40 random locations", (ltrb,), expected=fcos_centerness_target(ltrb), atol=1e-5)


@exercise(
    "fcos.assign_locations",
    title="FCOS's assignment: inside, near the centre, in the level's size range, smallest",
    function="assign_locations",
    points=4,
    hint="Compute ltrb = [P, M, 4]: x - x1, y - y1, x2 - x, y2 - y for every location and "
    "object. A pair is allowed when min(ltrb) > 0, max(|x - cx|, |y - cy|) < radius * "
    "stride, and low < max(ltrb) < high (the location's range). Each location takes the "
    "allowed object of smallest area, -1 if none. No objects: every location is -1.",
    forbidden=("assign_fcos_targets", "encode_fcos_targets", "compute_loss") + _NOT_THE_ANSWER,
)
def _assign_cases():
    import torch

    from vizlib.nn.fcos import assign_fcos_targets, fcos_points

    def expected(points, strides, ranges, boxes, radius):
        labels = torch.ones(len(boxes), dtype=torch.int64)
        return assign_fcos_targets(boxes, labels, points, strides, ranges, radius).matched

    pts, strides = fcos_points([(4, 4)], [8])
    wide = torch.tensor([[0.0, math.inf]]).expand(16, 2).clone()
    box = torch.tensor([[2.0, 2.0, 22.0, 14.0]])
    yield Case(
        "one box on a 4 x 4 level (stride 8), radius large: the 6 locations inside it",
        (pts, strides, wide, box, 10.0),
        expected=torch.tensor([0, 0, 0, -1, 0, 0, 0, -1] + [-1] * 8),
        hint="inside means all four distances > 0 (strictly)",
    )
    yield Case(
        "the same box, centre sampling radius 0.75 (6 px): only (12, 4) and (12, 12)",
        (pts, strides, wide, box, 0.75),
        expected=torch.tensor([-1, 0, -1, -1, -1, 0] + [-1] * 10),
        hint="the distance to the centre is max(|x - cx|, |y - cy|), compared with radius * stride",
    )
    yield Case(
        "the same box, size range (0, 10): max(l, t, r, b) is 10 or more everywhere, nothing",
        (pts, strides, torch.tensor([[0.0, 10.0]]).expand(16, 2).clone(), box, 10.0),
        expected=torch.full((16,), -1),
        weight=EDGE_WEIGHT,
    )
    two = torch.tensor([[0.0, 0.0, 30.0, 30.0], [8.0, 8.0, 16.0, 16.0]])
    yield Case(
        "two boxes claim the location (12, 12): the smaller (object 1) takes it",
        (pts, strides, wide, two, 10.0),
        expected=expected(pts, strides, wide, two, 10.0),
        hint="among the allowed objects, the smallest area wins",
    )
    yield Case(
        "no objects (an empty image): every location is -1",
        (pts, strides, wide, torch.zeros(0, 4), 1.5),
        expected=torch.full((16,), -1),
        weight=EDGE_WEIGHT,
    )
    pts2, strides2 = fcos_points([(8, 8), (4, 4)], [8, 16])
    ranges2 = torch.tensor([[0.0, 32.0]] * 64 + [[32.0, math.inf]] * 16)
    g = torch.Generator().manual_seed(13)
    for n in (2, 4):
        xy = torch.rand(n, 2, generator=g) * 36
        gt = torch.cat([xy, xy + 6 + torch.rand(n, 2, generator=g) * 24], dim=1)
        yield Case(
            f"{n} random objects on the chapter's two levels (80 locations), radius 1.5",
            (pts2, strides2, ranges2, gt, 1.5),
            expected=expected(pts2, strides2, ranges2, gt, 1.5),
        )


@exercise(
    "fcos.giou_loss",
    title="The GIoU loss of boxes in pairs",
    function="giou_loss",
    points=3,
    hint="For each pair: IoU = inter / union; C = the smallest box enclosing both (min of "
    "the x1, y1, max of the x2, y2); GIoU = IoU - (area(C) - union) / area(C); the loss is "
    "1 - GIoU. Elementwise: [N, 4] and [N, 4] give [N].",
    forbidden=("generalized_box_iou", "generalized_box_iou_loss", "paired_box_iou")
    + _NOT_THE_ANSWER,
)
def _giou_cases():
    import torch

    from vizlib.nn.fcos import giou_loss

    yield Case(
        "a box with itself: loss 0",
        (torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[0.0, 0, 10, 10]])),
        expected=torch.tensor([0.0]),
        weight=EDGE_WEIGHT,
    )
    yield Case(
        "half overlapping boxes 0-10 and 5-15 (same height): IoU 1/3, C = union, loss 2/3",
        (torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[5.0, 0, 15, 10]])),
        expected=torch.tensor([2 / 3]),
    )
    yield Case(
        "disjoint boxes 0-10 and 20-30 (same height): IoU 0, C = 30 x 10, loss 1 + 1/3",
        (torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[20.0, 0, 30, 10]])),
        expected=torch.tensor([4 / 3]),
        hint="the enclosing box C is 30 wide; the part of C outside the union is 10 x 10",
    )
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(30, 2, generator=g) * 40, torch.rand(30, 2, generator=g) * 40
    b1 = torch.cat([a, a + 1 + torch.rand(30, 2, generator=g) * 20], dim=1)
    b2 = torch.cat([b, b + 1 + torch.rand(30, 2, generator=g) * 20], dim=1)
    yield Case("30 random pairs", (b1, b2), expected=giou_loss(b1, b2), atol=1e-5)


# ---------------------------------------------------------------- hidden cases


@hidden("fcos.centerness")
def _centerness_hidden(g):
    import torch

    from vizlib.losses import fcos_centerness_target

    for k in range(3):
        n = int(torch.randint(5, 60, (1,), generator=g))
        ltrb = torch.rand(n, 4, generator=g) * (10 + 30 * k) + 0.1
        yield Case(f"random locations ({k + 1})", (ltrb,), expected=fcos_centerness_target(ltrb))


@hidden("fcos.assign_locations")
def _assign_hidden(g):
    import torch

    from vizlib.nn.fcos import assign_fcos_targets, fcos_points

    pts, strides = fcos_points([(8, 8), (4, 4)], [8, 16])
    for k, radius in enumerate((1.5, 1.0, 2.5)):
        n = int(torch.randint(1, 6, (1,), generator=g))
        xy = torch.rand(n, 2, generator=g) * 40
        gt = torch.cat([xy, xy + 5 + torch.rand(n, 2, generator=g) * 25], dim=1)
        split = 8.0 + float(torch.rand(1, generator=g)) * 16
        ranges = torch.tensor([[0.0, split]] * 64 + [[split, math.inf]] * 16)
        yield Case(
            f"random objects, radius {radius} ({k + 1})",
            (pts, strides, ranges, gt, radius),
            expected=assign_fcos_targets(
                gt, torch.ones(n, dtype=torch.int64), pts, strides, ranges, radius
            ).matched,
        )


@hidden("fcos.giou_loss")
def _giou_hidden(g):
    import torch

    from vizlib.nn.fcos import giou_loss

    for k in range(3):
        n = int(torch.randint(5, 40, (1,), generator=g))
        a, b = torch.rand(n, 2, generator=g) * 50, torch.rand(n, 2, generator=g) * 50
        b1 = torch.cat([a, a + 0.5 + torch.rand(n, 2, generator=g) * 30], dim=1)
        b2 = torch.cat([b, b + 0.5 + torch.rand(n, 2, generator=g) * 30], dim=1)
        yield Case(f"random pairs ({k + 1})", (b1, b2), expected=giou_loss(b1, b2), atol=1e-5)
