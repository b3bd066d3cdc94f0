"""vizlib.boxes agrees with torchvision.ops and BoxCoder, round-trips, and rejects bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F
from torchvision import ops
from torchvision.models.detection._utils import BoxCoder

from vizlib import boxes as B

FORMATS = B.BOX_FORMATS


def random_boxes(n, seed=0, size=100.0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * size
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * size / 2
    return torch.cat([xy, xy + wh], dim=1).to(dtype)


def adversarial_boxes():
    """Duplicates, zero width, zero height, a point, nested, touching, disjoint."""
    return torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],
            [0.0, 0.0, 10.0, 10.0],
            [5.0, 5.0, 5.0, 15.0],  # zero width
            [2.0, 3.0, 8.0, 3.0],  # zero height
            [4.0, 4.0, 4.0, 4.0],  # a point
            [2.0, 2.0, 4.0, 4.0],  # nested
            [10.0, 0.0, 20.0, 10.0],  # touching
            [50.0, 50.0, 60.0, 70.0],  # disjoint
        ]
    )


# ------------------------------------------------------------------ agreement


@pytest.mark.parametrize("in_fmt", FORMATS)
@pytest.mark.parametrize("out_fmt", FORMATS)
def test_box_convert_matches_torchvision(in_fmt, out_fmt):
    xyxy = torch.cat([random_boxes(50, seed=1), adversarial_boxes()])
    src = ops.box_convert(xyxy, "xyxy", in_fmt)
    torch.testing.assert_close(
        B.box_convert(src, in_fmt, out_fmt), ops.box_convert(src, in_fmt, out_fmt)
    )


def test_box_convert_names_mean_what_the_docstring_says():
    xyxy = torch.tensor([[10.0, 20.0, 40.0, 60.0]])
    assert B.box_convert(xyxy, "xyxy", "xywh").tolist() == [[10.0, 20.0, 30.0, 40.0]]
    assert B.box_convert(xyxy, "xyxy", "cxcywh").tolist() == [[25.0, 40.0, 30.0, 40.0]]


def test_box_convert_does_not_modify_input_and_returns_new_tensor():
    xyxy = random_boxes(5)
    before = xyxy.clone()
    out = B.box_convert(xyxy, "xyxy", "xyxy")
    out[0, 0] = -1.0
    torch.testing.assert_close(xyxy, before)


@pytest.mark.parametrize(
    "boxes", [random_boxes(40, seed=2), adversarial_boxes(), torch.zeros(0, 4)]
)
def test_area_and_clip_match_torchvision(boxes):
    torch.testing.assert_close(B.box_area(boxes), ops.box_area(boxes))
    shifted = boxes - 20.0
    for size in [(30, 50), (1, 1), (100, 7)]:
        torch.testing.assert_close(
            B.clip_boxes_to_image(shifted, size), ops.clip_boxes_to_image(shifted, size)
        )


def test_iou_and_giou_match_torchvision_on_random_boxes():
    b1, b2 = random_boxes(60, seed=3), random_boxes(45, seed=4)
    torch.testing.assert_close(B.box_iou(b1, b2), ops.box_iou(b1, b2))
    torch.testing.assert_close(B.generalized_box_iou(b1, b2), ops.generalized_box_iou(b1, b2))


def test_iou_and_giou_on_degenerate_boxes_match_torchvision_where_it_is_defined():
    b = adversarial_boxes()
    ours, theirs = B.box_iou(b, b), ops.box_iou(b, b)
    defined = ~torch.isnan(theirs)
    assert not defined.all()  # the point against itself: torchvision gives 0/0
    torch.testing.assert_close(ours[defined], theirs[defined])
    assert (ours[~defined] == 0).all()
    assert torch.isfinite(ours).all()
    ours, theirs = B.generalized_box_iou(b, b), ops.generalized_box_iou(b, b)
    defined = ~torch.isnan(theirs)
    torch.testing.assert_close(ours[defined], theirs[defined])
    assert torch.isfinite(ours).all()


def test_iou_empty_inputs_give_empty_matrices():
    assert B.box_iou(torch.zeros(0, 4), random_boxes(3)).shape == (0, 3)
    assert B.generalized_box_iou(random_boxes(2), torch.zeros(0, 4)).shape == (2, 0)


def test_iou_known_values():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 0.0, 3.0, 2.0], [4.0, 0.0, 6.0, 2.0]])
    torch.testing.assert_close(B.box_iou(a, b), torch.tensor([[1 / 3, 0.0]]))
    # enclosing box of a and b[1] is 6 x 2 = 12, union 8: GIoU = 0 - 4/12
    torch.testing.assert_close(B.generalized_box_iou(a, b)[0, 1], torch.tensor(-1 / 3))


def test_paired_iou_is_the_diagonal_of_torchvision_box_iou():
    # (moved here from the localisation and YOLO tests, with the function itself)
    torch.manual_seed(2)
    xy = torch.rand(20, 2) * 50
    a = torch.cat([xy, xy + torch.rand(20, 2) * 20], dim=1)
    xy = torch.rand(20, 2) * 50
    b = torch.cat([xy, xy + torch.rand(20, 2) * 20], dim=1)
    torch.testing.assert_close(B.paired_box_iou(a, b), ops.box_iou(a, b).diagonal())
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(20, 2, generator=g) * 40
    a = torch.cat([xy, xy + torch.rand(20, 2, generator=g) * 20], 1)
    xy = torch.rand(20, 2, generator=g) * 40
    b = torch.cat([xy, xy + torch.rand(20, 2, generator=g) * 20], 1)
    assert torch.allclose(B.paired_box_iou(a, b), B.box_iou(a, b).diagonal(), atol=1e-6)
    zero = torch.tensor([[5.0, 5.0, 5.0, 5.0]])
    assert B.paired_box_iou(zero, zero).item() == 0.0, "IoU with a zero-area box is 0, not NaN"
    point = torch.tensor([[3.0, 3.0, 3.0, 3.0]])
    assert B.paired_box_iou(point, point).item() == 0.0
    with pytest.raises(ValueError, match="same N"):
        B.paired_box_iou(a, b[:3])


def test_paired_iou_broadcasts_like_a_yolo_grid_against_its_cells_objects():
    # [N, S, S, B, 4] predictions against [N, S, S, 1, 4] objects: each box with its own cell's
    pred = random_boxes(2 * 3 * 3 * 2, seed=11).reshape(2, 3, 3, 2, 4)
    objects = random_boxes(2 * 3 * 3, seed=12).reshape(2, 3, 3, 1, 4)
    iou = B.paired_box_iou(pred, objects)
    assert iou.shape == (2, 3, 3, 2)
    flat_pred, flat_obj = pred.reshape(-1, 2, 4), objects.reshape(-1, 4)
    for k in range(len(flat_obj)):
        want = ops.box_iou(flat_pred[k], flat_obj[k : k + 1])[:, 0]  # [B]
        torch.testing.assert_close(iou.reshape(-1, 2)[k], want)
    one = random_boxes(1, seed=13)[0]  # [4] against [M, 4]: one row of box_iou
    many = random_boxes(7, seed=14)
    torch.testing.assert_close(B.paired_box_iou(one, many), ops.box_iou(one[None], many)[0])
    assert B.paired_box_iou(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0,)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_deltas_match_torchvision_boxcoder(weights):
    gt, anchors = random_boxes(80, seed=5) + 1, random_boxes(80, seed=6) + 1
    gt[:, 2:] += 0.5  # positive area
    anchors[:, 2:] += 0.5
    coder = BoxCoder(weights)
    ours = B.encode_deltas(gt, anchors, weights)
    torch.testing.assert_close(ours, coder.encode_single(gt, anchors))
    # large deltas exercise the clamp
    deltas = torch.randn(80, 4, generator=torch.Generator().manual_seed(7)) * 20
    torch.testing.assert_close(
        B.decode_deltas(deltas, anchors, weights), coder.decode_single(deltas, anchors)
    )


def test_decode_deltas_clamps_growth():
    anchor = torch.tensor([[0.0, 0.0, 16.0, 16.0]])
    out = B.decode_deltas(torch.tensor([[0.0, 0.0, 100.0, 100.0]]), anchor)
    torch.testing.assert_close(B.box_area(out), torch.tensor([1000.0**2]))


def test_yolo_known_cell():
    # 448 x 448 image, S = 7: cells are 64 pixels. A centre at (100, 300) -> column 1, row 4.
    box = torch.tensor([[80.0, 250.0, 120.0, 350.0]])
    cells, coords = B.encode_yolo(box, (448, 448), 7)
    assert cells.tolist() == [[4, 1]] and cells.dtype == torch.int64
    torch.testing.assert_close(
        coords, torch.tensor([[(100 - 64) / 64, (300 - 256) / 64, 40 / 448, 100 / 448]])
    )
    # a centre on the far edge belongs to the last cell
    cells, coords = B.encode_yolo(torch.tensor([[448.0, 448.0, 448.0, 448.0]]), (448, 448), 7)
    assert cells.tolist() == [[6, 6]]
    torch.testing.assert_close(coords[:, :2], torch.ones(1, 2))


def test_normalised_cxcywh_is_torchvision_cxcywh_over_the_image_size():
    torch.manual_seed(1)
    xy = torch.rand(8, 2) * 40
    boxes = torch.cat([xy, xy + 4 + torch.rand(8, 2) * 20], dim=1)
    codes = B.encode_normalised_cxcywh(boxes, (64, 64))
    expected = ops.box_convert(boxes, "xyxy", "cxcywh") / torch.tensor([64.0, 64, 64, 64])
    torch.testing.assert_close(codes, expected)
    # height first: a 32 x 64 image (H = 32, W = 64)
    boxes = torch.tensor([[0.0, 0.0, 64.0, 32.0], [10.0, 20.0, 30.0, 25.0]])
    codes = B.encode_normalised_cxcywh(boxes, (32, 64))
    assert torch.allclose(codes[0], torch.tensor([0.5, 0.5, 1.0, 1.0]))
    assert torch.allclose(B.decode_normalised_cxcywh(codes, (32, 64)), boxes)
    negative = B.decode_normalised_cxcywh(torch.tensor([[0.5, 0.5, -0.1, 0.2]]), (64, 64))
    assert negative[0, 0] == negative[0, 2] == 32.0, "a negative width decodes to a zero-width box"
    with pytest.raises(ValueError, match="codes"):
        B.decode_normalised_cxcywh(torch.zeros(3, 3), (64, 64))
    with pytest.raises(ValueError, match="image_size"):
        B.encode_normalised_cxcywh(boxes, (64,))


def test_ltrb_known_values():
    torch.testing.assert_close(
        B.encode_ltrb(torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 1.0, 10.0, 5.0]])),
        torch.tensor([[2.0, 3.0, 7.0, 1.0]]),
    )


def _windows_by_unfold(height, width, h, w, stride):
    """Count the crops by making them: torch's unfold cuts every window out."""
    image = torch.zeros(1, 1, height, width)
    if h > height or w > width:
        return 0
    return F.unfold(image, (h, w), stride=stride).shape[-1]


