"""Exercises of the chapter "A YOLO-style grid detector" (lessons/yolo): which cell is
responsible for a box, decoding a cell's predictions, one term of the loss, and NMS."""

from __future__ import annotations

from ..spec import EDGE_WEIGHT, Case, exercise, hidden

_NOT_THE_ANSWER = ("vizlib.exercises",)


@exercise(
    "yolo.grid_cells",
    title="Which cell is responsible for each box?",
    function="grid_cells",
    points=3,
    hint="centre cx = (x1 + x2) / 2; in cell units gx = cx / width * S; column = floor(gx), "
    "clamped to S - 1 (a centre on the right edge belongs to the last cell); the offset "
    "is gx - column. Same for y and the row. Return (cells [N, 2] int64 (row, column), "
    "offsets [N, 2] (x, y)).",
    forbidden=("encode_yolo", "encode_yolo_targets", "vizlib.boxes", "vizlib.nn") + _NOT_THE_ANSWER,
)
def _cells_cases():
    import torch

    from vizlib.boxes import encode_yolo

    def expected(boxes, size, grid):
        cells, coords = encode_yolo(boxes, size, grid)
        return (cells, coords[:, :2])

    one = torch.tensor([[0.0, 0.0, 20.0, 20.0]])  # centre (10, 10)
    yield Case(
        "centre (10, 10) in a 64 x 64 image, 4 x 4 grid: cell (0, 0), offset (0.625, 0.625)",
        (one, (64, 64), 4),
        expected=(torch.tensor([[0, 0]]), torch.tensor([[0.625, 0.625]])),
    )
    yield Case(
        "a centre exactly on a cell border belongs to the next cell (offset 0)",
        (torch.tensor([[16.0, 0.0, 48.0, 64.0]]), (64, 64), 4),
        expected=(torch.tensor([[2, 2]]), torch.tensor([[0.0, 0.0]])),
    )
    yield Case(
        "rows count along y, columns along x: (row, column)",
        (torch.tensor([[40.0, 4.0, 60.0, 12.0]]), (64, 64), 4),
        expected=(torch.tensor([[0, 3]]), torch.tensor([[0.125, 0.5]])),
        hint="cells[:, 0] is the row (from y), cells[:, 1] the column (from x)",
    )
    yield Case(
        "a centre on the right and bottom edges goes to the last cell, offset 1",
        (torch.tensor([[60.0, 60.0, 68.0, 68.0]]), (64, 64), 4),
        expected=(torch.tensor([[3, 3]]), torch.tensor([[1.0, 1.0]])),
        hint="clamp the cell index to S - 1",
    )
    yield Case(
        "a 48-high, 96-wide image with S = 7 (cells of different height and width)",
        (torch.tensor([[10.0, 5.0, 30.0, 25.0]]), (48, 96), 7),
        expected=expected(torch.tensor([[10.0, 5.0, 30.0, 25.0]]), (48, 96), 7),
        hint="image_size is (height, width): divide x by the width, y by the height",
    )
    g = torch.Generator().manual_seed(6)
    xy = torch.rand(12, 2, generator=g) * 200
    boxes = torch.cat([xy, xy + torch.rand(12, 2, generator=g) * 40], dim=1)
    yield Case(
        "12 random boxes in a 240 x 240 image, S = 7, agree with vizlib.boxes.encode_yolo",
        (boxes, (240, 240), 7),
        expected=expected(boxes, (240, 240), 7),
    )
    yield Case(
        "no boxes: shapes [0, 2] and [0, 2]",
        (torch.zeros(0, 4), (64, 64), 4),
        expected=(torch.zeros(0, 2, dtype=torch.int64), torch.zeros(0, 2)),
        weight=EDGE_WEIGHT,
    )


