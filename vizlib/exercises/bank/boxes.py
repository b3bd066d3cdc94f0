"""Exercises of the page "Your first exercises" (book/exercises): box area and IoU."""

from __future__ import annotations

from ..spec import EDGE_WEIGHT, Case, exercise, hidden

_NOT_THE_ANSWER = ("vizlib.exercises",)  # the answer key is not a way to the answer


def _random_boxes(n: int, seed: int | None = None, g=None):
    """``n`` valid xyxy boxes with corners in [0, 80], from a fixed seed (or generator ``g``)."""
    import torch

    g = g if g is not None else torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 50  # [n, 2] top-left corners
    wh = torch.rand(n, 2, generator=g) * 30  # [n, 2] sizes
    return torch.cat([xy, xy + wh], dim=1)  # [n, 4]


@exercise(
    "box_area",
    title="Area of boxes",
    function="box_area",
    points=2,
    hint="For boxes [N, 4] in (x1, y1, x2, y2): width = x2 - x1, height = y2 - y1, "
    "area = width * height, one number per row: shape [N].",
    forbidden=("box_area",) + _NOT_THE_ANSWER,
)
def _box_area_cases():
    import torch
    from torchvision.ops import box_area

    yield Case(
        "one 2 x 3 box has area 6",
        (torch.tensor([[0.0, 0.0, 2.0, 3.0]]),),
        expected=torch.tensor([6.0]),
    )
    yield Case(
        "one area per box, in order",
        (torch.tensor([[1.0, 1.0, 4.0, 5.0], [0.5, 0.5, 1.0, 2.5], [10.0, 0.0, 20.0, 1.0]]),),
        expected=torch.tensor([12.0, 1.0, 10.0]),
        hint="index columns, not rows: boxes[:, 2] is x2 of every box",
    )
    yield Case(
        "a zero-width box has area 0",
        (torch.tensor([[3.0, 1.0, 3.0, 9.0]]),),
        expected=torch.tensor([0.0]),
        weight=EDGE_WEIGHT,
    )
    yield Case(
        "no boxes: shape [0, 4] gives shape [0]",
        (torch.zeros(0, 4),),
        expected=torch.zeros(0),
        hint="avoid loops over boxes; column arithmetic works for N = 0",
        weight=EDGE_WEIGHT,
    )
    boxes = _random_boxes(20, seed=1)
    yield Case(
        "20 random boxes agree with torchvision.ops.box_area", (boxes,), expected=box_area(boxes)
    )


@exercise(
    "iou",
    title="IoU of two sets of boxes",
    function="iou",
    points=3,
    hint="Intersection corners: the larger of the two x1 (and y1), the smaller of the two x2 "
    "(and y2), computed for every pair by broadcasting [N, 1, 2] against [M, 2]; clamp "
    "negative widths to 0; union = area1 + area2 - intersection; where the union is 0, "
    "the IoU is 0.",
    forbidden=("box_iou", "generalized_box_iou", "complete_box_iou", "distance_box_iou")
    + _NOT_THE_ANSWER,
)
def _iou_cases():
    import torch
    from torchvision.ops import box_iou

    import vizlib.boxes

    def t(rows):
        return torch.tensor(rows, dtype=torch.float32)

    square = t([[0, 0, 2, 2]])
    yield Case("a box with itself gives 1", (square, square), expected=t([[1.0]]))
    yield Case(
        "disjoint boxes give 0",
        (square, t([[5, 5, 6, 6]])),
        expected=t([[0.0]]),
        hint="clamp the intersection's width and height at 0 (they are negative here)",
        weight=EDGE_WEIGHT,
    )
    yield Case(
        "boxes that share only an edge give 0",
        (square, t([[2, 0, 4, 2]])),
        expected=t([[0.0]]),
        weight=EDGE_WEIGHT,
    )
    yield Case(
        "half overlap: intersection 2, union 6, IoU 1/3",
        (square, t([[1, 0, 3, 2]])),
        expected=t([[1 / 3]]),
        hint="union = area1 + area2 - intersection",
    )
    yield Case(
        "a 2 x 2 box inside a 4 x 4 box gives 4/16",
        (t([[0, 0, 4, 4]]), t([[1, 1, 3, 3]])),
        expected=t([[0.25]]),
    )
    a, b = t([[0, 0, 2, 2], [1, 1, 3, 3], [0, 0, 1, 4]]), t([[0, 0, 2, 2], [2, 0, 3, 3]])
    yield Case(
        "3 boxes against 2 give a [3, 2] matrix, row i = boxes1[i]",
        (a, b),
        expected=vizlib.boxes.box_iou(a, b),
        hint="broadcast boxes1[:, None, :] against boxes2[None, :, :]",
    )
    point = t([[1, 1, 1, 1]])
    yield Case(
        "a zero-area box gives 0, not NaN",
        (point, point),
        expected=t([[0.0]]),
        hint="0 / 0 is NaN: use torch.where(union > 0, inter / union, 0)",
        weight=EDGE_WEIGHT,
    )
    r1, r2 = _random_boxes(6, seed=2), _random_boxes(5, seed=3)
    yield Case(
        "6 x 5 random boxes agree with torchvision.ops.box_iou", (r1, r2), expected=box_iou(r1, r2)
    )
    yield Case(
        "no boxes on one side: [0, 4] against [2, 4] gives shape [0, 2]",
        (torch.zeros(0, 4), r2[:2]),
        expected=torch.zeros(0, 2),
        weight=EDGE_WEIGHT,
    )


# ---------------------------------------------------------------- hidden cases
# Drawn at grading time from the instructor's secret (see vizlib.exercises.spec): their
# inputs are unknown without it, so a table of the public answers does not pass them.


def _sizes(g, low: int, high: int) -> int:
    import torch

    return int(torch.randint(low, high + 1, (1,), generator=g))


@hidden("box_area")
def _box_area_hidden(g):
    import torch
    from torchvision.ops import box_area

    for k in range(4):
        boxes = _random_boxes(_sizes(g, 3, 30), g=g) * (1 + 4 * torch.rand(1, generator=g))
        yield Case(f"random boxes ({k + 1})", (boxes,), expected=box_area(boxes))


@hidden("iou")
def _iou_hidden(g):
    from torchvision.ops import box_iou

    for k in range(3):
        a, b = _random_boxes(_sizes(g, 4, 12), g=g), _random_boxes(_sizes(g, 4, 12), g=g)
        yield Case(f"random boxes ({k + 1})", (a, b), expected=box_iou(a, b))
    a = _random_boxes(_sizes(g, 3, 8), g=g)
    yield Case("boxes against themselves", (a, a.clone()), expected=box_iou(a, a))
