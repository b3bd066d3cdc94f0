"""vizlib.nn's first detection pieces: localisation / keypoint regression and the YOLO
grid detector (shapes, target encoding and decoding, the loss, assignment rules)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vizlib.boxes import (
    box_iou,
    decode_normalised_cxcywh,
    decode_yolo,
    encode_normalised_cxcywh,
    encode_yolo,
    paired_box_iou,
)
from vizlib.nn.backbone import VGGBackbone
from vizlib.nn.localisation import (
    KeypointNet,
    LocalisationNet,
    RegressionTrunk,
    decode_keypoints,
    encode_keypoints,
    keypoint_loss,
    localisation_loss,
)
from vizlib.nn.yolo import (
    LOSS_TERMS,
    YOLOv1,
    anchor_output_size,
    decode_output,
    encode_anchor_targets,
    encode_yolo_targets,
    predicted_boxes,
    responsible_boxes,
    split_output,
    yolo_loss,
    yolo_output_size,
    yolo_postprocess,
)

SIZE = (64, 64)


def small_trunk():
    return RegressionTrunk(VGGBackbone((4, 8, 8), convs_per_stage=1), pooled_size=2, hidden=16)


# -- localisation ---------------------------------------------------------------------


def test_localisation_net_shapes_and_predict():
    torch.manual_seed(0)
    model = LocalisationNet(6, small_trunk()).eval()
    images = torch.rand(3, 3, 64, 64)
    out = model(images)
    assert out["class_logits"].shape == (3, 6) and out["boxes"].shape == (3, 4)
    pred = model.predict(list(images))  # a list of images works too
    assert pred["boxes"].shape == (3, 4)
    assert bool((pred["labels"] >= 1).all()), "one object per image: never background"
    assert bool((pred["boxes"][:, 2:] >= pred["boxes"][:, :2]).all())
    # before training the box head answers the average box: centred, 0.3 of the image
    assert torch.allclose(pred["boxes"][0], torch.tensor([22.4, 22.4, 41.6, 41.6]), atol=0.5)


def test_box_coding_round_trip_and_clamping():
    boxes = torch.tensor([[0.0, 0.0, 64.0, 32.0], [10.0, 20.0, 30.0, 25.0]])
    codes = encode_normalised_cxcywh(boxes, (32, 64))
    assert torch.allclose(codes[0], torch.tensor([0.5, 0.5, 1.0, 1.0]))
    assert torch.allclose(decode_normalised_cxcywh(codes, (32, 64)), boxes)
    negative = decode_normalised_cxcywh(torch.tensor([[0.5, 0.5, -0.1, 0.2]]), SIZE)
    assert negative[0, 0] == negative[0, 2] == 32.0, "a negative width decodes to a zero-width box"
    with pytest.raises(ValueError, match="codes"):
        decode_normalised_cxcywh(torch.zeros(3, 3), SIZE)


def test_localisation_loss_terms_and_weight():
    torch.manual_seed(0)
    model = LocalisationNet(6, small_trunk())
    out = model(torch.rand(4, 3, 64, 64))
    targets = {
        "label": torch.tensor([1, 2, 3, 5]),
        "box": torch.tensor([[4.0, 4.0, 20.0, 30.0]] * 4),
    }
    l1 = localisation_loss(out, targets, SIZE, box_weight=1.0)
    l10 = localisation_loss(out, targets, SIZE, box_weight=10.0)
    assert set(l1) == {"classification", "box"}
    assert torch.allclose(l10["box"], 10 * l1["box"]) and torch.allclose(
        l10["classification"], l1["classification"]
    )
    assert localisation_loss(out, targets, SIZE, box_weight=0.0)["box"] == 0
    perfect = {
        "class_logits": torch.nn.functional.one_hot(targets["label"], 6) * 100.0,
        "boxes": encode_normalised_cxcywh(targets["box"], SIZE),
    }
    terms = localisation_loss(perfect, targets, SIZE)
    assert terms["classification"] < 1e-6 and terms["box"] < 1e-10
    with pytest.raises(ValueError, match="box_loss"):
        localisation_loss(out, targets, SIZE, box_loss="l3")
    with pytest.raises(ValueError, match="targets"):
        localisation_loss(out, {"boxes": targets["box"]}, SIZE)


def test_keypoint_net_coding_and_loss_ignores_unlabelled_points():
    model = KeypointNet(6, small_trunk())
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 6, 2)
    assert model.predict(torch.rand(2, 3, 64, 64)).shape == (2, 6, 2)
    kp = torch.tensor([[[32.0, 16.0, 2.0], [0.0, 64.0, 1.0], [50.0, 50.0, 0.0]]])
    codes = encode_keypoints(kp, SIZE)
    assert torch.allclose(codes, torch.tensor([[[0.5, 0.25], [0.0, 1.0], [50 / 64, 50 / 64]]]))
    assert torch.allclose(decode_keypoints(codes, SIZE), kp[..., :2])
    wrong_hidden = codes.clone()
    wrong_hidden[0, 2] = 0.0  # a point with v = 0 may be anywhere
    assert keypoint_loss(wrong_hidden, kp, SIZE) == 0
    off = codes.clone()
    off[0, 0, 0] += 0.1
    assert math.isclose(float(keypoint_loss(off, kp, SIZE)), 0.01, rel_tol=1e-5)


# -- YOLO: sizes and layout -------------------------------------------------------------


def test_output_sizes_of_the_paper_and_the_anchor_variant():
    assert yolo_output_size(7, 2, 20) == (7, 7, 30)
    assert anchor_output_size(5, 10, 3) == (5, 5, 80)  # the anchors lecture's poll
    with pytest.raises(ValueError):
        yolo_output_size(0, 2, 20)


def test_yolo_model_shapes_train_and_eval():
    torch.manual_seed(0)
    model = YOLOv1(
        5, boxes_per_cell=2, backbone=VGGBackbone((4, 8, 8), convs_per_stage=1), head_channels=8
    )
    images = torch.rand(2, 3, 64, 64)
    out = model.raw(images)
    assert out.shape == (2, 8, 8, 15)
    assert bool(((out >= 0) & (out <= 1)).all())
    assert torch.allclose(out[..., 10:].sum(-1), torch.ones(2, 8, 8)), "class scores are a softmax"
    assert float(out[..., 4].mean().detach()) < 0.05, (
        "confidences start near 0 (prior initialisation)"
    )
    targets = [
        {"boxes": torch.tensor([[10.0, 10.0, 30.0, 40.0]]), "labels": torch.tensor([3])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    model.train()
    losses = model(list(images), targets)
    assert set(losses) == set(LOSS_TERMS)
    sum(losses.values()).backward()
    model.eval()
    dets = model(images)
    assert len(dets) == 2 and set(dets[0]) == {"boxes", "scores", "labels"}
    with pytest.raises(ValueError, match="square"):
        model(torch.rand(1, 3, 64, 32))


# -- YOLO: targets ----------------------------------------------------------------------


boxes_strategy = st.lists(
    st.tuples(st.floats(0, 56), st.floats(0, 56), st.floats(2, 30), st.floats(2, 30)),
    min_size=0,
    max_size=6,
)


def _boxes(rows):
    if not rows:
        return torch.zeros(0, 4)
    t = torch.tensor(rows, dtype=torch.float32)
    xyxy = torch.cat([t[:, :2], (t[:, :2] + t[:, 2:]).clamp(max=64)], dim=1)
    return xyxy


@settings(max_examples=40, deadline=None)
@given(rows=boxes_strategy, grid=st.sampled_from([2, 4, 7, 8]))
def test_targets_round_trip_through_decode(rows, grid):
    """Every object kept on the grid decodes back to its own box; the count adds up."""
    boxes = _boxes(rows)
    labels = torch.arange(1, len(boxes) + 1)
    t = encode_yolo_targets([{"boxes": boxes, "labels": labels}], SIZE, grid)
    kept = int(t.obj.sum())
    assert kept + t.dropped == len(boxes)
    # a perfect output: each object cell's first box is its object, class probs one-hot
    out = _perfect_output(t, num_classes=max(len(boxes), 1), b=2)
    raw = decode_output(out, SIZE, 2)
    conf = raw["conf"][0]
    decoded = raw["boxes"][0][conf > 0.5]
    assert len(decoded) == kept
    found = t.boxes[t.obj]  # [kept, 4], in row-major cell order like decode_output
    assert torch.allclose(decoded, found, atol=1e-3)
    cells, _ = encode_yolo(found, SIZE, grid) if kept else (torch.zeros(0, 2), None)
    assert torch.equal(raw["cells"][conf > 0.5], cells.long()) if kept else True


def test_responsible_cell_is_the_one_holding_the_centre_and_the_biggest_wins():
    boxes = torch.tensor(
        [
            [0.0, 0.0, 15.0, 15.0],  # centre (7.5, 7.5): cell (0, 0) of a 4 x 4 grid (16 px)
            [40.0, 10.0, 60.0, 50.0],  # centre (50, 30): row 1, column 3
            [44.0, 20.0, 52.0, 36.0],  # centre (48, 28): the same cell, smaller: dropped
            [16.0, 16.0, 48.0, 48.0],  # centre (32, 32) on a cell corner: row 2, column 2
        ]
    )
    t = encode_yolo_targets([{"boxes": boxes, "labels": torch.tensor([1, 2, 3, 4])}], SIZE, 4)
    assert t.obj[0].nonzero().tolist() == [[0, 0], [1, 3], [2, 2]]
    assert t.dropped == 1
    assert t.labels[0, 1, 3] == 2, "the bigger object keeps the cell"
    assert torch.allclose(t.coords[0, 2, 2], torch.tensor([0.0, 0.0, 0.5, 0.5]))
    assert torch.allclose(t.coords[0, 0, 0], torch.tensor([7.5 / 16, 7.5 / 16, 15 / 64, 15 / 64]))
    with pytest.raises(ValueError, match="labels"):
        encode_yolo_targets(
            [{"boxes": boxes, "labels": torch.tensor([1, 2, 3, 9])}], SIZE, 4, num_classes=5
        )


def test_responsible_box_is_the_one_with_the_highest_iou():
    boxes = torch.tensor([[8.0, 8.0, 24.0, 24.0]])  # cell (0, 0) of a 2 x 2 grid, centre (16, 16)
    t = encode_yolo_targets([{"boxes": boxes, "labels": torch.tensor([1])}], SIZE, 2)
    out = torch.zeros(1, 2, 2, 2 * 5 + 3)
    # box 0: right centre, far too big; box 1: exactly the object
    out[0, 0, 0, 0:4] = torch.tensor([0.5, 0.5, 1.0, 1.0])
    out[0, 0, 0, 5:9] = torch.tensor([0.5, 0.5, 0.5, 0.5])
    responsible, iou = responsible_boxes(out, t, SIZE, 2)
    assert responsible[0, 0, 0].tolist() == [False, True]
    assert int(responsible.sum()) == 1
    assert math.isclose(float(iou[0, 0, 0, 1]), 1.0, rel_tol=1e-6)
    assert math.isclose(float(iou[0, 0, 0, 0]), 16**2 / 64**2, rel_tol=1e-6)
    # with no overlap at all, the first box is chosen
    responsible, _ = responsible_boxes(torch.zeros(1, 2, 2, 13), t, SIZE, 2)
    assert responsible[0, 0, 0].tolist() == [True, False]


# -- YOLO: loss ---------------------------------------------------------------------------


def _perfect_output(t, num_classes: int, b: int) -> torch.Tensor:
    """The output a perfect detector gives: the first box of each object cell is exact with
    confidence 1, every other confidence 0, one-hot class probabilities."""
    n, s = t.obj.shape[:2]
    out = torch.zeros(n, s, s, 5 * b + num_classes)
    out[..., 0:2] = t.coords[..., :2]
    out[..., 2:4] = t.coords[..., 2:].sqrt()
    out[..., 4] = t.obj.float()
    one_hot = torch.nn.functional.one_hot((t.labels - 1).clamp(min=0), num_classes).float()
    out[..., 5 * b :] = one_hot * t.obj[..., None]
    return out


def _scene_targets():
    return [
        {
            "boxes": torch.tensor([[2.0, 2.0, 26.0, 24.0], [36.0, 30.0, 60.0, 62.0]]),
            "labels": torch.tensor([1, 3]),
        },
        {"boxes": torch.tensor([[20.0, 20.0, 44.0, 40.0]]), "labels": torch.tensor([2])},
    ]


@pytest.mark.parametrize("conf_target", ["iou", "one"])
def test_loss_is_zero_on_perfect_predictions(conf_target):
    t = encode_yolo_targets(_scene_targets(), SIZE, 4)
    out = _perfect_output(t, num_classes=3, b=2)
    losses = yolo_loss(out, t, SIZE, 2, conf_target=conf_target)
    assert set(losses) == set(LOSS_TERMS)
    for name, value in losses.items():
        assert float(value) < 1e-10, f"{name} = {float(value)} on a perfect output"


@pytest.mark.parametrize(
    ("where", "term", "expected"),
    [
        ((0, 0, 0, 0), "xy", 5.0 * 0.1**2 / 2),  # x of the responsible box, lambda_coord = 5
        ((0, 0, 0, 2), "wh", 5.0 * 0.1**2 / 2),  # sqrt(w) of the responsible box
        ((0, 3, 3, 4), "noobj", 0.5 * 0.1**2 / 2),  # confidence of an empty cell's box
        ((0, 0, 0, 9), "noobj", 0.5 * 0.1**2 / 2),  # the other box of an object cell is "noobj"
        ((0, 0, 0, 10), "class", 0.1**2 / 2),  # a class probability of an object cell
        ((0, 3, 3, 10), None, None),  # class probabilities of an empty cell: free
    ],
)
def test_each_term_reacts_to_its_own_error_only(where, term, expected):
    t = encode_yolo_targets(_scene_targets(), SIZE, 4)
    out = _perfect_output(t, num_classes=3, b=2)
    assert t.obj[0, 0, 0]
    out[where] += 0.1
    losses = yolo_loss(out, t, SIZE, 2, conf_target="one")
    for name, value in losses.items():
        if name == term or (term == "xy" and name == "obj") or (term == "wh" and name == "obj"):
            continue
        assert float(value) < 1e-10, f"{name} changed for an error at {where}"
    if term is not None:
        assert math.isclose(float(losses[term]), expected, rel_tol=1e-4)


def test_confidence_target_is_the_iou_in_the_paper_mode():
    t = encode_yolo_targets(_scene_targets(), SIZE, 4)
    out = _perfect_output(t, num_classes=3, b=2)
    out[0, 0, 0, 2] += 0.1  # the box is now a little too wide: IoU < 1, target conf < 1
    iou = float(responsible_boxes(out, t, SIZE, 2)[1][0, 0, 0, 0])
    assert iou < 1
    paper = yolo_loss(out, t, SIZE, 2, conf_target="iou")["obj"]
    assert math.isclose(float(paper), (1 - iou) ** 2 / 2, rel_tol=1e-4)
    assert yolo_loss(out, t, SIZE, 2, conf_target="one")["obj"] < 1e-10


def test_loss_weights_and_bad_input():
    t = encode_yolo_targets(_scene_targets(), SIZE, 4)
    out = torch.rand(2, 4, 4, 13)
    base = yolo_loss(out, t, SIZE, 2)
    doubled = yolo_loss(out, t, SIZE, 2, lambda_coord=10.0, lambda_noobj=1.0)
    assert torch.allclose(doubled["xy"], 2 * base["xy"]) and torch.allclose(
        doubled["noobj"], 2 * base["noobj"]
    )
    assert torch.allclose(doubled["class"], base["class"])
    with pytest.raises(ValueError, match="grid"):
        yolo_loss(torch.rand(2, 8, 8, 13), t, SIZE, 2)
    with pytest.raises(ValueError, match="lambda_noobj"):
        yolo_loss(out, t, SIZE, 2, lambda_noobj=-1)
    with pytest.raises(ValueError, match="5B"):
        split_output(torch.rand(2, 4, 4, 10), 2)


# -- YOLO: decoding and NMS ---------------------------------------------------------------


def test_paired_iou_is_the_diagonal_of_box_iou():
    # the loss's IoU is vizlib.boxes.paired_box_iou (tests/test_boxes.py checks it against
    # torchvision); here: what responsible_boxes computes with it on a grid
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(20, 2, generator=g) * 40
    a = torch.cat([xy, xy + torch.rand(20, 2, generator=g) * 20], 1)
    xy = torch.rand(20, 2, generator=g) * 40
    b = torch.cat([xy, xy + torch.rand(20, 2, generator=g) * 20], 1)
    assert torch.allclose(paired_box_iou(a, b), box_iou(a, b).diagonal(), atol=1e-6)
    point = torch.tensor([[3.0, 3.0, 3.0, 3.0]])
    assert paired_box_iou(point, point).item() == 0.0


def test_predicted_boxes_are_decode_yolo_of_each_cell():
    """One YOLO decode: the grid's boxes are vizlib.boxes.decode_yolo of (cell, x, y,
    sqrt(w)**2, sqrt(h)**2), box by box, and gradients flow back to the output."""
    g = torch.Generator().manual_seed(4)
    part = torch.rand(2, 3, 3, 2, 4, generator=g, requires_grad=True)
    boxes = predicted_boxes(part, (48, 60))
    assert boxes.shape == (2, 3, 3, 2, 4)
    for n, row, col, k in ((0, 0, 0, 0), (1, 2, 1, 1), (0, 1, 2, 1)):
        x, y, sw, sh = part[n, row, col, k].detach()
        want = decode_yolo(
            torch.tensor([[row, col]]), torch.stack([x, y, sw**2, sh**2])[None], (48, 60), 3
        )
        torch.testing.assert_close(boxes[n, row, col, k], want[0])
    boxes.sum().backward()
    assert part.grad is not None and bool(torch.isfinite(part.grad).all())
    with pytest.raises(ValueError, match="box_part"):
        predicted_boxes(torch.rand(2, 3, 3, 4), (48, 60))


def test_postprocess_scores_thresholds_and_suppresses():
    t = encode_yolo_targets(_scene_targets(), SIZE, 4)
    out = _perfect_output(t, num_classes=3, b=2)
    # a duplicate: the second box of the first object's cell, almost the same box, conf 0.6
    out[0, 0, 0, 5:9] = out[0, 0, 0, 0:4] + 0.01
    out[0, 0, 0, 9] = 0.6
    dets = yolo_postprocess(out, SIZE, 2, score_threshold=0.3, nms_threshold=0.5)
    assert [len(d["boxes"]) for d in dets] == [2, 1], "NMS removes the duplicate"
    assert dets[0]["labels"].tolist() == [1, 3]
    assert torch.allclose(dets[1]["boxes"], _scene_targets()[1]["boxes"], atol=1e-4)
    kept_both = yolo_postprocess(out, SIZE, 2, score_threshold=0.3, nms_threshold=1.0)
    assert len(kept_both[0]["boxes"]) == 3
    scores = torch.cat([d["scores"] for d in dets])
    assert bool((scores >= 0.3).all())


def test_anchor_targets_pick_the_best_shape_and_keep_two_objects_per_cell():
    anchors = torch.tensor([[16.0, 16.0], [8.0, 32.0], [32.0, 8.0]])
    boxes = torch.tensor(
        [
            [24.0, 20.0, 32.0, 50.0],  # tall, centre (28, 35): anchor 1, cell (2, 1)
            [14.0, 30.0, 44.0, 38.0],
        ]
    )  # wide, centre (29, 34): same cell, anchor 2
    t = encode_anchor_targets([{"boxes": boxes, "labels": torch.tensor([2, 4])}], SIZE, 4, anchors)
    assert t.obj[0].nonzero().tolist() == [[2, 1, 1], [2, 1, 2]]
    assert t.dropped == 0, "YOLO v1 would have lost one of them"
    row, col = 2, 1
    assert t.labels[0, row, col].tolist() == [0, 2, 4]
    assert torch.allclose(t.coords[0, row, col, 1, 2:], torch.log(torch.tensor([8 / 8, 30 / 32])))
    with pytest.raises(ValueError, match="anchors"):
        encode_anchor_targets([], SIZE, 4, torch.tensor([[0.0, 1.0]]))


def test_decode_output_layout_matches_cells_and_slots():
    out = torch.rand(2, 3, 3, 2 * 5 + 4)
    raw = decode_output(out, (48, 48), 2)
    assert raw["boxes"].shape == (2, 18, 4) and raw["conf"].shape == (2, 18)
    assert raw["class_probs"].shape == (2, 18, 4)
    k = 2 * (1 * 3 + 2) + 1  # cell (row 1, column 2), second box
    assert raw["cells"][k].tolist() == [1, 2] and int(raw["slot"][k]) == 1
    assert math.isclose(float(raw["conf"][0, k]), float(out[0, 1, 2, 9]))
    assert torch.equal(raw["class_probs"][1, k], out[1, 1, 2, 10:])
    assert bool((raw["boxes"] >= 0).all() and (raw["boxes"] <= 48).all()), "clipped to the image"
    with pytest.raises(ValueError, match="score_threshold"):
        yolo_postprocess(out, (48, 48), 2, score_threshold=1.5)


def test_yolo_bad_input_is_named():
    with pytest.raises(ValueError, match="targets"):
        encode_yolo_targets({"boxes": torch.zeros(0, 4)}, SIZE, 4)
    with pytest.raises(ValueError, match="targets\\[0\\]"):
        encode_yolo_targets([{"boxes": torch.zeros(1, 4)}], SIZE, 4)
    with pytest.raises(ValueError, match="grid"):
        encode_yolo_targets([], SIZE, 0)
    with pytest.raises(ValueError, match="conf_target"):
        YOLOv1(3, conf_target="half")
    with pytest.raises(ValueError, match="num_classes"):
        YOLOv1(0)
    model = YOLOv1(3, backbone=VGGBackbone((4, 8), convs_per_stage=1), head_channels=4).train()
    with pytest.raises(ValueError, match="targets"):
        model(torch.rand(1, 3, 16, 16))


def test_yolo_learns_one_batch():
    """A small YOLO overfits two images: every loss term falls, the objects are found."""
    torch.manual_seed(0)
    model = YOLOv1(3, backbone=VGGBackbone((8, 16, 32), convs_per_stage=1), head_channels=32)
    images = torch.rand(2, 3, 32, 32)
    targets = [{"boxes": t["boxes"] / 2, "labels": t["labels"]} for t in _scene_targets()]
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    first = {k: float(v.detach()) for k, v in model(images, targets).items()}
    for _ in range(100):
        opt.zero_grad()
        losses = model(images, targets)
        sum(losses.values()).backward()
        opt.step()
    last = {k: float(v.detach()) for k, v in model(images, targets).items()}
    for name in ("xy", "wh", "class"):
        assert last[name] < first[name] / 4, f"{name}: {first[name]:.4f} -> {last[name]:.4f}"
    assert last["noobj"] < 0.01, "empty boxes stay unconfident (they start near 0: prior init)"
    model.eval()
    dets = model(images)
    for det, target in zip(dets, targets, strict=True):
        good = det["scores"] >= 0.3
        ious = box_iou(det["boxes"][good], target["boxes"])
        assert bool((ious.max(dim=0).values > 0.5).all()), "every object is found"


# -- torchvision's detectors on the small backbone ---------------------------------------------


@pytest.mark.parametrize("builder", ["fcos", "retinanet"])
def test_torchvision_detectors_train_and_predict_at_the_scene_size(builder):
    from vizlib.nn.torchvision_detection import (
        PyramidBackbone,
        torchvision_fcos,
        torchvision_retinanet,
    )

    torch.manual_seed(0)
    backbone = PyramidBackbone(
        VGGBackbone((4, 8, 16, 16), convs_per_stage=1), levels=(2, 3), out_channels=32
    )
    assert backbone.strides == [8, 16]
    features = backbone(torch.rand(1, 3, 64, 64))
    assert [tuple(f.shape) for f in features.values()] == [(1, 32, 8, 8), (1, 32, 4, 4)]
    make = torchvision_fcos if builder == "fcos" else torchvision_retinanet
    kwargs = {"head_convs": 1} if builder == "fcos" else {}
    model = make(4, 64, backbone=backbone, **kwargs)
    assert model.transform.min_size == (64,) and model.transform.max_size == 64, (
        "no resizing to 800 px"
    )
    targets = [
        {"boxes": torch.tensor([[10.0, 10.0, 30.0, 40.0]]), "labels": torch.tensor([2])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    model.train()
    losses = model(list(torch.rand(2, 3, 64, 64)), targets)
    expected = {"classification", "bbox_regression"} | (
        {"bbox_ctrness"} if builder == "fcos" else set()
    )
    assert set(losses) == expected
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad():
        dets = model(list(torch.rand(2, 3, 64, 64)))
    assert len(dets) == 2 and set(dets[0]) >= {"boxes", "scores", "labels"}
    assert bool((dets[0]["boxes"] <= 64).all())
    with pytest.raises(ValueError, match="levels"):
        PyramidBackbone(levels=(3, 2))
    with pytest.raises(ValueError, match="image_size"):
        make(4, 0)
    if builder == "fcos":  # its head normalises with GroupNorm(32, channels)
        with pytest.raises(ValueError, match="out_channels"):
            make(4, 64, backbone=PyramidBackbone(out_channels=48))


# -- the NMS widget on a detector's raw boxes (vizlib.widgets.nms, scene argument) --------------


def test_nms_widget_runs_on_a_given_scene_like_torchvision():
    import torchvision

    from vizlib.widgets import NMSWidget
    from vizlib.widgets import nms as wn

    g = torch.Generator().manual_seed(3)
    xy = torch.rand(12, 2, generator=g) * 40
    boxes = torch.cat([xy, xy + 8 + torch.rand(12, 2, generator=g) * 16], dim=1)
    scores = torch.rand(12, generator=g)
    target = {"boxes": boxes[:3].clone()}
    scene = (torch.rand(3, 64, 64), target, boxes, scores)
    n = wn.nms_numbers(0.5, 0.3, scene=scene)
    cand = n["candidates"]
    assert torch.equal(cand, torch.nonzero(scores >= 0.3).flatten())
    ref = cand[torchvision.ops.nms(boxes[cand], scores[cand], 0.5)]
    assert [s.kept for s in n["trace"]] == ref.tolist()
    widget = NMSWidget(scene=scene, noun="shapes")
    boxes[0] += 5  # the widget copied its scene: later changes change nothing
    fig = widget.figure(iou_threshold=0.5, score_threshold=0.3, step=wn.MAX_STEPS)
    assert f"finds {n['found_nms']}/3 shapes" in fig.layout.title.text
    assert (
        "people"
        in NMSWidget()
        .figure(iou_threshold=0.5, score_threshold=0.05, step=wn.MAX_STEPS)
        .layout.title.text
    )
    with pytest.raises(ValueError, match="scores"):
        NMSWidget(scene=(scene[0], target, boxes, scores[:3]))
    with pytest.raises(ValueError, match="scene"):
        NMSWidget(scene=(scene[0], target))
