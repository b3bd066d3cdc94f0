"""The localisation chapter's library: its data (one thing per scene, one class's
keypoints), its scores (accuracy, IoU, PCK), the multitask loss against torch's own
losses, the sliding-window count, and a short training run that must learn."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
import torchvision
from torch.nn import functional as F

from vizlib.data import DataNotFoundError
from vizlib.data.scenes import KEYPOINT_NAMES, SceneConfig, make_scene
from vizlib.metrics import pck
from vizlib.nn.backbone import VGGBackbone
from vizlib.nn.localisation import (
    KeypointNet,
    LocalisationNet,
    RegressionTrunk,
    TensorSamples,
    count_windows,
    decode_box,
    encode_box,
    keypoint_data,
    keypoint_loss,
    keypoint_scores,
    localisation_data,
    localisation_loss,
    localisation_scores,
    paired_box_iou,
)

SIZE = (64, 64)
SMALL = (32, 32)


def small_trunk(hidden: int = 16):
    return RegressionTrunk(VGGBackbone((4, 8, 8), convs_per_stage=1), pooled_size=2, hidden=hidden)


# -- data -------------------------------------------------------------------------------


def test_localisation_data_is_one_thing_per_scene_and_deterministic():
    data = localisation_data(train_images=6, val_images=4, seed=3)
    assert len(data.train) == 6 and len(data.val) == 4 and data.source == "scenes"
    assert data.class_names[0] == "background" and len(data.class_names) == 6
    image, target = data.train[2]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert target["label"].dtype == torch.int64 and 1 <= int(target["label"]) <= 5
    # the box is the generator's (the tight box of the visible mask) of that very scene
    scene = make_scene(4, 2, SceneConfig(), num_objects=1)
    assert len(scene.labels) == 1
    assert torch.equal(target["box"], torch.from_numpy(scene.boxes[0]).float())
    assert int(target["label"]) == int(scene.labels[0])
    again = localisation_data(train_images=6, val_images=4, seed=3)
    assert torch.equal(again.train.images, data.train.images)
    assert not torch.equal(data.train.images[:4], data.val.images), "train and validation differ"
    batch = next(iter(torch.utils.data.DataLoader(data.train, batch_size=4)))
    assert batch[0].shape == (4, 3, 64, 64) and batch[1]["box"].shape == (4, 4)


def test_keypoint_data_holds_one_class_and_its_keypoints():
    data = keypoint_data("star", train_images=5, val_images=3, seed=0)
    assert data.keypoint_names == KEYPOINT_NAMES["star"] and len(data.keypoint_names) == 6
    image, target = data.train[0]
    assert target["keypoints"].shape == (6, 3) and target["box"].shape == (4,)
    kp = data.train.fields["keypoints"]  # [N, 6, 3]
    boxes = data.train.fields["box"]
    inside = kp[..., 2] > 0
    # labelled keypoints lie in their thing's box (a point sits inside its tip)
    x, y = kp[..., 0], kp[..., 1]
    in_box = (x >= boxes[:, None, 0] - 1) & (x <= boxes[:, None, 2] + 1) & \
        (y >= boxes[:, None, 1] - 1) & (y <= boxes[:, None, 3] + 1)
    assert bool(in_box[inside].all())
    # the ring starts at the topmost tip
    for i in range(len(kp)):
        if bool(inside[i].all()):
            assert float(kp[i, 1, 1]) <= float(kp[i, 2:, 1].min()) + 1e-4
    rect = keypoint_data("rectangle", train_images=2, val_images=1)
    assert rect.train.fields["keypoints"].shape == (2, 5, 3)


def test_data_rejects_bad_arguments_and_voc_fails_offline_with_a_message(tmp_path):
    with pytest.raises(ValueError, match="source"):
        localisation_data("coco")
    with pytest.raises(ValueError, match="train_images"):
        localisation_data(train_images=0)
    with pytest.raises(ValueError, match="download"):
        localisation_data(download="yes")
    with pytest.raises(ValueError, match="thing"):
        keypoint_data("person")
    with pytest.raises(DataNotFoundError, match="download=True"):
        localisation_data("voc", root=tmp_path, train_images=4, val_images=4)
    with pytest.raises(ValueError, match="box"):
        TensorSamples(torch.rand(3, 3, 8, 8), box=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="images"):
        TensorSamples(torch.rand(3, 8, 8), box=torch.zeros(3, 4))


def test_tensor_samples_subset_and_repr():
    data = TensorSamples(torch.rand(5, 3, 8, 8), label=torch.arange(5), box=torch.rand(5, 4))
    part = data.subset([4, 1])
    assert len(part) == 2 and part.fields["label"].tolist() == [4, 1]
    assert torch.equal(part.images[0], data.images[4])
    assert "5 images" in repr(data)


# -- the loss against torch's own ------------------------------------------------------


def test_the_multitask_loss_is_cross_entropy_plus_weighted_mse_or_smooth_l1():
    torch.manual_seed(1)
    logits, labels = torch.randn(8, 6), torch.randint(1, 6, (8,))
    xy = torch.rand(8, 2) * 40
    boxes = torch.cat([xy, xy + 4 + torch.rand(8, 2) * 20], dim=1)
    outputs = {"class_logits": logits, "boxes": torch.rand(8, 4)}
    targets = {"label": labels, "box": boxes}
    codes = encode_box(boxes, SIZE)
    # encode_box is torchvision's cxcywh scaled by the image size
    expected_codes = torchvision.ops.box_convert(boxes, "xyxy", "cxcywh") / torch.tensor([64.0, 64, 64, 64])
    torch.testing.assert_close(codes, expected_codes)
    terms = localisation_loss(outputs, targets, SIZE, box_weight=7.0)
    torch.testing.assert_close(terms["classification"], F.cross_entropy(logits, labels))
    # the sum over the four numbers, the mean over the images
    torch.testing.assert_close(terms["box"], 7.0 * 4 * F.mse_loss(outputs["boxes"], codes))
    smooth = localisation_loss(outputs, targets, SIZE, box_weight=2.0, box_loss="smooth_l1")
    torch.testing.assert_close(smooth["box"], 2.0 * 4 * F.smooth_l1_loss(outputs["boxes"], codes, beta=1 / 9))
    with pytest.raises(ValueError, match="box_weight"):
        localisation_loss(outputs, targets, SIZE, box_weight=-1.0)


# -- scores -------------------------------------------------------------------------------


def test_paired_iou_is_the_diagonal_of_torchvision_box_iou():
    torch.manual_seed(2)
    xy = torch.rand(20, 2) * 50
    a = torch.cat([xy, xy + torch.rand(20, 2) * 20], dim=1)
    xy = torch.rand(20, 2) * 50
    b = torch.cat([xy, xy + torch.rand(20, 2) * 20], dim=1)
    torch.testing.assert_close(paired_box_iou(a, b), torchvision.ops.box_iou(a, b).diagonal())
    zero = torch.tensor([[5.0, 5.0, 5.0, 5.0]])
    assert paired_box_iou(zero, zero).item() == 0.0, "IoU with a zero-area box is 0, not NaN"
    with pytest.raises(ValueError, match="same N"):
        paired_box_iou(a, b[:3])


class _Oracle(torch.nn.Module):
    """Answers from a table of the true labels and boxes (image i is filled with i)."""

    def __init__(self, labels, boxes, num_classes=6):
        super().__init__()
        self.labels, self.boxes, self.num_classes = labels, boxes, num_classes
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def predict(self, images):
        idx = images[:, 0, 0, 0].long()
        return {"labels": self.labels[idx], "scores": torch.ones(len(idx)), "boxes": self.boxes[idx]}


def test_localisation_scores_count_class_iou_and_the_ilsvrc_rule():
    images = torch.arange(4.0)[:, None, None, None].expand(4, 3, 8, 8).clone()
    boxes = torch.tensor([[0.0, 0, 4, 4]] * 4)
    data = TensorSamples(images, label=torch.tensor([1, 2, 3, 4]), box=boxes)
    predicted = torch.tensor([[0.0, 0, 4, 4], [0.0, 0, 4, 2], [0.0, 0, 4, 4], [4.0, 4, 8, 8]])
    oracle = _Oracle(torch.tensor([1, 2, 5, 4]), predicted).train()
    scores = localisation_scores(oracle, data, batch_size=3)
    assert scores["accuracy"] == 0.75
    assert math.isclose(scores["mean_iou"], (1 + 0.5 + 1 + 0) / 4)
    # right class and IoU >= 0.5: images 0 and 1 (IoU exactly 0.5 counts)
    assert scores["correct"] == 0.5
    assert scores["iou"].shape == (4,) and scores["boxes"].shape == (4, 4)
    assert oracle.training, "the model's mode is kept"
    with pytest.raises(ValueError, match="data"):
        localisation_scores(oracle, TensorSamples(images, keypoints=torch.zeros(4, 2, 3)))


class _KeypointOracle(torch.nn.Module):
    def __init__(self, points):
        super().__init__()
        self.points = points
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def predict(self, images):
        return self.points[images[:, 0, 0, 0].long()]


def test_keypoint_scores_agree_with_vizlib_pck_and_normalise_by_the_box():
    images = torch.arange(3.0)[:, None, None, None].expand(3, 3, 8, 8).clone()
    truth = torch.tensor([[[10.0, 10, 2], [20, 10, 2]],
                          [[30.0, 30, 2], [40, 30, 0]],
                          [[5.0, 5, 2], [6, 6, 2]]])
    boxes = torch.tensor([[0.0, 0, 20, 10], [20, 20, 40, 40], [0, 0, 10, 10]])  # sizes 20, 20, 10
    pred = truth[..., :2].clone()
    pred[0, 0, 0] += 5.0  # 0.25 of 20: wrong at 0.2, right at 0.3
    pred[1, 1] = torch.tensor([0.0, 0.0])  # unlabelled: not scored
    pred[2, 1, 1] += 2.0  # 0.2 of 10: exactly at the threshold, right
    data = TensorSamples(images, keypoints=truth, box=boxes)
    model = _KeypointOracle(pred)
    scores = keypoint_scores(model, data, threshold=0.2)
    assert math.isclose(scores["pck"], 4 / 5)
    assert math.isclose(scores["pck"], pck(pred, truth, 0.2, torch.tensor([20.0, 20, 10])).mean)
    assert torch.allclose(scores["image_pck"], torch.tensor([0.5, 1.0, 1.0]))
    assert math.isclose(float(scores["distance"][0, 0]), 0.25)
    assert keypoint_scores(model, data, threshold=0.3)["pck"] == 1.0
    with pytest.raises(ValueError, match="threshold"):
        keypoint_scores(model, data, threshold=2.0)


# -- sliding windows ----------------------------------------------------------------------


def _windows_by_unfold(height, width, h, w, stride):
    """Count the crops by making them: torch's unfold cuts every window out."""
    image = torch.zeros(1, 1, height, width)
    if h > height or w > width:
        return 0
    return F.unfold(image, (h, w), stride=stride).shape[-1]


