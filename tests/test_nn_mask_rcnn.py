"""vizlib.nn.mask_rcnn: every piece of Mask R-CNN's mask and keypoint branches checked
against its counterpart in torchvision.models.detection.roi_heads (same inputs, same
numbers), the continuous-pixel defaults checked on the scenes, the empty cases (no
positive region, no valid keypoint) kept finite and connected, and the whole model
trained a few steps on scenes, images without objects included."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection import roi_heads as tv
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

from vizlib.nn.mask_rcnn import (
    COCO_PERSON_FLIP_INDEX,
    KeypointHead,
    KeypointPredictor,
    MaskHead,
    MaskPredictor,
    heatmaps_to_keypoints,
    hflip_keypoints,
    keypoint_loss,
    keypoint_rcnn_loss,
    keypoint_targets,
    mask_loss,
    mask_probabilities,
    mask_rcnn_loss,
    mask_targets,
    one_hot_heatmaps,
    paste_masks_in_image,
    positive_rois,
    ring_flip_index,
)

SIZE = (64, 64)


def jittered(boxes: torch.Tensor, g: torch.Generator, spread: float = 3.0) -> torch.Tensor:
    """Regions around ``boxes``, as proposals would be: shifted, some past the image."""
    b = boxes + torch.randn(len(boxes), 4, generator=g) * spread
    lo = b[:, :2]
    return torch.cat([lo, torch.maximum(b[:, 2:], lo + 1.0)], dim=1)


@pytest.fixture(scope="module")
def scenes():
    """Three scenes' (image, target) pairs with things (masks, keypoints) in them."""
    from vizlib.data import KeypointScenes

    data = KeypointScenes(8, seed=1)
    samples = [data[i] for i in range(len(data))]
    return [(im, t) for im, t in samples if len(t["labels"])][:3]


def plain(t):
    return t.as_subclass(torch.Tensor) if isinstance(t, torch.Tensor) else t


# -- mask targets ----------------------------------------------------------------------


def test_mask_targets_equal_torchvisions_projection(scenes):
    g = torch.Generator().manual_seed(0)
    for _, t in scenes:
        masks, boxes = plain(t["masks"]), plain(t["boxes"])
        idx = torch.randint(len(boxes), (7,), generator=g)  # several regions per object
        rois = jittered(boxes[idx], g)
        want = tv.project_masks_on_boxes(masks, rois, idx, 28)
        got = mask_targets(masks, rois, idx, 28, aligned=False)
        assert got.shape == (7, 28, 28)
        torch.testing.assert_close(got, want)
        assert bool(((got >= 0) & (got <= 1)).all())
    binary = mask_targets(masks, rois, idx, 14, binary=True)
    assert binary.shape == (7, 14, 14) and set(binary.unique().tolist()) <= {0.0, 1.0}


def test_mask_targets_round_trip_through_pasting_is_exact_in_continuous_pixels(scenes):
    """A mask cropped to its own box and pasted back is the mask again with the defaults;
    torchvision's two conventions (corner-sampled targets, +1 pasting) lose pixels."""
    for _, t in scenes:
        masks, boxes = plain(t["masks"]), plain(t["boxes"])
        idx = torch.arange(len(boxes))
        ours = paste_masks_in_image(mask_targets(masks, boxes, idx), boxes, SIZE, threshold=0.5)
        assert torch.equal(ours, masks)
        theirs = tv.paste_masks_in_image(
            tv.project_masks_on_boxes(masks, boxes, idx, 28)[:, None], boxes, SIZE
        )[:, 0]
        assert not torch.equal(theirs > 0.5, masks)


