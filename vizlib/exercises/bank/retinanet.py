"""Exercises of the chapter "RetinaNet" (lessons/retinanet): the anchors of one pyramid level,
RetinaNet's anchor assignment (0.5 / 0.4 with ignored anchors), and the focal loss (whose
solution trains a short run in the chapter).

Expected values come from hand-computed cases and from the library's references,
``vizlib.anchors.grid_anchors`` / ``generate_anchors`` (equal to torchvision's
``AnchorGenerator``), ``vizlib.anchors.match_anchors`` (torchvision's ``Matcher``) and
``vizlib.losses.sigmoid_focal_loss`` (``torchvision.ops.sigmoid_focal_loss``), all tested
in tests/test_anchors.py, tests/test_losses.py and tests/test_retinanet.py."""

from __future__ import annotations

from ..spec import EDGE_WEIGHT, Case, exercise, hidden

_NOT_THE_ANSWER = (
    "vizlib.exercises",
    "vizlib.nn",
    "vizlib.anchors",
    "vizlib.losses",
    "torchvision",
)


def _level_reference(feature_size, stride, sizes, ratios):
    from vizlib.anchors import generate_anchors, grid_anchors

    return grid_anchors(feature_size, stride, generate_anchors(sizes, ratios, round_to_int=True))


def _chapter_anchors():
    """The chapter's 756 anchors on a 64 x 64 scene: P3-P5, 3 scales x 3 ratios a location."""
    from vizlib.anchors import anchors_for_image

    return anchors_for_image(
        (64, 64),
        [(8, 8), (4, 4), (2, 2)],
        [[s * 2 ** (k / 3) for k in range(3)] for s in (8, 16, 32)],
        (0.5, 1.0, 2.0),
        round_to_int=True,
    )


def _assign_reference(gt_boxes, gt_labels, anchors, fg, bg):
    import torch

    from vizlib.anchors import match_anchors
    from vizlib.boxes import box_iou

    m = match_anchors(box_iou(gt_boxes, anchors), fg, bg, allow_low_quality_matches=True)
    out = torch.zeros(len(anchors), dtype=torch.int64)
    out[m >= 0] = gt_labels[m[m >= 0]].long()
    out[m == -2] = -1
    return out


@exercise(
    "retinanet.level_anchors",
    title="The anchors of one pyramid level",
    function="level_anchors",
    points=3,
    hint="Base anchors first, centred at 0: for each ratio r (height / width), for each size "
    "s: w = s / sqrt(r), h = s * sqrt(r), box (-w/2, -h/2, w/2, h/2), each corner rounded "
    "to a whole pixel (torch.round). Then shift them to every location (i, j): x + j * stride, "
    "y + i * stride (the cell's corner), location by location (row first), all base anchors "
    "of a location together: [H * W * A, 4].",
    forbidden=("grid_anchors", "generate_anchors", "anchors_for_image", "AnchorGenerator")
    + _NOT_THE_ANSWER,
)
def _level_anchor_cases():
    import torch

    yield Case(
        "a 1 x 1 level, stride 8, size 8, ratio 1: one square centred at (0, 0)",
        ((1, 1), 8, (8.0,), (1.0,)),
        expected=torch.tensor([[-4.0, -4.0, 4.0, 4.0]]),
    )
    yield Case(
        "a 1 x 1 level, sizes 8 and 16, ratios 0.5 and 2: ratio first, then size",
        ((1, 1), 8, (8.0, 16.0), (0.5, 2.0)),
        expected=_level_reference((1, 1), 8, (8.0, 16.0), (0.5, 2.0)),
        hint="ratio 0.5 (wide: w = s / sqrt(0.5)) with size 8, then with size 16, then ratio 2",
    )
    yield Case(
        "a 2 x 2 level, stride 16: row first, then column",
        ((2, 2), 16, (16.0,), (1.0,)),
        expected=torch.tensor(
            [
                [-8.0, -8.0, 8.0, 8.0],
                [8.0, -8.0, 24.0, 8.0],
                [-8.0, 8.0, 8.0, 24.0],
                [8.0] * 2 + [24.0] * 2,
            ]
        ),
        hint="location (0, 1) is one stride to the right of (0, 0): x changes first",
    )
    yield Case(
        "the chapter's P3: 8 x 8 locations, stride 8, sizes 8 to 12.7, ratios 0.5, 1, 2",
        ((8, 8), 8, (8.0, 8.0 * 2 ** (1 / 3), 8.0 * 2 ** (2 / 3)), (0.5, 1.0, 2.0)),
        expected=_level_reference(
            (8, 8), 8, (8.0, 8.0 * 2 ** (1 / 3), 8.0 * 2 ** (2 / 3)), (0.5, 1.0, 2.0)
        ),
        hint="round each base anchor's corners, as torchvision, before shifting",
    )
    yield Case(
        "a 3 x 2 level (3 rows, 2 columns), stride 32",
        ((3, 2), 32, (40.0,), (0.5, 1.0)),
        expected=_level_reference((3, 2), 32, (40.0,), (0.5, 1.0)),
        hint="feature_size is (rows, columns): y moves with the row i, x with the column j",
    )


