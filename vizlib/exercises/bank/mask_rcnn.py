"""Exercises of the chapter "Mask R-CNN" (lessons/mask_rcnn): one region's mask target
(crop and resize by bilinear sampling; its solution trains a short run in the chapter), the
mask loss (binary cross-entropy on the true class's channel only), and one region's
keypoint heatmap targets (the cell of a ``56 x 56`` grid each keypoint falls in).

Expected values come from hand-computed cases and from the library's references,
``vizlib.nn.mask_rcnn.mask_targets`` (RoIAlign of the mask, checked against torchvision's
``project_masks_on_boxes``), ``mask_loss`` (torchvision's ``maskrcnn_loss``) and
``keypoint_targets`` (torchvision's ``keypoints_to_heatmap``), tested in
tests/test_nn_mask_rcnn.py."""

from __future__ import annotations

from ..spec import EDGE_WEIGHT, Case, exercise, hidden

_NOT_THE_ANSWER = (
    "vizlib.exercises",
    "vizlib.nn",
    "vizlib.roi",
    "torchvision",
)


def _mask_target_reference(mask, box, size):
    import torch

    from vizlib.nn.mask_rcnn import mask_targets

    return mask_targets(
        mask[None].float(), box[None].float(), torch.zeros(1, dtype=torch.int64), size, True, 1
    )[0]


def _mask_loss_reference(logits, labels, targets):
    from vizlib.nn.mask_rcnn import mask_loss

    return mask_loss(logits, labels, targets).detach()


def _heatmap_reference(keypoints, rois, size):
    import torch

    from vizlib.nn.mask_rcnn import keypoint_targets

    index, valid = keypoint_targets(keypoints, rois, size, 1.0)
    return torch.where(valid, index, torch.full_like(index, -1))


def _random_mask(g, size=64):
    """A blob: the union of two random ellipses, bool [size, size]."""
    import torch

    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    mask = torch.zeros(size, size, dtype=torch.bool)
    for _ in range(2):
        cx, cy = (8 + torch.rand(2, generator=g) * (size - 16)).tolist()
        rx, ry = (3 + torch.rand(2, generator=g) * 12).tolist()
        mask |= ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1
    return mask


def _box_around(mask, g, size=64):
    """A region overlapping the blob: its tight box, each side moved by up to 4 pixels."""
    import torch

    ys, xs = torch.nonzero(mask, as_tuple=True)
    tight = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
    box = tight + (torch.rand(4, generator=g) - 0.5) * 8
    return torch.cat(
        [box[:2].clamp(0, size - 4), torch.maximum(box[2:], box[:2] + 4).clamp(max=size)]
    )


def _random_box(g, size=64):
    import torch

    x1, y1 = (torch.rand(2, generator=g) * (size - 12)).tolist()
    w, h = (6 + torch.rand(2, generator=g) * 30).tolist()
    return torch.tensor([x1, y1, min(x1 + w, size), min(y1 + h, size)])


@exercise(
    "mask_rcnn.mask_target",
    title="The mask target of one region: crop and resize by bilinear sampling",
    function="mask_target",
    points=3,
    hint="Cut the box into size x size bins of (x2 - x1) / size by (y2 - y1) / size "
    "pixels; bin (i, j) reads the mask at its centre x = x1 + (j + 0.5) * bin_w, "
    "y = y1 + (i + 0.5) * bin_h. Pixel (r, c) of the mask covers [c, c + 1) x [r, r + 1), "
    "so its value sits at (c + 0.5, r + 0.5): interpolate bilinearly between the four "
    "pixels around (x - 0.5, y - 0.5), clamping that point into [0, W - 1] x [0, H - 1] "
    "(a point within half a pixel of the border takes the border pixel's value). Return "
    "floats [size, size] in [0, 1].",
    forbidden=("roi_align", "mask_targets", "project_masks_on_boxes", "RoIAlign") + _NOT_THE_ANSWER,
)
def _mask_target_cases():
    import torch

    full = torch.ones(16, 16, dtype=torch.bool)
    yield Case(
        "a mask of ones, any box inside it: all ones",
        (full, torch.tensor([2.0, 3.0, 11.0, 9.5]), 4),
        expected=torch.ones(4, 4),
    )
    half = torch.zeros(8, 8, dtype=torch.bool)
    half[:, :4] = True  # the left half
    yield Case(
        "the left half of an 8 x 8 image, box = the whole image, 2 x 2 target: left column 1, "
        "right column 0",
        (half, torch.tensor([0.0, 0.0, 8.0, 8.0]), 2),
        expected=torch.tensor([[1.0, 0.0], [1.0, 0.0]]),
        hint="bin (i, 0) has its centre at x = 2, reading between pixels 1 and 2 (both 1)",
    )
    yield Case(
        "the left half again, box x from 2 to 6 (centred on the edge), 2 x 2: samples at "
        "x = 3 and x = 5, i.e. pixels 2.5 and 4.5 -> 1 and 0",
        (half, torch.tensor([2.0, 0.0, 6.0, 8.0]), 2),
        expected=_mask_target_reference(half, torch.tensor([2.0, 0.0, 6.0, 8.0]), 2),
        hint="the value of pixel c sits at c + 0.5: sample at x - 0.5",
    )
    yield Case(
        "a box whose samples fall between pixels: bilinear weights (edge at x = 4)",
        (half, torch.tensor([1.0, 1.0, 7.0, 7.0]), 4),
        expected=_mask_target_reference(half, torch.tensor([1.0, 1.0, 7.0, 7.0]), 4),
        hint="a sample at x - 0.5 = 3.25 weighs pixel 3 by 0.75 and pixel 4 by 0.25",
    )
    yield Case(
        "a box along the image's border (x from 0): points within half a pixel of it take "
        "the border pixel's value",
        (half, torch.tensor([0.0, 0.0, 3.0, 8.0]), 6),
        expected=_mask_target_reference(half, torch.tensor([0.0, 0.0, 3.0, 8.0]), 6),
        hint="clamp x - 0.5 and y - 0.5 into [0, W - 1] and [0, H - 1] before interpolating",
    )
    empty = torch.zeros(16, 16, dtype=torch.bool)
    yield Case(
        "an empty mask: all zeros",
        (empty, torch.tensor([1.0, 2.0, 9.0, 12.0]), 5),
        expected=torch.zeros(5, 5),
        weight=EDGE_WEIGHT,
    )
    g = torch.Generator().manual_seed(5)
    for k in range(2):
        mask = _random_mask(g)
        box = _box_around(mask, g)
        yield Case(
            f"a blob of a 64 x 64 scene and a random box, the chapter's 28 x 28 ({k + 1})",
            (mask, box, 28),
            expected=_mask_target_reference(mask, box, 28),
        )


