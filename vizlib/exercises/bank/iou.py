"""Exercises of the page "Intersection over union" (book/iou): the GIoU loss of predicted
boxes against their targets.

Expected values come from hand-computed cases and from
``torchvision.ops.generalized_box_iou_loss`` (the diagonal of
``vizlib.boxes.generalized_box_iou``, which the tests prove equal to torchvision's)."""

from __future__ import annotations

from ..spec import EDGE_WEIGHT, Case, exercise, hidden

_NOT_THE_ANSWER = ("vizlib.exercises",)


@exercise(
    "iou.giou_loss",
    title="The GIoU loss of predicted boxes",
    function="giou_loss",
    points=3,
    hint="Per pair (row i of both tensors, no [N, M] matrix): the intersection as on this page "
    "(clamped at 0), the union, and C, the smallest box enclosing both (the smaller top-"
    "left corner, the larger bottom-right one). GIoU = IoU - (area(C) - union) / area(C), "
    "with 0 for a ratio whose denominator is 0; the loss is 1 - GIoU.",
    forbidden=(
        "generalized_box_iou",
        "generalized_box_iou_loss",
        "distance_box_iou_loss",
        "complete_box_iou_loss",
        "box_iou",
        "paired_box_iou",
        "vizlib.boxes",
        "torchvision.ops",
    )
    + _NOT_THE_ANSWER,
)
def _giou_loss_cases():
    import torch
    from torchvision.ops import generalized_box_iou_loss

    def t(rows):
        return torch.tensor(rows, dtype=torch.float32)

    def reference(pred, target):
        return generalized_box_iou_loss(pred, target, reduction="none")

    box = t([[25, 30, 65, 70]])
    yield Case("a perfect prediction costs 0", (box, box), expected=t([0.0]), weight=EDGE_WEIGHT)
    yield Case(
        "a box inside its target, a quarter of its area: 1 - 1/4 (C is the target, no penalty)",
        (t([[35, 40, 55, 60]]), box),
        expected=t([0.75]),
        hint="when one box encloses the other, C is the larger box and GIoU = IoU",
    )
    yield Case(
        "touching boxes: IoU 0, and no empty space in C, so the loss is exactly 1",
        (t([[65, 30, 105, 70]]), box),
        expected=t([1.0]),
    )
    gaps = t([[65 + g, 40, 85 + g, 60] for g in (10, 40, 100)])  # 20 x 20, right of the box
    yield Case(
        "disjoint boxes: the loss keeps growing with the gap (10, 40, 100 px), towards 2",
        (gaps, box.expand(3, 4)),
        expected=reference(gaps, box.expand(3, 4)),
        hint="the penalty is the share of C that neither box covers: (area(C) - union) / area(C)",
    )
    yield Case(
        "one loss per pair, in order: row i of pred against row i of target",
        (t([[0, 0, 10, 10], [0, 0, 10, 10]]), t([[0, 0, 10, 10], [5, 0, 15, 10]])),
        expected=t([0.0, 1 - 50 / 150]),
        hint="pairs, not every pair: the result has shape [N], not [N, N]",
    )
    dot = t([[5, 5, 5, 5]])
    yield Case(
        "two identical zero-area boxes: loss 1, not NaN",
        (dot, dot),
        expected=t([1.0]),
        hint="0 / 0 is NaN: where a denominator (the union or area(C)) is 0, use 0 for "
        "the ratio, as the book does for IoU",
    )
    yield Case(
        "no boxes: shape [0]",
        (torch.zeros(0, 4), torch.zeros(0, 4)),
        expected=torch.zeros(0),
        weight=EDGE_WEIGHT,
    )
    g = torch.Generator().manual_seed(51)
    xy = torch.rand(40, 2, generator=g) * 100
    target = torch.cat([xy, xy + 5 + torch.rand(40, 2, generator=g) * 40], dim=1)  # [40, 4]
    pred = target + torch.randn(40, 4, generator=g) * 15
    pred = torch.cat([pred[:, :2], torch.max(pred[:, 2:], pred[:, :2] + 1)], dim=1)  # valid boxes
    yield Case(
        "40 noisy predictions of 40 boxes, many disjoint: agrees with torchvision's "
        "generalized_box_iou_loss",
        (pred, target),
        expected=reference(pred, target),
    )


# ---------------------------------------------------------------- hidden cases
# Drawn at grading time from the instructor's secret (vizlib.exercises.spec.hidden): the
# same kinds of input as the random public cases, unknown without the secret.


@hidden("iou.giou_loss")
def _giou_loss_hidden(g):
    import torch
    from torchvision.ops import generalized_box_iou_loss

    for k, noise in enumerate((5.0, 15.0, 40.0)):
        n = int(torch.randint(5, 40, (1,), generator=g))
        xy = torch.rand(n, 2, generator=g) * 100
        target = torch.cat([xy, xy + 5 + torch.rand(n, 2, generator=g) * 40], dim=1)
        pred = target + torch.randn(n, 4, generator=g) * noise
        pred = torch.cat([pred[:, :2], torch.max(pred[:, 2:], pred[:, :2] + 1)], dim=1)
        yield Case(
            f"noisy predictions ({k + 1})",
            (pred, target),
            expected=generalized_box_iou_loss(pred, target, reduction="none"),
        )