@pytest.mark.parametrize(("size", "window", "stride"), [
    ((8, 8), (4, 4), 4), ((8, 8), (4, 4), 1), ((6, 10), (2, 4), 2), ((64, 48), (16, 32), 3),
    ((9, 9), (9, 9), 5), ((8, 8), (9, 4), 1)])
def test_count_windows_agrees_with_unfold(size, window, stride):
    assert count_windows(size, [window], stride) == _windows_by_unfold(*size, *window, stride)


def test_count_windows_adds_sizes_and_validates():
    assert count_windows((64, 64), [(16, 16), (32, 32)], 4) == 13 * 13 + 9 * 9
    with pytest.raises(ValueError, match="stride"):
        count_windows((64, 64), [(16, 16)], 0)
    with pytest.raises(ValueError, match="window_sizes"):
        count_windows((64, 64), 16, 4)
    with pytest.raises(ValueError, match="image_size"):
        count_windows((64,), [(16, 16)], 4)


# -- they learn ----------------------------------------------------------------------------


@pytest.fixture
def one_thread():
    """Tiny models train faster on one thread; on a loaded 2-core machine two threads
    spin against each other (13 s instead of 1.5 s for this test)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_short_training_learns_boxes_and_keypoints(one_thread):
    """A few dozen steps on a few dozen scenes: the errors fall well below those of the
    best answer that ignores the image (the mean training box, the mean keypoints), so
    the heads read the pixels."""
    from vizlib.train import fit

    torch.manual_seed(0)
    data = localisation_data(image_size=32, train_images=32, val_images=4, seed=0)  # 32 px: fast
    fields = data.train.fields
    constant = {"class_logits": torch.zeros(32, 6),
                "boxes": encode_box(fields["box"], SMALL).mean(dim=0, keepdim=True).expand(32, 4)}
    baseline = localisation_loss(constant, fields, SMALL)["box"].item()
    model = LocalisationNet(6, small_trunk(32))
    loader = torch.utils.data.DataLoader(data.train, batch_size=16, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    history = fit(model, loader, torch.optim.Adam(model.parameters(), lr=3e-3), steps=60,
                  loss_fn=partial(localisation_loss, image_size=SMALL, box_weight=10.0),
                  progress="off", device="cpu", seed=0)
    assert set(history.terms) == {"classification", "box"}
    model.eval()
    with torch.no_grad():
        after = localisation_loss(model(data.train.images), fields, SMALL)["box"].item()
    assert after < baseline / 2

    kp = keypoint_data(image_size=32, train_images=32, val_images=4, seed=0)
    truth = kp.train.fields["keypoints"]
    codes = truth[..., :2] / 32.0
    labelled = (truth[..., 2:] > 0).float()
    mean_points = (codes * labelled).sum(dim=0) / labelled.sum(dim=0)  # [K, 2]
    baseline = keypoint_loss(mean_points.expand(32, -1, -1), truth, SMALL).item()
    net = KeypointNet(6, small_trunk(32))
    loader = torch.utils.data.DataLoader(kp.train, batch_size=16, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    fit(net, loader, torch.optim.Adam(net.parameters(), lr=3e-3), steps=60, progress="off", device="cpu",
        loss_fn=lambda out, t: keypoint_loss(out, t["keypoints"], SMALL), seed=0)
    net.eval()
    with torch.no_grad():
        last = keypoint_loss(net(kp.train.images), truth, SMALL).item()
    assert last < baseline / 2


def test_decode_box_inverts_encode_box_on_scenes():
    data = localisation_data(train_images=8, val_images=2, seed=5)
    boxes = data.train.fields["box"]
    torch.testing.assert_close(decode_box(encode_box(boxes, SIZE), SIZE), boxes)