@exercise(
    "retinanet.assign_anchors",
    title="RetinaNet's anchor assignment: positives, background, ignored",
    function="assign_anchors",
    points=3,
    hint="iou = [M, A] (objects x anchors). Each anchor's best IoU and object: >= fg_iou "
    "-> that object's label; < bg_iou -> 0 (background); in between -> -1 (ignored). Then "
    "each object whose best IoU is above 0 claims every anchor that reaches that best "
    "(ties included), and such an anchor takes the label of ITS best object. No object: "
    "every anchor 0.",
    forbidden=("match_anchors", "match_anchors_to_boxes", "Matcher", "box_iou") + _NOT_THE_ANSWER,
)
def _assign_cases():
    import torch

    anchors = torch.tensor([[0.0, 0, 10, 10], [0, 0, 20, 20], [30, 30, 40, 40], [50, 50, 60, 60]])
    yield Case(
        "IoU 0.90 with anchor 1: positive with the object's class; IoU 0.28 with anchor 0: background",
        (torch.tensor([[0.0, 0, 19, 19]]), torch.tensor([3]), anchors, 0.5, 0.4),
        expected=torch.tensor([0, 3, 0, 0]),
    )
    yield Case(
        "IoU 0.44 (between 0.4 and 0.5) with anchor 2 is ignored (-1) ... unless it is the "
        "object's best anchor: then it is claimed (positive)",
        (
            torch.tensor([[0.0, 0, 19, 19], [30.0, 30, 44, 43]]),
            torch.tensor([1, 2]),
            anchors,
            0.5,
            0.4,
        ),
        expected=_assign_reference(
            torch.tensor([[0.0, 0, 19, 19], [30.0, 30, 44, 43]]),
            torch.tensor([1, 2]),
            anchors,
            0.5,
            0.4,
        ),
        hint="after the thresholds, each object claims its best anchor whatever the IoU",
    )
    yield Case(
        "an anchor between the thresholds that no object claims stays ignored (-1)",
        (
            torch.tensor([[0.0, 0, 19, 19], [30.0, 30, 44, 43]]),
            torch.tensor([1, 2]),
            torch.cat([anchors, torch.tensor([[0.0, 0, 15, 14]])]),
            0.5,
            0.3,
        ),
        expected=_assign_reference(
            torch.tensor([[0.0, 0, 19, 19], [30.0, 30, 44, 43]]),
            torch.tensor([1, 2]),
            torch.cat([anchors, torch.tensor([[0.0, 0, 15, 14]])]),
            0.5,
            0.3,
        ),
        hint="-1 for IoU in [bg_iou, fg_iou)",
    )
    yield Case(
        "no objects (an empty image): every anchor is background (0)",
        (torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), anchors, 0.5, 0.4),
        expected=torch.zeros(4, dtype=torch.int64),
        hint="with M = 0 there is no max over the objects: return zeros first",
        weight=EDGE_WEIGHT,
    )
    scene = _chapter_anchors()
    g = torch.Generator().manual_seed(13)
    for n in (1, 4):
        xy = torch.rand(n, 2, generator=g) * 40
        gt = torch.cat([xy, xy + 6 + torch.rand(n, 2, generator=g) * 20], dim=1)
        labels = torch.randint(1, 6, (n,), generator=g)
        yield Case(
            f"{n} random object(s) on the chapter's 756 anchors",
            (gt, labels, scene, 0.5, 0.4),
            expected=_assign_reference(gt, labels, scene, 0.5, 0.4),
        )


