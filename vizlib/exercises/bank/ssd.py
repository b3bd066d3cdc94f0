"""Exercises of the chapter "SSD" (lessons/ssd): the default boxes of one feature map, SSD's
matching, and hard negative mining (whose solution trains a short run in the chapter).

Expected values come from hand-computed cases and from the library's references,
``vizlib.anchors.default_boxes`` (equal to torchvision's ``DefaultBoxGenerator``),
``vizlib.anchors.match_default_boxes`` (torchvision's ``SSDMatcher``) and
``vizlib.anchors.hard_negative_mining`` (the selection of torchvision's
``SSD.compute_loss``), all tested in tests/test_ssd.py."""

from __future__ import annotations

from ..spec import Case, exercise, hidden

_NOT_THE_ANSWER = ("vizlib.exercises", "vizlib.nn", "vizlib.anchors", "torchvision")


@exercise(
    "ssd.map_default_boxes",
    title="The default boxes of one feature map",
    function="map_default_boxes",
    points=3,
    hint="Cell (i, j) of an H x W map is centred at ((j + 0.5) / W, (i + 0.5) / H) of the "
    "image. Its boxes, as (w, h) fractions of the image: (s, s), (s', s') with "
    "s' = sqrt(s * s_next), then for each ratio a: (s * sqrt(a), s / sqrt(a)) and "
    "(s / sqrt(a), s * sqrt(a)). Multiply x by the image width, y by its height; order "
    "the result row, then column, then box: [H * W * A, 4] xyxy.",
    forbidden=("default_boxes", "ssd_wh_pairs", "DefaultBoxGenerator") + _NOT_THE_ANSWER,
)
def _map_boxes_cases():
    import torch

    from vizlib.anchors import default_boxes

    def expected(feature_size, image_size, s, s_next, ratios):
        return default_boxes(
            image_size, [feature_size], [list(ratios)], scales=[s, s_next], clip=False
        )

    yield Case(
        "a 1 x 1 map on a 64 x 64 image, s = 0.25, s_next = 1, no ratio: two squares at the centre",
        ((1, 1), (64, 64), 0.25, 1.0, ()),
        expected=torch.tensor([[24.0, 24.0, 40.0, 40.0], [16.0, 16.0, 48.0, 48.0]]),
        hint="the second square has side sqrt(s * s_next) = 0.5 of the image",
    )
    yield Case(
        "a 1 x 1 map, s = 0.5, ratio 4: boxes of 64 x 16 and 16 x 64 after the two squares",
        ((1, 1), (64, 64), 0.5, 0.5, (4.0,)),
        expected=torch.tensor(
            [
                [16.0, 16.0, 48.0, 48.0],
                [16.0, 16.0, 48.0, 48.0],
                [0.0, 24.0, 64.0, 40.0],
                [24.0, 0.0, 40.0, 64.0],
            ]
        ),
        hint="for ratio a: first (w, h) = (s sqrt(a), s / sqrt(a)) (wide), then its transpose",
    )
    yield Case(
        "a 2 x 2 map on a 64 x 64 image, s = 0.25, s_next = 0.25: row first, then column, then box",
        ((2, 2), (64, 64), 0.25, 0.25, ()),
        expected=expected((2, 2), (64, 64), 0.25, 0.25, ()),
        hint="order: row i, then column j, then the box; cell (0, 1) is to the right of (0, 0)",
    )
    yield Case(
        "an 8 x 8 map on a 64 x 64 image, s = 0.15, s_next = 0.35, ratio 2 (the chapter's first map)",
        ((8, 8), (64, 64), 0.15, 0.35, (2.0,)),
        expected=expected((8, 8), (64, 64), 0.15, 0.35, (2.0,)),
        atol=1e-4,
    )
    yield Case(
        "a 3 x 4 map on a 48-high, 64-wide image, ratios 2 and 3",
        ((3, 4), (48, 64), 0.3, 0.6, (2.0, 3.0)),
        expected=expected((3, 4), (48, 64), 0.3, 0.6, (2.0, 3.0)),
        atol=1e-4,
        hint="feature_size and image_size are (height, width): x goes with the width",
    )