def test_mask_targets_check_their_input():
    masks, boxes = torch.zeros(2, 8, 8, dtype=torch.bool), torch.tensor([[0.0, 0, 4, 4]])
    with pytest.raises(ValueError, match=r"\[M, H, W\]"):
        mask_targets(masks[0], boxes, torch.tensor([0]))
    with pytest.raises(ValueError, match="index the 2 masks"):
        mask_targets(masks, boxes, torch.tensor([2]))
    with pytest.raises(ValueError, match=r"shape \[1\]"):
        mask_targets(masks, boxes, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="integer tensor"):
        mask_targets(masks, boxes, torch.tensor([0.0]))
    with pytest.raises(ValueError, match="x2 < x1"):
        mask_targets(masks, torch.tensor([[4.0, 0, 0, 4]]), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mask_targets(masks.float() + 2, boxes, torch.tensor([0]))
    assert mask_targets(masks, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64)).shape == (
        0,
        28,
        28,
    )


def test_positive_rois_keep_the_positives_and_their_objects():
    from vizlib.nn.faster_rcnn import roi_head_targets

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(8)
    gt = [torch.tensor([[10.0, 12, 30, 40], [40, 5, 52, 17]]), torch.zeros(0, 4)]
    labels = [torch.tensor([2, 5]), torch.zeros(0, dtype=torch.int64)]
    proposals = [jittered(gt[0][torch.tensor([0, 1] * 10)], g), jittered(gt[0], g)]
    rois, roi_labels, _ = roi_head_targets(proposals, gt, labels, batch_size_per_image=16)
    pos, pos_labels, matched = positive_rois(rois, roi_labels, gt)
    assert len(pos[0]) == int((roi_labels[0] > 0).sum()) > 0 and len(pos[1]) == 0
    assert torch.equal(labels[0][matched[0]], pos_labels[0])
    assert matched[1].shape == (0,) and matched[1].dtype == torch.int64
    with pytest.raises(ValueError, match="no object"):
        positive_rois([pos[0]], [pos_labels[0]], [torch.zeros(0, 4)])


# -- mask head and loss ----------------------------------------------------------------