@exercise(
    "yolo.decode_grid",
    title="Decode a grid of predictions into boxes",
    function="decode_grid",
    points=3,
    hint="For cell (row i, column j): cx = (j + x) / S * W, cy = (i + y) / S * H, "
    "w = sqrt_w ** 2 * W, h = sqrt_h ** 2 * H; torch.arange(S) gives the indices; "
    "broadcast them as [S, 1, 1] (rows) and [1, S, 1] (columns) against [S, S, B].",
    forbidden=(
        "decode_yolo",
        "predicted_boxes",
        "decode_output",
        "yolo_postprocess",
        "vizlib.boxes",
        "vizlib.nn",
    )
    + _NOT_THE_ANSWER,
)
def _decode_cases():
    import torch

    from vizlib.nn.yolo import predicted_boxes

    def expected(part, size):
        return predicted_boxes(part[None], size)[0]

    part = torch.zeros(2, 2, 1, 4)
    part[0, 0, 0] = torch.tensor(
        [0.5, 0.5, 0.5, 0.5]
    )  # a quarter of the image wide, in the middle of cell (0, 0)
    want = torch.zeros(2, 2, 1, 4)
    want[0, 0, 0] = torch.tensor([8.0, 8.0, 24.0, 24.0])
    for i, j in ((0, 1), (1, 0), (1, 1)):
        want[i, j, 0] = torch.tensor([32.0 * j, 32.0 * i, 32.0 * j, 32.0 * i])
    yield Case(
        "2 x 2 grid, 64 x 64 image: x = y = 0.5, sqrt w = sqrt h = 0.5 in cell (0, 0) is "
        "the box (8, 8, 24, 24); zeros elsewhere are points at the cells' corners",
        (part, (64, 64)),
        expected=want,
        hint="w = sqrt_w ** 2 * W: the head predicts square roots",
    )
    off = torch.zeros(2, 2, 1, 4)
    off[0, 1, 0] = torch.tensor([0.25, 0.75, 0.5, 0.25])
    want = expected(off, (64, 64))
    want[0, 1, 0] = torch.tensor([32.0, 22.0, 48.0, 26.0])  # centre (40, 24), size 16 x 4
    yield Case(
        "cell (row 0, column 1): centre ((1 + 0.25) * 32, (0 + 0.75) * 32) = (40, 24), "
        "size 0.25 * 64 by 0.0625 * 64",
        (off, (64, 64)),
        expected=want,
        hint="the first grid index is the row (y), the second the column (x)",
    )
    g = torch.Generator().manual_seed(7)
    rand = torch.rand(7, 7, 2, 4, generator=g)
    yield Case(
        "7 x 7 x 2 random predictions in a 448 x 448 image agree with vizlib",
        (rand, (448, 448)),
        expected=expected(rand, (448, 448)),
        atol=1e-3,
    )
    yield Case(
        "a 96-high, 128-wide image",
        (rand[:4, :4], (96, 128)),
        expected=expected(rand[:4, :4], (96, 128)),
        atol=1e-3,
        hint="image_size is (height, width)",
    )


@exercise(
    "yolo.noobj_loss",
    title="One term of the YOLO loss: the empty boxes",
    function="noobj_loss",
    points=2,
    hint="lambda_noobj * sum over every box that is not responsible of conf ** 2, divided by the "
    "number of images N = conf.shape[0]; ~responsible selects them.",
    forbidden=("yolo_loss", "vizlib.nn") + _NOT_THE_ANSWER,
)
def _noobj_cases():
    import torch

    responsible = torch.zeros(1, 2, 2, 2, dtype=torch.bool)
    responsible[0, 0, 0, 1] = True
    conf = torch.zeros(1, 2, 2, 2)
    yield Case(
        "all confidences 0: no loss",
        (conf, responsible, 0.5),
        expected=torch.tensor(0.0),
        weight=EDGE_WEIGHT,
    )
    c1 = conf.clone()
    c1[0, 1, 1, 0] = 1.0
    yield Case(
        "one empty box with confidence 1, lambda 0.5: 0.5",
        (c1, responsible, 0.5),
        expected=torch.tensor(0.5),
    )
    c2 = conf.clone()
    c2[0, 0, 0, 1] = 0.9
    yield Case(
        "the responsible box's confidence is not this term's business",
        (c2, responsible, 0.5),
        expected=torch.tensor(0.0),
        hint="only boxes with responsible == False count",
        weight=EDGE_WEIGHT,
    )
    c3 = conf.clone()
    c3[0, 0, 0, 0] = 0.4  # the other box of the object's cell: not responsible, so "no object"
    yield Case(
        "the non-responsible box of an object's cell counts as empty: 0.5 * 0.16",
        (c3, responsible, 0.5),
        expected=torch.tensor(0.08),
    )
    g = torch.Generator().manual_seed(8)
    conf = torch.rand(4, 7, 7, 2, generator=g)
    resp = torch.rand(4, 7, 7, 2, generator=g) > 0.9
    yield Case(
        "4 images: the sum is divided by the number of images",
        (conf, resp, 0.5),
        expected=0.5 * (conf**2 * (~resp)).sum() / 4,
        hint="divide by N = conf.shape[0]",
    )
    yield Case(
        "lambda_noobj scales the term",
        (conf, resp, 2.0),
        expected=2.0 * (conf**2 * (~resp)).sum() / 4,
    )