@exercise(
    "mask_rcnn.mask_loss",
    title="The mask loss: binary cross-entropy on the true class's mask only",
    function="mask_loss",
    points=3,
    hint="rows = torch.arange(R); chosen = mask_logits[rows, labels]: [R, M, M], each "
    "region's own class's mask. The loss is F.binary_cross_entropy_with_logits(chosen, "
    "targets), the mean over every pixel of every region. With R = 0 return "
    "mask_logits.sum() * 0 (zero, not the NaN of a mean over nothing).",
    forbidden=("maskrcnn_loss", "mask_rcnn_loss") + _NOT_THE_ANSWER,
)
def _mask_loss_cases():
    import math

    import torch

    logits = torch.zeros(1, 3, 2, 2)
    yield Case(
        "one region, all logits 0: log 2 whatever the target",
        (logits, torch.tensor([1]), torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])),
        expected=torch.tensor(math.log(2)),
    )
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 2] = 20.0  # class 2 says "all object", class 1 unsure
    yield Case(
        "class 2's mask is confidently wrong, but the region is of class 1: only class 1's "
        "channel counts (log 2)",
        (logits, torch.tensor([1]), torch.zeros(1, 2, 2)),
        expected=torch.tensor(math.log(2)),
        hint="index the logits with each region's label: the other classes' masks are free",
    )
    g = torch.Generator().manual_seed(7)
    x = torch.randn(5, 6, 4, 4, generator=g) * 3
    labels = torch.tensor([1, 5, 3, 3, 2])
    t = torch.rand(5, 4, 4, generator=g)
    yield Case(
        "five regions, soft targets in [0, 1]: the mean over regions and pixels",
        (x, labels, t),
        expected=_mask_loss_reference(x, labels, t),
        hint="one mean over all R * M * M pixels (F.binary_cross_entropy_with_logits)",
    )
    big = torch.full((2, 2, 3, 3), 200.0)
    yield Case(
        "logits of 200 where the target is 0: finite (about 200)",
        (big, torch.tensor([1, 1]), torch.zeros(2, 3, 3)),
        expected=_mask_loss_reference(big, torch.tensor([1, 1]), torch.zeros(2, 3, 3)),
        hint="compute from the logits (binary_cross_entropy_with_logits), not log(sigmoid)",
    )
    yield Case(
        "no positive region (R = 0): 0, not NaN",
        (torch.zeros(0, 6, 28, 28), torch.zeros(0, dtype=torch.int64), torch.zeros(0, 28, 28)),
        expected=torch.tensor(0.0),
        hint="a mean over nothing is NaN: return mask_logits.sum() * 0 first",
        weight=EDGE_WEIGHT,
    )