@pytest.mark.parametrize(
    ("size", "window", "stride"),
    [
        ((8, 8), (4, 4), 4),
        ((8, 8), (4, 4), 1),
        ((6, 10), (2, 4), 2),
        ((64, 48), (16, 32), 3),
        ((9, 9), (9, 9), 5),
        ((8, 8), (9, 4), 1),
    ],
)
def test_count_windows_agrees_with_unfold(size, window, stride):
    assert B.count_windows(size, [window], stride) == _windows_by_unfold(*size, *window, stride)


def test_count_windows_adds_sizes_and_validates():
    assert B.count_windows((64, 64), [(16, 16), (32, 32)], 4) == 13 * 13 + 9 * 9
    with pytest.raises(ValueError, match="stride"):
        B.count_windows((64, 64), [(16, 16)], 0)
    with pytest.raises(ValueError, match="window_sizes"):
        B.count_windows((64, 64), 16, 4)
    with pytest.raises(ValueError, match="image_size"):
        B.count_windows((64,), [(16, 16)], 4)


# ------------------------------------------------------------------ properties

coord = st.floats(-1000, 1000, allow_nan=False, width=32)
size = st.floats(0, 500, allow_nan=False, width=32)


@st.composite
def boxes_strategy(draw, min_size=0, max_size=8, positive=False):
    n = draw(st.integers(min_size, max_size))
    rows = []
    for _ in range(n):
        x, y = draw(coord), draw(coord)
        lo = 0.5 if positive else 0.0
        w, h = draw(st.floats(lo, 500, width=32)), draw(st.floats(lo, 500, width=32))
        rows.append([x, y, x + w, y + h])
    return torch.tensor(rows, dtype=torch.float64).reshape(-1, 4)


