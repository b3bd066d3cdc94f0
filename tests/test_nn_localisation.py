"""The localisation chapter's models and losses (vizlib.nn.localisation): the multitask
loss against torch's own losses, and a short training run that must learn."""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torchvision
from torch.nn import functional as F

from vizlib.boxes import decode_normalised_cxcywh, encode_normalised_cxcywh
from vizlib.data.localisation import keypoint_data, localisation_data
from vizlib.nn.backbone import VGGBackbone
from vizlib.nn.localisation import (
    KeypointNet,
    LocalisationNet,
    RegressionTrunk,
    keypoint_loss,
    localisation_loss,
)

SIZE = (64, 64)
SMALL = (32, 32)


def small_trunk(hidden: int = 16):
    return RegressionTrunk(VGGBackbone((4, 8, 8), convs_per_stage=1), pooled_size=2, hidden=hidden)


# -- the loss against torch's own ------------------------------------------------------


def test_the_multitask_loss_is_cross_entropy_plus_weighted_mse_or_smooth_l1():
    torch.manual_seed(1)
    logits, labels = torch.randn(8, 6), torch.randint(1, 6, (8,))
    xy = torch.rand(8, 2) * 40
    boxes = torch.cat([xy, xy + 4 + torch.rand(8, 2) * 20], dim=1)
    outputs = {"class_logits": logits, "boxes": torch.rand(8, 4)}
    targets = {"label": labels, "box": boxes}
    codes = encode_normalised_cxcywh(boxes, SIZE)
    # the box coding is torchvision's cxcywh scaled by the image size
    expected_codes = torchvision.ops.box_convert(boxes, "xyxy", "cxcywh") / torch.tensor(
        [64.0, 64, 64, 64]
    )
    torch.testing.assert_close(codes, expected_codes)
    terms = localisation_loss(outputs, targets, SIZE, box_weight=7.0)
    torch.testing.assert_close(terms["classification"], F.cross_entropy(logits, labels))
    # the sum over the four numbers, the mean over the images
    torch.testing.assert_close(terms["box"], 7.0 * 4 * F.mse_loss(outputs["boxes"], codes))
    smooth = localisation_loss(outputs, targets, SIZE, box_weight=2.0, box_loss="smooth_l1")
    torch.testing.assert_close(
        smooth["box"], 2.0 * 4 * F.smooth_l1_loss(outputs["boxes"], codes, beta=1 / 9)
    )
    with pytest.raises(ValueError, match="box_weight"):
        localisation_loss(outputs, targets, SIZE, box_weight=-1.0)


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
    constant = {
        "class_logits": torch.zeros(32, 6),
        "boxes": encode_normalised_cxcywh(fields["box"], SMALL)
        .mean(dim=0, keepdim=True)
        .expand(32, 4),
    }
    baseline = localisation_loss(constant, fields, SMALL)["box"].item()
    model = LocalisationNet(6, small_trunk(32))
    loader = torch.utils.data.DataLoader(
        data.train, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    history = fit(
        model,
        loader,
        torch.optim.Adam(model.parameters(), lr=3e-3),
        steps=60,
        loss_fn=partial(localisation_loss, image_size=SMALL, box_weight=10.0),
        progress="off",
        device="cpu",
        seed=0,
    )
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
    loader = torch.utils.data.DataLoader(
        kp.train, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    fit(
        net,
        loader,
        torch.optim.Adam(net.parameters(), lr=3e-3),
        steps=60,
        progress="off",
        device="cpu",
        loss_fn=lambda out, t: keypoint_loss(out, t["keypoints"], SMALL),
        seed=0,
    )
    net.eval()
    with torch.no_grad():
        last = keypoint_loss(net(kp.train.images), truth, SMALL).item()
    assert last < baseline / 2


def test_the_box_coding_round_trips_on_scenes():
    data = localisation_data(train_images=8, val_images=2, seed=5)
    boxes = data.train.fields["box"]
    torch.testing.assert_close(
        decode_normalised_cxcywh(encode_normalised_cxcywh(boxes, SIZE), SIZE), boxes
    )