@exercise(
    "mask_rcnn.keypoint_heatmap_target",
    title="Keypoint targets: the cell of a size x size heatmap each keypoint falls in",
    function="keypoint_heatmap_target",
    points=3,
    hint="For region (x1, y1, x2, y2): the scales sx = size / (x2 - x1) and "
    "sy = size / (y2 - y1) first, then cx = floor((x - x1) * sx), cy = floor((y - y1) * sy) "
    "(in this order: float rounding moves a point on a cell's edge otherwise); a keypoint exactly on the right (bottom) edge "
    "goes to cell size - 1. It counts if 0 <= cx, cy < size and its visibility is > 0; "
    "its target is cy * size + cx, and -1 where it does not count. Broadcast the region "
    "[R, 4] against the keypoints [R, K]: rois[:, 0:1] is [R, 1].",
    forbidden=("keypoint_targets", "keypoints_to_heatmap", "keypointrcnn_loss") + _NOT_THE_ANSWER,
)
def _heatmap_cases():
    import torch

    roi = torch.tensor([[0.0, 0.0, 56.0, 56.0]])
    yield Case(
        "a 56 x 56 region at the origin: the cell is the pixel, y * 56 + x",
        (torch.tensor([[[3.5, 2.2, 2.0], [55.9, 0.0, 2.0]]]), roi, 56),
        expected=torch.tensor([[2 * 56 + 3, 55]]),
    )
    yield Case(
        "a region of 28 x 14 pixels at (10, 20): each cell is 0.5 x 0.25 pixels",
        (torch.tensor([[[11.0, 21.0, 2.0]]]), torch.tensor([[10.0, 20.0, 38.0, 34.0]]), 56),
        expected=torch.tensor([[4 * 56 + 2]]),
        hint="scale by size / width in x and size / height in y, then floor",
    )
    # left, above, right, below the region; not labelled (v = 0); occluded (v = 1)
    keypoints = torch.tensor(
        [
            [
                [9.0, 25.0, 2.0],
                [15.0, 19.0, 2.0],
                [38.5, 25.0, 2.0],
                [15.0, 40.0, 1.0],
                [15.0, 25.0, 0.0],
                [15.0, 25.0, 1.0],
            ]
        ]
    )
    region = torch.tensor([[10.0, 20.0, 38.0, 34.0]])
    yield Case(
        "outside the region (left, above, right, below), or not labelled (v = 0): -1",
        (keypoints, region, 56),
        expected=_heatmap_reference(keypoints, region, 56),
        hint="an occluded keypoint (v = 1) still counts, as in torchvision; v = 0 does not",
    )
    yield Case(
        "a keypoint exactly on the region's right and bottom edges: the last cell",
        (torch.tensor([[[38.0, 34.0, 2.0]]]), torch.tensor([[10.0, 20.0, 38.0, 34.0]]), 56),
        expected=torch.tensor([[56 * 56 - 1]]),
        hint="x == x2 gives cx = size: put it in cell size - 1",
    )
    yield Case(
        "no region (R = 0): an empty [0, K] tensor",
        (torch.zeros(0, 6, 3), torch.zeros(0, 4), 56),
        expected=torch.zeros(0, 6, dtype=torch.int64),
        weight=EDGE_WEIGHT,
    )
    g = torch.Generator().manual_seed(11)
    rois = torch.stack([_random_box(g) for _ in range(6)])
    kp = torch.cat(
        [
            rois[:, None, :2]
            - 3
            + torch.rand(6, 6, 2, generator=g) * (rois[:, None, 2:] - rois[:, None, :2] + 6),
            torch.randint(0, 3, (6, 6, 1), generator=g).float(),
        ],
        dim=-1,
    )
    yield Case(
        "six regions with six keypoints each, some outside or unlabelled, a 56 x 56 heatmap",
        (kp, rois, 56),
        expected=_heatmap_reference(kp, rois, 56),
    )


# ---------------------------------------------------------------- hidden cases


@hidden("mask_rcnn.mask_target")
def _mask_target_hidden(g):
    for k, size in enumerate((28, 14, 7)):
        mask = _random_mask(g)
        box = _box_around(mask, g)
        yield Case(
            f"a random blob and box, {size} x {size} ({k + 1})",
            (mask, box, size),
            expected=_mask_target_reference(mask, box, size),
        )


@hidden("mask_rcnn.mask_loss")
def _mask_loss_hidden(g):
    import torch

    for k in range(3):
        r, c = (
            int(torch.randint(1, 9, (1,), generator=g)),
            int(torch.randint(2, 8, (1,), generator=g)),
        )
        x = torch.randn(r, c + 1, 6, 6, generator=g) * 4
        labels = torch.randint(1, c + 1, (r,), generator=g)
        t = (torch.rand(r, 6, 6, generator=g) > 0.5).float()
        yield Case(
            f"random logits, {r} regions, {c} classes ({k + 1})",
            (x, labels, t),
            expected=_mask_loss_reference(x, labels, t),
        )


@hidden("mask_rcnn.keypoint_heatmap_target")
def _heatmap_hidden(g):
    import torch

    for k, size in enumerate((56, 28, 64)):
        r = int(torch.randint(1, 7, (1,), generator=g))
        rois = torch.stack([_random_box(g) for _ in range(r)])
        kp = torch.cat(
            [
                rois[:, None, :2]
                - 4
                + torch.rand(r, 5, 2, generator=g) * (rois[:, None, 2:] - rois[:, None, :2] + 8),
                torch.randint(0, 3, (r, 5, 1), generator=g).float(),
            ],
            dim=-1,
        )
        yield Case(
            f"{r} random regions, heatmaps of {size} x {size} ({k + 1})",
            (kp, rois, size),
            expected=_heatmap_reference(kp, rois, size),
        )