@exercise(
    "yolo.nms",
    title="Greedy non-maximum suppression",
    function="nms",
    points=3,
    hint="order = scores.argsort(descending=True, stable=True); walk down it: keep the best box "
    "left, drop every remaining box whose IoU with it is > iou_threshold; return the kept "
    "indices (int64) in the order they were kept.",
    forbidden=("nms", "batched_nms", "soft_nms", "nms_trace", "vizlib.nms", "vizlib.nn")
    + _NOT_THE_ANSWER,
)
def _nms_cases():
    import torch
    from torchvision.ops import nms

    def t(rows):
        return torch.tensor(rows, dtype=torch.float32)

    two = t([[0, 0, 10, 10], [1, 1, 11, 11]])  # IoU 81 / 119 = 0.68
    yield Case(
        "two overlapping boxes (IoU 0.68), threshold 0.5: keep the better one",
        (two, t([0.6, 0.9]), 0.5),
        expected=torch.tensor([1]),
    )
    yield Case(
        "the same at threshold 0.7: both survive, best first",
        (two, t([0.6, 0.9]), 0.7),
        expected=torch.tensor([1, 0]),
        hint="return indices in decreasing order of score",
    )
    chain = t([[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]])  # neighbours overlap 1/3, ends 0
    yield Case(
        "a chain A-B-C: B suppresses A and C? No: the best (A) suppresses B, then C survives",
        (chain, t([0.9, 0.8, 0.7]), 0.3),
        expected=torch.tensor([0, 2]),
        hint="a suppressed box suppresses nothing: skip it when its turn comes",
    )
    half = t([[0, 0, 10, 10], [0, 0, 10, 5]])  # IoU exactly 50 / 100
    yield Case(
        "IoU equal to the threshold survives (only IoU > threshold is suppressed)",
        (half, t([0.9, 0.8]), 0.5),
        expected=torch.tensor([0, 1]),
        hint="suppress when iou > threshold",
    )
    yield Case(
        "no boxes",
        (torch.zeros(0, 4), torch.zeros(0), 0.5),
        expected=torch.zeros(0, dtype=torch.int64),
        weight=EDGE_WEIGHT,
    )
    g = torch.Generator().manual_seed(9)
    xy = torch.rand(60, 2, generator=g) * 50
    boxes = torch.cat([xy, xy + 10 + torch.rand(60, 2, generator=g) * 20], dim=1)
    scores = torch.rand(60, generator=g)
    yield Case(
        "60 random boxes agree with torchvision.ops.nms",
        (boxes, scores, 0.5),
        expected=nms(boxes, scores, 0.5),
    )


# ---------------------------------------------------------------- hidden cases
# Drawn at grading time from the instructor's secret (vizlib.exercises.spec.hidden): the
# same kinds of input as the random public cases, unknown without the secret.


def _draw(g, low: int, high: int) -> int:
    """A whole number in [low, high]."""
    import torch

    return int(torch.randint(low, high + 1, (1,), generator=g))


@hidden("yolo.grid_cells")
def _cells_hidden(g):
    import torch

    from vizlib.boxes import encode_yolo

    for k in range(3):
        size, grid = (_draw(g, 32, 480), _draw(g, 32, 480)), _draw(g, 2, 13)
        n = _draw(g, 1, 20)
        wh = torch.rand(n, 2, generator=g) * 0.4 + 0.02  # as fractions of the image
        xy = torch.rand(n, 2, generator=g) * (1 - wh)
        scale = torch.tensor([size[1], size[0]], dtype=torch.float32)
        boxes = torch.cat([xy * scale, (xy + wh) * scale], dim=1)
        cells, coords = encode_yolo(boxes, size, grid)
        yield Case(
            f"random boxes in a random image ({k + 1})",
            (boxes, size, grid),
            expected=(cells, coords[:, :2]),
        )


@hidden("yolo.decode_grid")
def _decode_hidden(g):
    import torch

    from vizlib.nn.yolo import predicted_boxes

    for k in range(3):
        cells, per_cell = _draw(g, 1, 9), _draw(g, 1, 3)  # an S x S grid
        part = torch.rand(cells, cells, per_cell, 4, generator=g)
        size = (_draw(g, 32, 512), _draw(g, 32, 512))
        yield Case(
            f"random predictions in a random image ({k + 1})",
            (part, size),
            expected=predicted_boxes(part[None], size)[0],
            atol=1e-3,
        )


@hidden("yolo.noobj_loss")
def _noobj_hidden(g):
    import torch

    for k, weight in enumerate((0.5, 0.1, 3.0)):
        shape = (_draw(g, 1, 6), _draw(g, 2, 9), _draw(g, 2, 9), _draw(g, 1, 3))
        conf = torch.rand(*shape, generator=g)
        resp = torch.rand(*shape, generator=g) > 0.85
        yield Case(
            f"random confidences ({k + 1}), lambda_noobj {weight}",
            (conf, resp, weight),
            expected=weight * (conf**2 * (~resp)).sum() / shape[0],
        )


@hidden("yolo.nms")
def _nms_hidden(g):
    import torch
    from torchvision.ops import nms

    for k, threshold in enumerate((0.3, 0.5, 0.7)):
        n = _draw(g, 5, 80)
        xy = torch.rand(n, 2, generator=g) * 60
        boxes = torch.cat([xy, xy + 8 + torch.rand(n, 2, generator=g) * 25], dim=1)
        scores = torch.rand(n, generator=g)
        yield Case(
            f"random boxes ({k + 1}), threshold {threshold}",
            (boxes, scores, threshold),
            expected=nms(boxes, scores, threshold),
        )
