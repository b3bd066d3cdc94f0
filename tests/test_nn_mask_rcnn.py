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
    KEYPOINT_LOSS_NAME,
    MASK_RCNN_LOSS_NAMES,
    KeypointHead,
    KeypointPredictor,
    MaskHead,
    MaskPredictor,
    MaskRCNN,
    heatmaps_to_keypoints,
    hflip_keypoints,
    keypoint_loss,
    keypoint_rcnn_loss,
    keypoint_targets,
    mask_loss,
    mask_probabilities,
    mask_rcnn_loss,
    mask_targets,
    multiscale_roi_pool,
    one_hot_heatmaps,
    paste_masks_in_image,
    positive_rois,
    ring_flip_index,
)

SIZE = (64, 64)


@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are tiny: on a busy two-core machine torch's thread pool made the
    training test 20 times slower (22 s against 1.2 s on one thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def test_mask_targets_stay_in_0_1_despite_rounding():
    """RoIAlign of a mask of ones gives 1.0000001 at some fractional boxes (the bilinear
    weights' rounding); the binary cross-entropy would refuse such a target."""
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(500, 2, generator=g) * 40
    boxes = torch.cat([xy, xy + 1 + torch.rand(500, 2, generator=g) * 20], dim=1)
    idx = torch.zeros(500, dtype=torch.int64)
    ones = torch.ones(1, 64, 64, dtype=torch.bool)
    raw = tv.project_masks_on_boxes(ones, boxes, idx, 28)
    assert float(raw.max()) > 1.0, "the case shows the rounding"
    targets = mask_targets(ones, boxes, idx, aligned=False)
    assert float(targets.max()) == 1.0
    logits = torch.zeros(500, 6, 28, 28)
    assert torch.isfinite(mask_loss(logits, torch.ones(500, dtype=torch.int64), targets))


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
    _, visible_only = keypoint_targets(keypoints, rois, 56, min_visibility=2)
    assert torch.equal(visible_only, valid & (keypoints[..., 2] == 2))
    assert int(visible_only.sum()) < int(valid.sum())
    maps = one_hot_heatmaps(index, valid, 56)
    assert maps.shape == (12, 6, 56, 56)
    assert torch.equal(maps.flatten(2).sum(-1), valid.float())
    assert torch.equal(maps.flatten(2).argmax(-1)[valid], index[valid])
    with pytest.raises(ValueError, match=r"\[N, K, 3\]"):
        keypoint_targets(keypoints[..., :2], rois)
    with pytest.raises(ValueError, match="one row per region"):
        keypoint_targets(keypoints, rois[:3])
    with pytest.raises(ValueError, match="min_visibility"):
        keypoint_targets(keypoints, rois, min_visibility=0)


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


# -- the model -------------------------------------------------------------------------


def tiny_model(num_keypoints: int | None = 6, **kwargs) -> MaskRCNN:
    from vizlib.nn.backbone import VGGBackbone
    from vizlib.nn.fpn import FPNBackbone

    backbone = FPNBackbone(VGGBackbone((4, 8, 8, 8), convs_per_stage=1), (1, 2, 3), out_channels=8)
    return MaskRCNN(
        5,
        64,
        backbone=backbone,
        box_head_width=16,
        mask_head_layers=(8, 8),
        mask_dim_reduced=8,
        num_keypoints=num_keypoints,
        keypoint_head_layers=(8, 8),
        rpn_post_nms_top_n=(30, 30),
        box_batch_size_per_image=16,
        **kwargs,
    )


def batch(samples):
    images = torch.stack([im.as_subclass(torch.Tensor) for im, _ in samples])
    keys = ("boxes", "labels", "masks", "keypoints")
    return images, [{k: t[k] for k in keys} for _, t in samples]


def empty_target(k: int = 6):
    return {
        "boxes": torch.zeros(0, 4),
        "labels": torch.zeros(0, dtype=torch.int64),
        "masks": torch.zeros(0, 64, 64, dtype=torch.bool),
        "keypoints": torch.zeros(0, k, 3),
    }


def test_mask_rcnn_trains_and_detects_with_images_without_objects(scenes):
    torch.manual_seed(0)
    model = tiny_model()
    assert model.loss_names == MASK_RCNN_LOSS_NAMES + (KEYPOINT_LOSS_NAME,)
    images, targets = batch(scenes[:2])
    model.train()
    losses = model(images, targets)
    assert tuple(losses) == model.loss_names
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    # an image with no object beside one with objects, then a batch of nothing
    mixed = model(torch.stack([images[0], torch.rand(3, 64, 64)]), [targets[0], empty_target()])
    assert all(torch.isfinite(v) for v in mixed.values())
    nothing = model(torch.rand(2, 3, 64, 64), [empty_target(), empty_target()])
    for name in ("loss_rpn_box_reg", "loss_box_reg", "loss_mask", KEYPOINT_LOSS_NAME):
        assert float(nothing[name].detach()) == 0.0, name
    model.zero_grad()
    sum(nothing.values()).backward()
    for part in (
        model.mask_head,
        model.mask_predictor,
        model.keypoint_head,
        model.keypoint_predictor,
    ):
        assert all(p.grad is not None for p in part.parameters())
    model.eval()
    with torch.no_grad():
        dets = model([images[0], torch.zeros(3, 64, 64)])
    assert len(dets) == 2
    for d in dets:
        n = len(d["boxes"])
        assert set(d) == {"boxes", "labels", "scores", "masks", "keypoints", "keypoints_scores"}
        assert d["masks"].shape == (n, 1, 64, 64) and d["masks"].dtype == torch.float32
        assert bool(((d["masks"] >= 0) & (d["masks"] <= 1)).all())
        assert d["keypoints"].shape == (n, 6, 3) and d["keypoints_scores"].shape == (n, 6)
    # without detections at all (nothing scores above 1): empty but well-shaped outputs
    model.score_thresh = 1.0
    with torch.no_grad():
        none = model(images[:1])[0]
    assert none["masks"].shape == (0, 1, 64, 64) and none["keypoints"].shape == (0, 6, 3)


def test_mask_rcnn_training_targets_follow_the_sampled_positives(scenes):
    torch.manual_seed(1)
    model = tiny_model()
    images, targets = batch(scenes[:2])
    with torch.no_grad():
        features = model.backbone(images)
        proposals, _, _ = model.rpn(features, model.image_size)
        t = model.training_targets(features, proposals, targets)
    for i, target in enumerate(targets):
        pos, idx = t["positive_rois"][i], t["matched_idxs"][i]
        assert len(pos) == int((t["labels"][i] > 0).sum()) > 0
        assert torch.equal(t["positive_labels"][i], target["labels"][idx])
        want = mask_targets(plain(target["masks"]), pos, idx, 28)
        torch.testing.assert_close(t["mask_targets"][i], want)
        want_index, want_valid = keypoint_targets(target["keypoints"][idx], pos, 56)
        assert torch.equal(t["keypoint_targets"][i], want_index)
        assert torch.equal(t["keypoint_valid"][i], want_valid)


def test_mask_rcnn_overfits_two_scenes(scenes):
    """60 steps on one batch: every head's loss falls (on five seeds the mask loss fell to
    0.55 - 0.72 of its start with these 8-channel heads, the class loss to 0.1 - 0.3)."""
    torch.manual_seed(0)
    model = tiny_model()
    images, targets = batch(scenes[:2])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    history = []
    for _ in range(60):
        losses = model(images, targets)
        history.append({k: float(v.detach()) for k, v in losses.items()})
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()

    def mean(name, part):
        return sum(h[name] for h in part) / len(part)

    for name, factor in [
        ("loss_mask", 0.8),
        ("loss_classifier", 0.5),
        (KEYPOINT_LOSS_NAME, 0.75),
    ]:
        first, last = mean(name, history[:3]), mean(name, history[-3:])
        assert last < first * factor, f"{name}: {first:.3f} -> {last:.3f}"


def test_mask_rcnn_checks_its_targets(scenes):
    model = tiny_model()
    model.train()
    images, targets = batch(scenes[:1])
    no_masks = {k: v for k, v in targets[0].items() if k != "masks"}
    with pytest.raises(ValueError, match="masks"):
        model(images, [no_masks])
    with pytest.raises(ValueError, match="image-sized"):
        model(images, [{**targets[0], "masks": targets[0]["masks"][:, :32]}])
    no_keypoints = {k: v for k, v in targets[0].items() if k != "keypoints"}
    with pytest.raises(ValueError, match="keypoints"):
        model(images, [no_keypoints])
    tiny_model(num_keypoints=None)(images, [no_keypoints])  # fine without a keypoint head
    with pytest.raises(ValueError, match="targets"):
        model(images)
    with pytest.raises(ValueError, match="pooler"):
        tiny_model(pooler="max")


def test_roi_pool_variant_pools_each_box_from_its_level():
    from torchvision.ops import roi_pool

    from vizlib.nn.fpn import fpn_levels

    g = torch.Generator().manual_seed(9)
    features = [torch.randn(2, 4, 16, 16), torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 4)]
    proposals = [jittered(torch.tensor([[4.0, 4, 20, 30]] * 5), g, 8.0), torch.zeros(0, 4)]
    proposals[0] = proposals[0].clamp(min=0)
    got = multiscale_roi_pool(
        features, [4, 8, 16], proposals, 7, canonical_size=16, canonical_level=3
    )
    levels = fpn_levels(proposals[0], 2, 4, 16, 3) - 2
    assert len(set(levels.tolist())) > 1, "the case spans levels"
    for j, (box, level) in enumerate(zip(proposals[0], levels.tolist(), strict=True)):
        want = roi_pool(
            features[level], torch.cat([torch.zeros(1), box])[None], 7, 1 / 4 / 2**level
        )
        torch.testing.assert_close(got[j : j + 1], want)
    torch.manual_seed(0)
    model = tiny_model(pooler="pool")
    model.train()
    losses = model(torch.rand(1, 3, 64, 64), [empty_target()])
    assert all(torch.isfinite(v) for v in losses.values())