@settings(max_examples=60, deadline=None)
@given(boxes_strategy(), boxes_strategy())
def test_iou_symmetric_bounded_and_giou_bounded(b1, b2):
    iou = B.box_iou(b1, b2)
    torch.testing.assert_close(iou, B.box_iou(b2, b1).T)
    assert ((iou >= 0) & (iou <= 1 + 1e-12)).all()
    giou = B.generalized_box_iou(b1, b2)
    assert ((giou >= -1 - 1e-12) & (giou <= iou + 1e-12)).all()


@settings(max_examples=40, deadline=None)
@given(boxes_strategy(min_size=1, positive=True))
def test_iou_with_itself_is_one(b):
    torch.testing.assert_close(B.box_iou(b, b).diagonal(), torch.ones(len(b), dtype=b.dtype))
    torch.testing.assert_close(
        B.generalized_box_iou(b, b).diagonal(), torch.ones(len(b), dtype=b.dtype)
    )


@settings(max_examples=40, deadline=None)
@given(boxes_strategy(), st.sampled_from(FORMATS), st.sampled_from(FORMATS))
def test_convert_round_trip(b, fmt1, fmt2):
    there = B.box_convert(B.box_convert(b, "xyxy", fmt1), fmt1, fmt2)
    back = B.box_convert(there, fmt2, "xyxy")
    torch.testing.assert_close(back, b, atol=1e-9, rtol=1e-9)


