"""Exercises of the page "Anchors" (book/anchors): label anchors from an IoU matrix, and
encode a true box as the four offsets the head learns to predict.

Expected values come from hand-computed cases and from the library's references:
``vizlib.anchors.match_anchors`` (proven equal to torchvision's ``Matcher`` in
tests/test_anchors.py) and torchvision's ``BoxCoder.encode_single`` (which
``vizlib.boxes.encode_deltas`` equals)."""

from __future__ import annotations

from ..spec import EDGE_WEIGHT, Case, exercise, hidden

_NOT_THE_ANSWER = ("vizlib.exercises",)


def _random_boxes(n: int, seed: int | None = None, size: float = 160.0, g=None):
    """``n`` valid xyxy boxes with positive width and height inside a ``size`` square
    (from a fixed seed, or from generator ``g``)."""
    import torch

    g = g if g is not None else torch.Generator().manual_seed(seed)
    wh = 8 + torch.rand(n, 2, generator=g) * size / 3  # [n, 2]
    xy = torch.rand(n, 2, generator=g) * (size - wh)  # [n, 2] top-left corners
    return torch.cat([xy, xy + wh], dim=1)  # [n, 4]


@exercise(
    "anchors.label_anchors",
    title="Label anchors from an IoU matrix",
    function="label_anchors",
    points=3,
    hint="Work per anchor (per column): its best IoU over the true boxes and which box gives "
    "it. The best IoU puts the anchor in one of three bands (>= fg: that box's index; "
    "< bg: BACKGROUND; in between: IGNORE). With the rule switched on, find each box's "
    "best IoU over the anchors (per row), mark every anchor that reaches it (ties "
    "included, and only where it is above 0) and give those anchors their best box.",
    forbidden=("match_anchors", "match_anchors_to_boxes", "Matcher", "vizlib.nn") + _NOT_THE_ANSWER,
)
def _label_anchors_cases():
    import torch

    from vizlib.anchors import BACKGROUND, IGNORE, match_anchors
    from vizlib.boxes import box_iou

    def t(rows):
        return torch.tensor(rows, dtype=torch.float32)

    def labels(values):
        return torch.tensor(values, dtype=torch.int64)

    bg, ig = BACKGROUND, IGNORE
    yield Case(
        "one box, thresholds 0.7 / 0.3: IoU 0.9 positive, 0.5 ignored, 0.1 background",
        (t([[0.9, 0.5, 0.1]]), 0.7, 0.3, False),
        expected=labels([0, ig, bg]),
        hint="a positive anchor is labelled with the index of its box (here 0); the "
        "others with the constants BACKGROUND and IGNORE",
    )
    yield Case(
        "exactly at the thresholds: IoU 0.7 is positive, IoU 0.3 is ignored",
        (t([[0.7, 0.3, 0.29]]), 0.7, 0.3, False),
        expected=labels([0, ig, bg]),
        hint="positive means IoU >= fg; background means IoU < bg, strictly below",
    )
    yield Case(
        "an anchor over two boxes goes to the one it overlaps most (row 1 here)",
        (t([[0.75, 0.1], [0.8, 0.0]]), 0.7, 0.3, False),
        expected=labels([1, bg]),
        hint="rows are true boxes, columns anchors: take the max over dim 0",
    )
    two_boxes = t([[0.6, 0.2, 0.0], [0.0, 0.1, 0.9]])
    yield Case(
        "rule off: a box whose best anchor reaches only 0.6 gets no positive",
        (two_boxes, 0.7, 0.3, False),
        expected=labels([ig, bg, 1]),
    )
    yield Case(
        "rule on: that box claims its best anchor anyway",
        (two_boxes, 0.7, 0.3, True),
        expected=labels([0, bg, 1]),
        hint="per row (true box), the best IoU over the anchors; the anchor(s) that "
        "reach it become positive",
    )
    yield Case(
        "rule on: every anchor tied for a box's best IoU is claimed",
        (t([[0.4, 0.4, 0.1]]), 0.7, 0.3, True),
        expected=labels([0, 0, bg]),
        hint="compare the row with its maximum (==) instead of taking one argmax",
    )
    yield Case(
        "rule on: a box that no anchor overlaps at all (best IoU 0) claims nothing",
        (t([[0.0, 0.0], [0.8, 0.1]]), 0.7, 0.3, True),
        expected=labels([1, bg]),
        hint="an anchor with IoU 0 is no match for anything: claim only where the "
        "box's best IoU is above 0",
    )
    yield Case(
        "rule on: a claimed anchor takes the box it overlaps most, which need not be "
        "the box that claimed it",
        (t([[0.5, 0.0], [0.6, 0.65]]), 0.7, 0.3, True),
        expected=labels([1, 1]),
        hint="the rule changes whether an anchor is positive, not which box it gets: "
        "that is still the argmax over its column",
    )
    yield Case(
        "equal thresholds (0.5 / 0.5, as SSD): nothing is ignored",
        (t([[0.5, 0.49, 0.51]]), 0.5, 0.5, False),
        expected=labels([0, bg, 0]),
    )
    yield Case(
        "an image without objects: every anchor is background",
        (torch.zeros(0, 4), 0.7, 0.3, True),
        expected=labels([bg] * 4),
        hint="M = 0 rows: there is no max over an empty dimension, handle it first",
    )
    yield Case(
        "no anchors: an empty int64 tensor",
        (torch.zeros(2, 0), 0.7, 0.3, True),
        expected=labels([]),
        weight=EDGE_WEIGHT,
    )
    anchors = _random_boxes(300, seed=11)
    gt = _random_boxes(6, seed=12)
    iou = box_iou(gt, anchors)  # [6, 300]
    for fg, bg_t, rule, who in ((0.7, 0.3, True, "the RPN's"), (0.5, 0.4, False, "RetinaNet's")):
        yield Case(
            f"6 boxes x 300 anchors with {who} {fg} / {bg_t}, rule {'on' if rule else 'off'}: "
            "agrees with vizlib.anchors",
            (iou, fg, bg_t, rule),
            expected=match_anchors(iou, fg, bg_t, rule),
        )