def test_fit_and_coco_evaluation_take_it_like_torchvisions_mask_and_keypoint_rcnn():
    from vizlib.data import KeypointScenes, collate_detection
    from vizlib.evaluate import evaluate_detection, evaluate_keypoints
    from vizlib.train import fit

    torch.manual_seed(0)
    model = tiny_model()
    loader = torch.utils.data.DataLoader(
        KeypointScenes(4, seed=1), batch_size=2, collate_fn=collate_detection
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    history = fit(model, loader, opt, steps=2, progress="off", seed=0)
    assert set(model.loss_names) <= set(history)
    val = KeypointScenes(3, seed=2)
    result = evaluate_detection(model, val, iou_types=("bbox", "segm"), batch_size=3)
    assert 0.0 <= result.metrics["segm/AP"] <= 1.0
    keypoints = evaluate_keypoints(model, val, batch_size=3)
    assert 0.0 <= keypoints.metrics["keypoints/AP"] <= 1.0


def test_mixed_precision_keeps_losses_and_outputs_in_float32(scenes):
    torch.manual_seed(0)
    model = tiny_model()
    images, targets = batch(scenes[:2])
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(images, targets)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images)[0]
    assert out["masks"].dtype == torch.float32 and out["keypoints"].dtype == torch.float32


def test_inspect_adds_masks_and_the_heads_targets(scenes):
    torch.manual_seed(2)
    model = tiny_model()
    model.train()
    images, targets = batch(scenes[:2])
    info = model.inspect(images, targets)
    assert model.training, "mode restored"
    for d in info["detections"]:
        assert d["masks"].shape == (len(d["boxes"]), 1, 64, 64)
        assert d["keypoints"].shape == (len(d["boxes"]), 6, 3)
    for i, target in enumerate(targets):
        pos, idx = info["positive_rois"][i], info["matched_idxs"][i]
        assert len(pos) == int((info["roi_labels"][i] > 0).sum()) > 0
        assert torch.equal(info["positive_labels"][i], target["labels"][idx])
        assert info["mask_targets"][i].shape == (len(pos), 28, 28)
        assert info["keypoint_targets"][i].shape == info["keypoint_valid"][i].shape == (len(pos), 6)
    assert "mask_targets" not in model.inspect(images)