@settings(max_examples=40, deadline=None)
@given(boxes_strategy(positive=True), st.data())
def test_deltas_round_trip(gt, data):
    anchors = data.draw(boxes_strategy(min_size=len(gt), max_size=len(gt), positive=True))
    weights = data.draw(st.sampled_from([(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]))
    deltas = B.encode_deltas(gt, anchors, weights)
    # the round trip holds while the size change stays within the clamp
    ok = (
        deltas[:, 2:] / torch.tensor(weights[2:], dtype=deltas.dtype) <= B.DEFAULT_BBOX_XFORM_CLIP
    ).all(1)
    torch.testing.assert_close(
        B.decode_deltas(deltas, anchors, weights)[ok], gt[ok], atol=1e-6, rtol=1e-9
    )


@settings(max_examples=40, deadline=None)
@given(boxes_strategy(), st.data())
def test_ltrb_round_trip(b, data):
    n = len(b)
    u = torch.tensor(
        data.draw(st.lists(st.floats(0, 1), min_size=2 * n, max_size=2 * n)), dtype=b.dtype
    )
    u = u.reshape(n, 2)
    points = b[:, :2] + u * (b[:, 2:] - b[:, :2])  # points inside their box
    ltrb = B.encode_ltrb(points, b)
    assert (ltrb >= -1e-9).all()
    torch.testing.assert_close(B.decode_ltrb(points, ltrb), b, atol=1e-9, rtol=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.data(), st.integers(1, 13), st.integers(1, 800), st.integers(1, 800))
def test_yolo_round_trip(data, grid, height, width):
    n = data.draw(st.integers(0, 6))
    rows = []
    for _ in range(n):
        cx, cy = data.draw(st.floats(0, width)), data.draw(st.floats(0, height))
        w, h = data.draw(st.floats(0, 2 * width)), data.draw(st.floats(0, 2 * height))
        rows.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    b = torch.tensor(rows, dtype=torch.float64).reshape(-1, 4)
    cells, coords = B.encode_yolo(b, (height, width), grid)
    assert ((cells >= 0) & (cells < grid)).all()
    assert ((coords[:, :2] >= 0) & (coords[:, :2] <= 1)).all()
    torch.testing.assert_close(
        B.decode_yolo(cells, coords, (height, width), grid), b, atol=1e-7, rtol=1e-9
    )


# ------------------------------------------------------------------ bad input

GOOD = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
INSIDE_OUT = torch.tensor([[2.0, 0.0, 1.0, 2.0]])
NAN = torch.tensor([[0.0, math.nan, 2.0, 2.0]])
INF = torch.tensor([[0.0, 0.0, math.inf, 2.0]])
WRONG_SHAPE = torch.zeros(3, 5)
BOOL = torch.ones(1, 4, dtype=torch.bool)
BAD_BOXES = [INSIDE_OUT, NAN, INF, WRONG_SHAPE, BOOL, "boxes"]


@pytest.mark.parametrize("bad", BAD_BOXES)
def test_every_box_function_rejects_bad_boxes_naming_the_argument(bad):
    with pytest.raises(ValueError, match="boxes"):
        B.box_area(bad)
    with pytest.raises(ValueError, match="boxes"):
        B.clip_boxes_to_image(bad, (10, 10))
    with pytest.raises(ValueError, match="boxes1"):
        B.box_iou(bad, GOOD)
    with pytest.raises(ValueError, match="boxes2"):
        B.generalized_box_iou(GOOD, bad)
    with pytest.raises(ValueError, match="anchors"):
        B.encode_deltas(GOOD, bad)
    with pytest.raises(ValueError, match="anchors"):
        B.decode_deltas(torch.zeros(1, 4), bad)
    with pytest.raises(ValueError, match="boxes"):
        B.encode_ltrb(torch.zeros(1, 2), bad)
    with pytest.raises(ValueError, match="boxes"):
        B.encode_yolo(bad, (10, 10), 7)
    with pytest.raises(ValueError, match="boxes"):
        B.encode_normalised_cxcywh(bad, (10, 10))
    with pytest.raises(ValueError, match="boxes1"):
        B.paired_box_iou(bad, GOOD)
    with pytest.raises(ValueError, match="boxes2"):
        B.paired_box_iou(GOOD, bad)


def test_box_convert_rejects_bad_formats_and_boxes():
    with pytest.raises(ValueError, match="in_fmt"):
        B.box_convert(GOOD, "xyhw", "xyxy")
    with pytest.raises(ValueError, match="out_fmt"):
        B.box_convert(GOOD, "xyxy", "yolo")
    with pytest.raises(ValueError, match="negative width"):
        B.box_convert(torch.tensor([[0.0, 0.0, -1.0, 2.0]]), "xywh", "xyxy")
    for bad in BAD_BOXES:
        with pytest.raises(ValueError, match="boxes"):
            B.box_convert(bad, "xyxy", "cxcywh")


def test_codings_reject_bad_arguments():
    with pytest.raises(ValueError, match="boxes"):
        B.encode_deltas(torch.tensor([[0.0, 0.0, 0.0, 2.0]]), GOOD)  # zero width: log(0)
    with pytest.raises(ValueError, match="same number"):
        B.encode_deltas(GOOD, torch.cat([GOOD, GOOD]))
    with pytest.raises(ValueError, match="weights"):
        B.encode_deltas(GOOD, GOOD, weights=(1, 1, 0, 1))
    with pytest.raises(ValueError, match="weights"):
        B.decode_deltas(torch.zeros(1, 4), GOOD, weights=(1, 1, 1))
    with pytest.raises(ValueError, match="deltas"):
        B.decode_deltas(torch.zeros(1, 3), GOOD)
    with pytest.raises(ValueError, match="deltas"):
        B.decode_deltas(torch.tensor([[math.nan, 0, 0, 0]]), GOOD)
    with pytest.raises(ValueError, match="clamp"):
        B.decode_deltas(torch.zeros(1, 4), GOOD, clamp=math.nan)
    with pytest.raises(ValueError, match="points"):
        B.encode_ltrb(torch.zeros(1, 3), GOOD)
    with pytest.raises(ValueError, match="same number"):
        B.encode_ltrb(torch.zeros(2, 2), GOOD)
    with pytest.raises(ValueError, match="ltrb"):
        B.decode_ltrb(torch.zeros(1, 2), torch.tensor([[1.0, 0.0, -2.0, 0.0]]))
    with pytest.raises(ValueError, match="ltrb"):
        B.decode_ltrb(torch.zeros(1, 2), torch.tensor([[math.inf, 0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="size"):
        B.clip_boxes_to_image(GOOD, (10, 0))
    with pytest.raises(ValueError, match="image_size"):
        B.encode_yolo(GOOD, (10,), 7)
    with pytest.raises(ValueError, match="grid"):
        B.encode_yolo(GOOD, (10, 10), 0)
    with pytest.raises(ValueError, match="centre outside"):
        B.encode_yolo(GOOD + 100, (10, 10), 7)
    with pytest.raises(ValueError, match="cells"):
        B.decode_yolo(torch.zeros(1, 2), torch.zeros(1, 4), (10, 10), 7)  # float cells
    with pytest.raises(ValueError, match="cells"):
        B.decode_yolo(torch.tensor([[7, 0]]), torch.zeros(1, 4), (10, 10), 7)
    with pytest.raises(ValueError, match="coords"):
        B.decode_yolo(torch.tensor([[0, 0]]), torch.tensor([[0.5, 0.5, -0.1, 0.1]]), (10, 10), 7)
    with pytest.raises(ValueError, match="same number"):
        B.decode_yolo(torch.tensor([[0, 0]]), torch.zeros(2, 4), (10, 10), 7)


def test_functions_do_not_modify_inputs():
    b1, b2 = random_boxes(6, seed=9), random_boxes(6, seed=10)
    c1, c2 = b1.clone(), b2.clone()
    B.box_iou(b1, b2)
    B.paired_box_iou(b1, b2)
    B.generalized_box_iou(b1, b2)
    B.decode_normalised_cxcywh(B.encode_normalised_cxcywh(b1, (10, 10)), (10, 10))
    B.clip_boxes_to_image(b1, (10, 10))
    deltas = B.encode_deltas(b1, b2)
    B.decode_deltas(deltas, b2)
    torch.testing.assert_close(b1, c1)
    torch.testing.assert_close(b2, c2)