@exercise(
    "retinanet.focal_loss",
    title="The focal loss, for every anchor and class",
    function="focal_loss",
    points=3,
    hint="p = sigmoid(logits); the cross-entropy -log(p_t) computed stably from the logits "
    "(F.binary_cross_entropy_with_logits(..., reduction='none'), or logsigmoid); p_t = p "
    "where the target is 1, 1 - p where it is 0; multiply by (1 - p_t) ** gamma and, when "
    "alpha is not None, by alpha for targets 1 and 1 - alpha for targets 0. Same shape as "
    "the input, no reduction.",
    forbidden=("sigmoid_focal_loss", "focal_loss_curve") + _NOT_THE_ANSWER,
)
def _focal_cases():
    import math

    import torch

    from vizlib.losses import sigmoid_focal_loss

    yield Case(
        "one easy negative (logit -4.6, p = 0.01), gamma 2, no alpha: about 1e-6",
        (torch.tensor([-math.log(99)]), torch.tensor([0.0]), None, 2.0),
        expected=torch.tensor([0.01**2 * -math.log(0.99)]),
        rtol=1e-3,
        atol=1e-9,
        hint="a negative's p_t is 1 - p = 0.99: (1 - 0.99)^2 * -log(0.99)",
    )
    yield Case(
        "a positive at p = 0.5 with alpha 0.25, gamma 2: 0.25 * 0.25 * log 2",
        (torch.tensor([0.0]), torch.tensor([1.0]), 0.25, 2.0),
        expected=torch.tensor([0.25 * 0.25 * math.log(2)]),
        rtol=1e-4,
        hint="alpha_t = alpha for a positive (target 1), 1 - alpha for a negative",
    )
    yield Case(
        "gamma 0 and no alpha: plain binary cross-entropy",
        (torch.tensor([-2.0, 0.5, 3.0]), torch.tensor([0.0, 1.0, 1.0]), None, 0.0),
        expected=torch.nn.functional.binary_cross_entropy_with_logits(
            torch.tensor([-2.0, 0.5, 3.0]), torch.tensor([0.0, 1.0, 1.0]), reduction="none"
        ),
    )
    big = torch.tensor([[200.0, -200.0], [-200.0, 200.0]])
    t = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    yield Case(
        "logits of +-200: finite (a confident mistake costs about 200 * alpha_t)",
        (big, t, 0.25, 2.0),
        expected=sigmoid_focal_loss(big, t, 0.25, 2.0),
        rtol=1e-4,
        hint="log(sigmoid(-200)) underflows to -inf: compute -log(p_t) from the logits",
    )
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 20, 5, generator=g) * 3
    y = (torch.rand(2, 20, 5, generator=g) < 0.1).float()
    yield Case(
        "a batch [2, 20, 5] of logits (images x anchors x classes), alpha 0.25, gamma 2",
        (x, y, 0.25, 2.0),
        expected=sigmoid_focal_loss(x, y, 0.25, 2.0),
        hint="keep the shape: one loss per element, no sum",
    )


# ---------------------------------------------------------------- hidden cases


@hidden("retinanet.level_anchors")
def _level_anchors_hidden(g):
    import torch

    for k in range(3):
        fh, fw = (int(v) for v in torch.randint(1, 7, (2,), generator=g))
        stride = int((4, 8, 16)[k])
        sizes = tuple(float(s) for s in (4 + torch.rand(1 + k % 2, generator=g) * 30))
        ratios = tuple(float(r) for r in (0.4 + torch.rand(2, generator=g) * 2))
        yield Case(
            f"a random level ({k + 1})",
            ((fh, fw), stride, sizes, ratios),
            expected=_level_reference((fh, fw), stride, sizes, ratios),
        )


@hidden("retinanet.assign_anchors")
def _assign_hidden(g):
    import torch

    scene = _chapter_anchors()
    for k, (fg, bg) in enumerate(((0.5, 0.4), (0.6, 0.3), (0.5, 0.5))):
        n = int(torch.randint(1, 6, (1,), generator=g))
        xy = torch.rand(n, 2, generator=g) * 44
        gt = torch.cat([xy, xy + 5 + torch.rand(n, 2, generator=g) * 25], dim=1)
        labels = torch.randint(1, 6, (n,), generator=g)
        yield Case(
            f"{n} random objects, thresholds {fg} / {bg} ({k + 1})",
            (gt, labels, scene, fg, bg),
            expected=_assign_reference(gt, labels, scene, fg, bg),
        )


@hidden("retinanet.focal_loss")
def _focal_hidden(g):
    import torch

    from vizlib.losses import sigmoid_focal_loss

    for k, (alpha, gamma) in enumerate(((0.25, 2.0), (None, 1.0), (0.5, 3.0))):
        x = torch.randn(3, 40, 4, generator=g) * 4
        y = (torch.rand(3, 40, 4, generator=g) < 0.15).float()
        yield Case(
            f"random logits, alpha {alpha}, gamma {gamma} ({k + 1})",
            (x, y, alpha, gamma),
            expected=sigmoid_focal_loss(x, y, alpha, gamma),
        )