def _torchvision_twin():
    """torchvision's MaskRCNN with keypoint heads, built like ``tiny_model`` (aspect ratio
    1: torchvision's rounded anchors are then ours exactly; no normalisation)."""
    from torchvision.models.detection import MaskRCNN as TorchvisionMaskRCNN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    from vizlib.nn.backbone import VGGBackbone
    from vizlib.nn.torchvision_detection import PyramidBackbone, _anchor_generator

    backbone = PyramidBackbone(VGGBackbone((4, 8, 8, 8), convs_per_stage=1), (1, 2, 3), 8)
    names = [f"p{s}" for s in backbone.strides]
    model = TorchvisionMaskRCNN(
        backbone,
        min_size=64,
        max_size=64,
        rpn_anchor_generator=_anchor_generator(backbone.strides, (1.0,), (2.0, 4.0)),
        rpn_pre_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_train=30,
        rpn_post_nms_top_n_test=30,
        rpn_batch_size_per_image=128,
        box_batch_size_per_image=16,
        box_roi_pool=MultiScaleRoIAlign(names, 7, 2),
        box_head=TwoMLPHead(8 * 7 * 7, 16),
        box_predictor=FastRCNNPredictor(16, 6),
        mask_roi_pool=MultiScaleRoIAlign(names, 14, 2),
        mask_head=MaskRCNNHeads(8, (8, 8), 1),
        mask_predictor=MaskRCNNPredictor(8, 8, 6),
        image_mean=[0.0] * 3,
        image_std=[1.0] * 3,
    )
    model.roi_heads.keypoint_roi_pool = MultiScaleRoIAlign(names, 14, 2)
    model.roi_heads.keypoint_head = KeypointRCNNHeads(8, (8, 8))
    model.roi_heads.keypoint_predictor = KeypointRCNNPredictor(8, 6)
    return model