@exercise(
    "ssd.match_boxes",
    title="SSD's matching: the best box of every object, then IoU >= 0.5",
    function="match_boxes",
    points=3,
    hint="iou = [M, D] (objects x default boxes). Rule 1: each default box whose best IoU "
    "is >= iou_threshold gets that object's index, the others -1. Rule 2, then: each "
    "object m (in order) claims its best default box (argmax over its row), whatever "
    "the IoU, if that IoU is above 0. No objects: every box is -1.",
    forbidden=("match_default_boxes", "SSDMatcher", "Matcher", "match_anchors") + _NOT_THE_ANSWER,
)
def _match_cases():
    import torch

    from vizlib.anchors import default_boxes, match_default_boxes

    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 20, 20], [30, 30, 40, 40], [50, 50, 60, 60]])
    yield Case(
        "an object with IoU 0.90 with box 1 takes box 1 (rule 1); box 0 (IoU 0.28) stays -1",
        (torch.tensor([[0.0, 0, 19, 19]]), boxes, 0.5),
        expected=torch.tensor([-1, 0, -1, -1]),
    )
    yield Case(
        "an object whose best IoU is 0.38 (< 0.5) still gets its best box (rule 2)",
        (torch.tensor([[0.0, 0, 19, 19], [31.0, 31, 45, 45]]), boxes, 0.5),
        expected=torch.tensor([-1, 0, 1, -1]),
        hint="after the threshold, every object claims the box it overlaps most",
    )
    yield Case(
        "two objects overlap box 1 above 0.5: it goes to the one it overlaps more",
        (torch.tensor([[0.0, 0, 18, 18], [0.0, 0, 20, 21]]), boxes, 0.5),
        expected=match_default_boxes(
            torch.tensor([[0.0, 0, 18, 18], [0.0, 0, 20, 21]]), boxes, 0.5
        ),
    )
    yield Case(
        "no objects (an empty image): every default box is -1",
        (torch.zeros(0, 4), boxes, 0.5),
        expected=torch.full((4,), -1, dtype=torch.int64),
        hint="with M = 0 there is no max over the objects: return -1 everywhere first",
    )
    scene = default_boxes((64, 64), [(8, 8), (4, 4), (2, 2)], [[2.0]] * 3, 0.15, 0.55)
    g = torch.Generator().manual_seed(11)
    for n in (1, 4):
        xy = torch.rand(n, 2, generator=g) * 40
        gt = torch.cat([xy, xy + 6 + torch.rand(n, 2, generator=g) * 20], dim=1)
        yield Case(
            f"{n} random object(s) on the chapter's 336 default boxes",
            (gt, scene, 0.5),
            expected=match_default_boxes(gt, scene, 0.5),
        )
    gt = torch.tensor([[4.0, 4.0, 20.0, 20.0]])
    yield Case(
        "iou_threshold 0.3 instead of 0.5",
        (gt, scene, 0.3),
        expected=match_default_boxes(gt, scene, 0.3),
        hint="use iou_threshold, not a fixed 0.5",
    )