@exercise(
    "anchors.encode_offsets",
    title="The four offsets from an anchor to its box",
    function="encode_offsets",
    points=3,
    hint="Turn both boxes into centre (x, y) and size (w, h). The centre shift is measured in "
    "units of the anchor's size: (x - xa) / wa and (y - ya) / ha. The size change is the "
    "log of the ratio: log(w / wa) and log(h / ha). Multiply the four by the weights "
    "(wx, wy, ww, wh) and stack them into [N, 4].",
    forbidden=(
        "encode_deltas",
        "encode_single",
        "encode_boxes",
        "BoxCoder",
        "vizlib.boxes",
        "vizlib.nn",
    )
    + _NOT_THE_ANSWER,
)
def _encode_offsets_cases():
    import math

    import torch
    from torchvision.models.detection._utils import BoxCoder

    def t(rows):
        return torch.tensor(rows, dtype=torch.float32)

    ones = (1.0, 1.0, 1.0, 1.0)
    anchor = t([[20, 40, 60, 60]])  # centre (40, 50), 40 wide, 20 high
    yield Case(
        "a box that is its anchor: all four offsets are 0",
        (anchor, anchor, ones),
        expected=torch.zeros(1, 4),
        weight=EDGE_WEIGHT,
    )
    yield Case(
        "moved 10 px right and 5 px down, on an anchor 40 wide and 20 high: (0.25, 0.25, 0, 0)",
        (anchor + t([[10, 5, 10, 5]]), anchor, ones),
        expected=t([[0.25, 0.25, 0, 0]]),
        hint="divide a shift in x by the anchor's width and a shift in y by its height",
    )
    yield Case(
        "the same 10 px shift on an anchor twice as wide is half the offset",
        (t([[50, 40, 130, 60]]), t([[40, 40, 120, 60]]), ones),
        expected=t([[0.125, 0, 0, 0]]),
    )
    yield Case(
        "twice as wide gives dw = log 2, half as high dh = -log 2 (same centre)",
        (t([[0, 45, 80, 55]]), anchor, ones),
        expected=t([[0, 0, math.log(2), -math.log(2)]]),
        hint="the size offsets are logs of ratios, so that doubling and halving are "
        "equally large, with opposite signs",
    )
    boxes = t([[12, 30, 70, 64], [0, 0, 10, 10]])
    anchors = t([[20, 40, 60, 60], [2, 2, 14, 8]])
    yield Case(
        "torchvision's RoI-head weights (10, 10, 5, 5) scale the four offsets",
        (boxes, anchors, (10.0, 10.0, 5.0, 5.0)),
        expected=BoxCoder((10.0, 10.0, 5.0, 5.0)).encode_single(boxes, anchors),
        hint="multiply dx, dy by the first two weights and dw, dh by the last two",
    )
    yield Case(
        "no boxes: shape [0, 4] in, [0, 4] out",
        (torch.zeros(0, 4), torch.zeros(0, 4), ones),
        expected=torch.zeros(0, 4),
        hint="work on whole columns; avoid loops and .item()",
        weight=EDGE_WEIGHT,
    )
    gt, anc = _random_boxes(50, seed=22), _random_boxes(50, seed=23)
    for weights in (ones, (10.0, 10.0, 5.0, 5.0)):
        yield Case(
            f"50 random boxes and anchors, weights {weights}: agrees with torchvision's BoxCoder",
            (gt, anc, weights),
            expected=BoxCoder(weights).encode_single(gt, anc),
        )


# ---------------------------------------------------------------- hidden cases
# Drawn at grading time from the instructor's secret (vizlib.exercises.spec.hidden): the
# same kinds of input as the random public cases, unknown without the secret.


def _count(g, low: int, high: int) -> int:
    import torch

    return int(torch.randint(low, high + 1, (1,), generator=g))


@hidden("anchors.label_anchors")
def _label_anchors_hidden(g):
    from vizlib.anchors import match_anchors
    from vizlib.boxes import box_iou

    for k, (fg, bg_t, rule) in enumerate(((0.7, 0.3, True), (0.5, 0.4, False), (0.6, 0.2, True))):
        gt = _random_boxes(_count(g, 2, 8), g=g)
        anchors = _random_boxes(_count(g, 60, 200), g=g)
        iou = box_iou(gt, anchors)
        yield Case(
            f"random boxes and anchors ({k + 1})",
            (iou, fg, bg_t, rule),
            expected=match_anchors(iou, fg, bg_t, rule),
        )


@hidden("anchors.encode_offsets")
def _encode_offsets_hidden(g):
    from torchvision.models.detection._utils import BoxCoder

    for k, weights in enumerate(
        ((1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0), (2.0, 3.0, 1.5, 0.5))
    ):
        n = _count(g, 5, 40)
        gt, anc = _random_boxes(n, g=g), _random_boxes(n, g=g)
        yield Case(
            f"random boxes and anchors ({k + 1})",
            (gt, anc, weights),
            expected=BoxCoder(weights).encode_single(gt, anc),
        )