def test_mask_head_and_predictor_equal_torchvisions_with_the_same_weights():
    torch.manual_seed(0)
    head, predictor = MaskHead(8, (16, 16, 16, 16)), MaskPredictor(16, 12, 5)
    tv_head, tv_predictor = MaskRCNNHeads(8, (16, 16, 16, 16), 1), MaskRCNNPredictor(16, 12, 6)
    tv_convs = [m for m in tv_head.modules() if isinstance(m, torch.nn.Conv2d)]
    ours = [m for m in head.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        for o, t in zip(ours, tv_convs, strict=True):
            t.weight.copy_(o.weight)
            t.bias.copy_(o.bias)
        tv_predictor.load_state_dict(predictor.state_dict())
    x = torch.randn(3, 8, 14, 14)
    got = predictor(head(x))
    assert got.shape == (3, 6, 28, 28)
    torch.testing.assert_close(got, tv_predictor(tv_head(x)))
    with pytest.raises(ValueError, match="layers"):
        MaskHead(8, ())
    with pytest.raises(ValueError, match=r"\[R, C, h, w\]"):
        head(torch.randn(8, 14, 14))


def test_mask_loss_equals_torchvisions_maskrcnn_loss(scenes):
    g = torch.Generator().manual_seed(1)
    proposals, masks, labels, matched = [], [], [], []
    for _, t in scenes:
        b = plain(t["boxes"])
        idx = torch.randint(len(b), (5,), generator=g)
        proposals.append(jittered(b[idx], g))
        masks.append(plain(t["masks"]))
        labels.append(t["labels"])
        matched.append(idx)
    logits = torch.randn(15, 6, 28, 28, generator=g, requires_grad=True)
    want = tv.maskrcnn_loss(logits, proposals, masks, labels, matched)
    got = mask_rcnn_loss(logits, proposals, masks, labels, matched, aligned=False)
    torch.testing.assert_close(got, want)
    # the pieces: only the true class's channel counts
    targets = torch.cat(
        [
            mask_targets(m, p, i, aligned=False)
            for m, p, i in zip(masks, proposals, matched, strict=True)
        ]
    )
    classes = torch.cat([lab[i] for lab, i in zip(labels, matched, strict=True)])
    torch.testing.assert_close(mask_loss(logits, classes, targets), want)
    other = logits.detach().clone()
    other[torch.arange(15), (classes % 5) + 1] += 10.0  # change only another class's mask
    torch.testing.assert_close(mask_loss(other, classes, targets), want.detach())
    got.backward()
    assert logits.grad is not None and logits.grad[:, 0].abs().sum() == 0, "background untrained"


def test_mask_loss_without_positive_regions_is_zero_and_reaches_every_head_parameter():
    head, predictor = MaskHead(8, (8, 8)), MaskPredictor(8, 8, 5)
    logits = predictor(head(torch.zeros(0, 8, 14, 14)))
    loss = mask_loss(logits, torch.zeros(0, dtype=torch.int64), torch.zeros(0, 28, 28))
    want = tv.maskrcnn_loss(
        logits,
        [torch.zeros(0, 4)],
        [torch.zeros(1, 64, 64)],
        [torch.tensor([1])],
        [torch.zeros(0, dtype=torch.int64)],
    )
    assert float(loss.detach()) == 0.0 == float(want.detach())
    loss.backward()
    for name, p in [*head.named_parameters(), *predictor.named_parameters()]:
        assert p.grad is not None and float(p.grad.abs().sum()) == 0.0, name


def test_mask_loss_checks_its_input():
    logits = torch.randn(2, 6, 28, 28)
    targets = torch.rand(2, 28, 28)
    with pytest.raises(ValueError, match=r"\[1, 5\]"):
        mask_loss(logits, torch.tensor([0, 1]), targets)  # background is not a positive
    with pytest.raises(ValueError, match=r"shape \[2\]"):
        mask_loss(logits, torch.tensor([1]), targets)
    with pytest.raises(ValueError, match=r"\[2, 28, 28\]"):
        mask_loss(logits, torch.tensor([1, 2]), targets[:, :14])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mask_loss(logits, torch.tensor([1, 2]), targets * 3)
    with pytest.raises(ValueError, match="floating"):
        mask_loss(logits.long(), torch.tensor([1, 2]), targets)
    with pytest.raises(ValueError, match="one entry per image"):
        mask_rcnn_loss(logits, [torch.zeros(2, 4)], [], [], [])


def test_mask_probabilities_equal_torchvisions_inference():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(7, 6, 28, 28, generator=g)
    labels = torch.randint(1, 6, (7,), generator=g)
    want = torch.cat(tv.maskrcnn_inference(logits, [labels[:3], labels[3:]]))[:, 0]
    torch.testing.assert_close(mask_probabilities(logits, labels), want)
    with pytest.raises(ValueError, match=r"\[0, 5\]"):
        mask_probabilities(logits, labels + 5)


# -- pasting ---------------------------------------------------------------------------


def test_paste_masks_equals_torchvisions_in_its_mode():
    g = torch.Generator().manual_seed(3)
    boxes = jittered(torch.tensor([[10.0, 12, 30, 40], [40, 5, 52, 17], [-3, 50, 20, 70]]), g)
    boxes = torch.cat([boxes, torch.tensor([[5.2, 6.7, 5.9, 7.1]])])  # smaller than a pixel
    probs = torch.rand(4, 28, 28, generator=g)
    want = tv.paste_masks_in_image(probs[:, None], boxes, SIZE)[:, 0]
    got = paste_masks_in_image(probs, boxes, SIZE, mode="torchvision")
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(
        paste_masks_in_image(probs[:, None], boxes, SIZE, 0.5, "torchvision"), want > 0.5
    )
    empty = paste_masks_in_image(torch.zeros(0, 28, 28), torch.zeros(0, 4), SIZE)
    assert empty.shape == (0, 64, 64)


def test_continuous_pasting_fills_exactly_the_pixels_of_an_integer_box():
    box = torch.tensor([[10.0, 20.0, 30.0, 44.0]])
    pasted = paste_masks_in_image(torch.ones(1, 28, 28), box, SIZE, threshold=0.5)
    want = torch.zeros(1, 64, 64, dtype=torch.bool)
    want[0, 20:44, 10:30] = True
    assert torch.equal(pasted, want)
    # torchvision's too: its zero padding offsets its + 1 (inclusive corners) at the edges
    tv_pasted = tv.paste_masks_in_image(torch.ones(1, 1, 28, 28), box, SIZE)[:, 0] > 0.5
    assert torch.equal(tv_pasted, want)
    # a box over the border: only the inside is painted
    over = paste_masks_in_image(torch.ones(1, 28, 28), torch.tensor([[50.0, -4, 70, 10]]), SIZE)
    assert over.shape == (1, 64, 64) and bool((over[0, :10, 50:] > 0.5).all())
    assert int((over > 0.5).sum()) == 10 * 14


def test_paste_masks_checks_its_input():
    with pytest.raises(ValueError, match="one row per mask"):
        paste_masks_in_image(torch.rand(2, 28, 28), torch.zeros(1, 4), SIZE)
    with pytest.raises(ValueError, match=r"\[D, M, M\]"):
        paste_masks_in_image(torch.rand(2, 28, 14), torch.zeros(2, 4), SIZE)
    with pytest.raises(ValueError, match="mode"):
        paste_masks_in_image(torch.rand(1, 28, 28), torch.zeros(1, 4), SIZE, mode="nearest")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        paste_masks_in_image(torch.rand(1, 28, 28), torch.zeros(1, 4), SIZE, threshold=2)


# -- keypoints -------------------------------------------------------------------------


def keypoint_case(g: torch.Generator, n: int = 12, k: int = 6):
    """Regions and keypoints around them: inside, outside, on the right/bottom edges,
    some unlabelled."""
    rois = jittered(torch.tensor([[10.0, 12, 30, 40]]).expand(n, -1), g, 4.0)
    w, h = rois[:, 2:3] - rois[:, 0:1], rois[:, 3:4] - rois[:, 1:2]
    x = rois[:, 0:1] + (torch.rand(n, k, generator=g) * 1.4 - 0.2) * w  # [N, K]
    y = rois[:, 1:2] + (torch.rand(n, k, generator=g) * 1.4 - 0.2) * h
    x[0, 0], y[1, 1] = rois[0, 2], rois[1, 3]  # exactly on the right and bottom edges
    vis = torch.randint(0, 3, (n, k), generator=g).float()
    vis[0, 0] = vis[1, 1] = 2.0
    return torch.stack([x, y, vis], dim=-1), rois


def test_keypoint_targets_equal_torchvisions_heatmaps():
    g = torch.Generator().manual_seed(4)
    keypoints, rois = keypoint_case(g)
    want_index, want_valid = tv.keypoints_to_heatmap(keypoints, rois, 56)
    index, valid = keypoint_targets(keypoints, rois, 56)
    assert index.dtype == torch.int64 and valid.dtype == torch.bool
    assert torch.equal(index, want_index) and torch.equal(valid.long(), want_valid)
    assert bool(valid[0, 0]) and int(index[0, 0]) % 56 == 55, "the right edge is the last cell"
    assert 0 < int(valid.sum()) < valid.numel()
    maps = one_hot_heatmaps(index, valid, 56)
    assert maps.shape == (12, 6, 56, 56)
    assert torch.equal(maps.flatten(2).sum(-1), valid.float())
    assert torch.equal(maps.flatten(2).argmax(-1)[valid], index[valid])
    with pytest.raises(ValueError, match=r"\[N, K, 3\]"):
        keypoint_targets(keypoints[..., :2], rois)
    with pytest.raises(ValueError, match="one row per region"):
        keypoint_targets(keypoints, rois[:3])


def test_keypoint_loss_equals_torchvisions_keypointrcnn_loss():
    g = torch.Generator().manual_seed(5)
    keypoints, rois = keypoint_case(g)
    gt = [keypoints[:5], keypoints[5:]]
    proposals = [rois[:7], rois[7:]]
    matched = [torch.randint(5, (7,), generator=g), torch.randint(7, (5,), generator=g)]
    logits = torch.randn(12, 6, 56, 56, generator=g, requires_grad=True)
    want = tv.keypointrcnn_loss(logits, proposals, gt, matched)
    got = keypoint_rcnn_loss(logits, proposals, gt, matched)
    torch.testing.assert_close(got, want)
    # the pieces: cross-entropy over the 56 x 56 positions of the valid keypoints only
    t = [keypoint_targets(k[i], p) for k, p, i in zip(gt, proposals, matched, strict=True)]
    index, valid = torch.cat([a for a, _ in t]), torch.cat([v for _, v in t])
    torch.testing.assert_close(keypoint_loss(logits, index, valid), want)
    got.backward()
    assert float(logits.grad[~valid].abs().sum()) == 0.0, "invalid keypoints get no gradient"


def test_keypoint_loss_without_a_valid_keypoint_is_zero_not_nan():
    """The empty batch: sampled regions whose keypoints are all unlabelled or outside,
    and no region at all. The mean over nothing would be NaN."""
    torch.manual_seed(0)
    head, predictor = KeypointHead(8, (8, 8)), KeypointPredictor(8, 6)
    g = torch.Generator().manual_seed(6)
    keypoints, rois = keypoint_case(g, n=3)
    keypoints[..., 2] = 0  # nothing labelled
    for n in (3, 0):
        logits = predictor(head(torch.randn(n, 8, 14, 14)))
        assert logits.shape == (n, 6, 56, 56)
        index, valid = keypoint_targets(keypoints[:n], rois[:n])
        loss = keypoint_loss(logits, index, valid)
        assert float(loss.detach()) == 0.0 and not torch.isnan(loss)
        torch.testing.assert_close(
            keypoint_rcnn_loss(logits, [rois[:n]], [keypoints], [torch.arange(n)]), loss
        )
        head.zero_grad()
        predictor.zero_grad()
        loss.backward()
        for name, p in [*head.named_parameters(), *predictor.named_parameters()]:
            assert p.grad is not None and float(p.grad.abs().sum()) == 0.0, name
    index, valid = keypoint_targets(keypoints, rois)
    with pytest.raises(ValueError, match=r"\[3, 6\]"):
        keypoint_loss(torch.randn(3, 6, 56, 56), index[:, :2], valid)
    with pytest.raises(ValueError, match="flat indices"):
        keypoint_loss(torch.randn(3, 6, 56, 56), index + 56 * 56, valid)


def test_keypoint_head_and_predictor_equal_torchvisions_with_the_same_weights():
    torch.manual_seed(1)
    head, predictor = KeypointHead(8, (16, 16)), KeypointPredictor(16, 6)
    tv_head, tv_predictor = KeypointRCNNHeads(8, (16, 16)), KeypointRCNNPredictor(16, 6)
    tv_convs = [m for m in tv_head.modules() if isinstance(m, torch.nn.Conv2d)]
    ours = [m for m in head.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        for o, t in zip(ours, tv_convs, strict=True):
            t.weight.copy_(o.weight)
            t.bias.copy_(o.bias)
        tv_predictor.load_state_dict(predictor.state_dict())
    x = torch.randn(2, 8, 14, 14)
    got = predictor(head(x))
    assert got.shape == (2, 6, 56, 56)
    torch.testing.assert_close(got, tv_predictor(tv_head(x)))


def test_heatmaps_to_keypoints_equal_torchvisions_and_invert_the_targets():
    g = torch.Generator().manual_seed(7)
    keypoints, rois = keypoint_case(g)
    maps = torch.randn(12, 6, 56, 56, generator=g)
    want_points, want_scores = tv.heatmaps_to_keypoints(maps, rois)
    points, scores = heatmaps_to_keypoints(maps, rois)
    torch.testing.assert_close(points, want_points)
    torch.testing.assert_close(scores, want_scores)
    # smooth maps peaked at the target cells decode to within a cell (and a pixel) of the
    # keypoint (a one-hot map would not do: its resizing to the box can step over the spike)
    index, valid = keypoint_targets(keypoints, rois)
    cells = torch.arange(56.0)
    cy, cx = (index // 56).float(), (index % 56).float()  # [N, K]
    maps = (
        -((cells[:, None] - cy[..., None, None]) ** 2) - (cells[None, :] - cx[..., None, None]) ** 2
    )  # [N, K, 56, 56], highest at the target cell
    decoded, _ = heatmaps_to_keypoints(maps, rois)
    cell = torch.maximum(rois[:, 2] - rois[:, 0], rois[:, 3] - rois[:, 1]) / 56  # [N]
    error = (decoded[..., :2] - keypoints[..., :2]).norm(dim=-1)  # [N, K]
    assert bool((error <= 2 * cell[:, None] + 1.0)[valid].all())
    empty_points, empty_scores = heatmaps_to_keypoints(torch.zeros(0, 6, 56, 56), torch.zeros(0, 4))
    assert empty_points.shape == (0, 6, 3) and empty_scores.shape == (0, 6)
    with pytest.raises(ValueError, match="one row per heatmap"):
        heatmaps_to_keypoints(maps, rois[:2])


def test_hflip_swaps_left_and_right_keypoints():
    # a "person" facing us: left eye (slot 1) on the image's right, right eye (slot 2)
    # on its left; after a mirror the left eye must be found on the image's left
    person = torch.zeros(1, 17, 3)
    person[0, 0] = torch.tensor([30.0, 10.0, 2.0])  # nose
    person[0, 1] = torch.tensor([34.0, 8.0, 2.0])  # left eye
    person[0, 2] = torch.tensor([26.0, 8.0, 2.0])  # right eye
    flipped = hflip_keypoints(person, 64, COCO_PERSON_FLIP_INDEX)
    assert flipped[0, 0].tolist() == [34.0, 10.0, 2.0]
    assert flipped[0, 1].tolist() == [38.0, 8.0, 2.0], "left eye = the mirrored right eye"
    assert flipped[0, 2].tolist() == [30.0, 8.0, 2.0]
    assert bool((flipped[0, 3:] == 0).all()), "unlabelled points stay (0, 0, 0)"
    assert person[0, 1, 0] == 34.0, "the input is not modified"
    twice = hflip_keypoints(flipped, 64, COCO_PERSON_FLIP_INDEX)
    assert torch.equal(twice, person)
    with pytest.raises(ValueError, match="permutation"):
        hflip_keypoints(person, 64, [0] * 17)
    with pytest.raises(ValueError, match=r"shape \[17\]"):
        hflip_keypoints(person, 64, [0, 1])
    with pytest.raises(ValueError, match="image_width"):
        hflip_keypoints(person, 0, COCO_PERSON_FLIP_INDEX)


def test_ring_flip_index_matches_the_scenes_flip():
    """The scenes order each ring from its topmost point, clockwise; a mirror keeps the
    topmost point and reverses the direction. Flipping the keypoints with
    ring_flip_index (per class) gives what the data pipeline's flip gives."""
    from torchvision.transforms import v2

    from vizlib.data import KeypointScenes
    from vizlib.data.scenes import KEYPOINT_NAMES, NUM_KEYPOINTS, THING_CLASSES

    assert ring_flip_index(4) == [0, 1, 4, 3, 2]
    assert ring_flip_index(3, 6) == [0, 1, 3, 2, 4, 5]
    assert ring_flip_index(0) == [0]
    with pytest.raises(ValueError, match="num_keypoints"):
        ring_flip_index(5, 4)
    plain_data = KeypointScenes(6, seed=3)
    flipped_data = KeypointScenes(6, seed=3, transforms=v2.RandomHorizontalFlip(p=1.0))
    checked = 0
    for i in range(6):
        (_, t), (_, f) = plain_data[i], flipped_data[i]
        index = torch.tensor(
            [
                ring_flip_index(len(KEYPOINT_NAMES[THING_CLASSES[c - 1]]) - 1, NUM_KEYPOINTS)
                for c in t["labels"].tolist()
            ],
            dtype=torch.int64,
        ).reshape(-1, NUM_KEYPOINTS)
        ours = hflip_keypoints(t["keypoints"], 64, index)
        labelled = f["keypoints"][..., 2] > 0
        assert torch.equal(labelled, ours[..., 2] > 0)
        torch.testing.assert_close(ours[labelled], f["keypoints"][labelled])
        checked += int(labelled.sum())
    assert checked > 20