@exercise(
    "ssd.hard_negatives",
    title="Hard negative mining at 3:1",
    function="hard_negatives",
    points=3,
    hint="Per image (row): P = number of positives; rank the negatives by loss, highest "
    "first (set the positives' loss to -inf so they sort last: loss.masked_fill(positive, "
    "-inf).argsort(dim=1, descending=True)); keep the first neg_pos_ratio * P, never a "
    "positive. A row without positives keeps nothing. Return a bool [N, D] mask.",
    forbidden=("hard_negative_mining", "compute_loss") + _NOT_THE_ANSWER,
)
def _hard_negative_cases():
    import torch

    from vizlib.anchors import hard_negative_mining

    loss = torch.tensor([[0.1, 0.9, 0.5, 0.3, 0.8, 0.2, 2.0, 0.05]])
    one = torch.tensor([[False, False, False, False, False, False, True, False]])
    yield Case(
        "one positive (index 6): the 3 negatives of highest loss, 1, 4 and 2",
        (loss, one, 3.0),
        expected=torch.tensor([[False, True, True, False, True, False, False, False]]),
        hint="the positive itself has the highest loss but is never a negative",
    )
    yield Case(
        "neg_pos_ratio 1: only the hardest negative",
        (loss, one, 1.0),
        expected=torch.tensor([[False, True, False, False, False, False, False, False]]),
    )
    two = one.clone()
    two[0, 0] = True
    yield Case(
        "two positives want 6 negatives and 6 exist: all of them, no positive",
        (loss, two, 3.0),
        expected=~two,
        hint="never mark a positive, even when fewer than 3 P negatives exist",
    )
    yield Case(
        "a batch of two images: the count is per image, and an image with no positive gets none",
        (loss.repeat(2, 1), torch.cat([one, torch.zeros_like(one)]), 3.0),
        expected=torch.cat([hard_negative_mining(loss, one), torch.zeros_like(one)]),
        hint="count the positives per row: positive.sum(dim=1, keepdim=True)",
    )
    g = torch.Generator().manual_seed(5)
    rand = torch.rand(3, 200, generator=g)
    positive = torch.rand(3, 200, generator=g) < torch.tensor([[0.02], [0.05], [0.1]])
    yield Case(
        "three images of 200 default boxes with random losses",
        (rand, positive, 3.0),
        expected=hard_negative_mining(rand, positive, 3.0),
    )


# ---------------------------------------------------------------- hidden cases
# Drawn at grading time from the instructor's secret (vizlib.exercises.spec.hidden): the
# same kinds of input as the random public cases, unknown without the secret.


@hidden("ssd.map_default_boxes")
def _map_boxes_hidden(g):
    import torch

    from vizlib.anchors import default_boxes

    for k in range(3):
        fh, fw = (int(v) for v in torch.randint(1, 9, (2,), generator=g))
        height, width = (int(v) for v in torch.randint(32, 129, (2,), generator=g))
        s = 0.1 + float(torch.rand(1, generator=g)) * 0.5
        s_next = s + float(torch.rand(1, generator=g)) * 0.3
        ratios = tuple(float(r) for r in (1.5 + torch.rand(int(k), generator=g) * 2))
        yield Case(
            f"a random map and image ({k + 1})",
            ((fh, fw), (height, width), s, s_next, ratios),
            expected=default_boxes(
                (height, width), [(fh, fw)], [list(ratios)], scales=[s, s_next], clip=False
            ),
            atol=1e-3,
        )


@hidden("ssd.match_boxes")
def _match_hidden(g):
    import torch

    from vizlib.anchors import default_boxes, match_default_boxes

    boxes = default_boxes((64, 64), [(8, 8), (4, 4), (2, 2)], [[2.0]] * 3, 0.15, 0.55)
    for k in range(3):
        n = int(torch.randint(1, 6, (1,), generator=g))
        xy = torch.rand(n, 2, generator=g) * 44
        gt = torch.cat([xy, xy + 5 + torch.rand(n, 2, generator=g) * 25], dim=1)
        thr = (0.5, 0.4, 0.6)[k]
        yield Case(
            f"{n} random objects, threshold {thr} ({k + 1})",
            (gt, boxes, thr),
            expected=match_default_boxes(gt, boxes, thr),
        )


@hidden("ssd.hard_negatives")
def _hard_negatives_hidden(g):
    import torch

    from vizlib.anchors import hard_negative_mining

    for k, ratio in enumerate((3.0, 2.0, 5.0)):
        n, d = (
            int(torch.randint(1, 5, (1,), generator=g)),
            int(torch.randint(50, 400, (1,), generator=g)),
        )
        loss = torch.rand(n, d, generator=g) * 3
        positive = torch.rand(n, d, generator=g) < 0.02 + 0.1 * torch.rand(n, 1, generator=g)
        yield Case(
            f"random losses, ratio {ratio} ({k + 1})",
            (loss, positive, ratio),
            expected=hard_negative_mining(loss, positive, ratio),
        )