def _copy_into_torchvision(ours: MaskRCNN, theirs) -> None:
    """Our weights, under torchvision's names."""
    state = {}
    for name, value in ours.state_dict().items():
        new = name
        for old, repl in [
            ("backbone.neck.lateral.", "backbone.fpn.inner_blocks."),
            ("backbone.neck.output.", "backbone.fpn.layer_blocks."),
        ]:
            if name.startswith(old):
                index, rest = name[len(old) :].split(".", 1)
                new = f"{repl}{index}.0.{rest}"
        new = new.replace("rpn.head.conv.", "rpn.head.conv.0.0.")
        new = new.replace("rpn.head.objectness.", "rpn.head.cls_logits.")
        new = new.replace("rpn.head.deltas.", "rpn.head.bbox_pred.")
        if new.startswith("mask_head.convs."):  # Conv2dNormActivation blocks: one per conv
            index, rest = new[len("mask_head.convs.") :].split(".", 1)
            new = f"mask_head.{int(index) // 2}.0.{rest}"
        new = new.replace("keypoint_head.convs.", "keypoint_head.")
        for head in ("box_head.", "box_predictor.", "mask_", "keypoint_"):
            if new.startswith(head):
                new = "roi_heads." + new
        state[new] = value
    theirs.load_state_dict(state, strict=True)


def test_the_whole_model_equals_torchvisions_mask_rcnn_with_the_same_weights(scenes):
    """With torchvision's conventions (aligned=False targets, its pasting), the same
    weights give the same boxes, masks and keypoints, and the same seed the same six
    losses."""
    torch.manual_seed(0)
    ours = tiny_model(aspect_ratios=(1.0,), mask_aligned_targets=False, paste_mode="torchvision")
    theirs = _torchvision_twin()
    with torch.no_grad():  # random RPN weights, so that the comparison sees something
        for p in ours.rpn.head.parameters():
            p.normal_(0, 0.3)
    _copy_into_torchvision(ours, theirs)
    ours.eval()
    theirs.eval()
    images = [im.as_subclass(torch.Tensor) for im, _ in scenes[:2]]
    with torch.no_grad():
        got, want = ours(images), theirs(images)
    for d, w in zip(got, want, strict=True):
        assert set(d) == set(w) and len(d["boxes"]) > 0
        for key in ("boxes", "scores", "masks", "keypoints", "keypoints_scores"):
            torch.testing.assert_close(d[key], w[key], atol=1e-5, rtol=1e-4)
        assert torch.equal(d["labels"], w["labels"])
    ours.train()
    theirs.train()
    _, targets = batch(scenes[:2])
    targets = [{k: plain(v) for k, v in t.items()} for t in targets]
    torch.manual_seed(3)
    torch.empty(2).uniform_()  # torchvision's transform first draws a size for each image
    got = ours(images, targets)
    torch.manual_seed(3)
    want = theirs(images, targets)
    assert set(got) == set(want) == set(ours.loss_names)
    for name in ours.loss_names:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-4)


def test_torchvisions_model_with_pyramid_roi_align_poolers_is_the_same_model(scenes):
    """PyramidRoIAlign in place of MultiScaleRoIAlign (lessons/mask_rcnn's torchvision model
    on a CPU): the same detections, losses and gradients."""
    import copy

    from vizlib.nn.torchvision_detection import PyramidRoIAlign

    torch.manual_seed(0)
    theirs = _torchvision_twin()
    with torch.no_grad():
        for p in theirs.rpn.head.parameters():
            p.normal_(0, 0.3)
    swapped = copy.deepcopy(theirs)
    names = theirs.roi_heads.box_roi_pool.featmap_names
    swapped.roi_heads.box_roi_pool = PyramidRoIAlign(names, 7, 2)
    swapped.roi_heads.mask_roi_pool = PyramidRoIAlign(names, 14, 2)
    swapped.roi_heads.keypoint_roi_pool = PyramidRoIAlign(names, 14, 2)
    images = [im.as_subclass(torch.Tensor) for im, _ in scenes[:2]]
    theirs.eval()
    swapped.eval()
    with torch.no_grad():
        for d, w in zip(swapped(images), theirs(images), strict=True):
            assert len(w["boxes"]) > 0
            for key in ("boxes", "scores", "masks", "keypoints"):
                torch.testing.assert_close(d[key], w[key], atol=1e-5, rtol=1e-4)
    theirs.train()
    swapped.train()
    _, targets = batch(scenes[:2])
    targets = [{k: plain(v) for k, v in t.items()} for t in targets]
    losses = []
    for model in (swapped, theirs):
        torch.manual_seed(3)
        out = model(images, targets)
        sum(out.values()).backward()
        losses.append(out)
    for name in losses[1]:
        torch.testing.assert_close(losses[0][name], losses[1][name], atol=1e-5, rtol=1e-4)
    for (name, a), b in zip(swapped.named_parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=1e-3, msg=name)
