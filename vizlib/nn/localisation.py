"""Classification + localisation, and keypoints, as plain regression from one image.

When an image holds exactly one object, "where is it?" has a fixed-size answer: four
numbers for its box, or ``2 K`` numbers for ``K`` keypoints. A classification network
then only needs a second head that regresses those numbers (the localisation entries of
ILSVRC; DeepPose, Toshev & Szegedy, 2014, for human pose):

::

    image -> backbone -> pooled to p x p -> shared FC -> box head:   4 numbers  (L2 loss)
                      \\-> global average ------------+-> class head: C scores   (softmax loss)

The class head reads the shared FC *and* the global average of the backbone's map. The
flattened ``p x p`` grid keeps where each feature was, which the box needs; but a class
read from it alone must be learnt separately at each of the ``p * p`` positions. The
global average is the same wherever the thing is, which is what "what" needs (the global
average pooling of Network in Network, GoogLeNet and ResNet).

* :class:`RegressionTrunk`: a small VGG backbone (:class:`~vizlib.nn.backbone.VGGBackbone`),
  pooled to a fixed ``p x p`` grid and flattened (so the FC layer still knows *where*
  each feature was: a global average would throw the position away), then one fully
  connected layer shared by every head;
* :class:`LocalisationNet`: the trunk, a class head and a box head;
* :class:`KeypointNet`: the trunk and a head of ``2 K`` coordinates (DeepPose's first stage);
* the heads' targets are coordinates as fractions of the image size, so that every
  target is a number of order 1 whatever the image size, and the losses' scales do not
  depend on it: boxes through :func:`vizlib.boxes.encode_normalised_cxcywh` (the box
  codings' one home), keypoints through :func:`encode_keypoints`;
* :func:`localisation_loss`: the multitask loss (cross-entropy + weighted L2 or smooth L1,
  :func:`vizlib.losses.multitask_loss`), :func:`keypoint_loss`: L2 over labelled keypoints.

The chapter's data is in :mod:`vizlib.data.localisation` (``localisation_data``,
``keypoint_data``), its scores in :mod:`vizlib.evaluate.localisation`
(``localisation_scores``, ``keypoint_scores``).

Labels follow the book's convention: 0 is background, objects are ``1 .. C - 1``; with one
object per image the background class is never the answer, but keeping it makes the class
index the same in every chapter.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import (
    as_image_batch,
    as_keypoints,
    check_choice,
    check_image_batch,
    check_image_size,
    check_positive_int,
)
from ..boxes import decode_normalised_cxcywh, encode_normalised_cxcywh
from ..losses import BOX_LOSSES, multitask_loss
from .backbone import VGGBackbone

__all__ = [
    "RegressionTrunk",
    "LocalisationNet",
    "KeypointNet",
    "encode_keypoints",
    "decode_keypoints",
    "localisation_loss",
    "keypoint_loss",
    "DEFAULT_TRUNK_CHANNELS",
]

#: Channels of the default backbone's four stages (output stride 16).
DEFAULT_TRUNK_CHANNELS = (16, 32, 64, 128)


# -- keypoint codings --------------------------------------------------------------------


def encode_keypoints(keypoints, image_size) -> torch.Tensor:
    """Keypoints as the keypoint head predicts them: ``(x / W, y / H)``.

    Args:
        keypoints (Tensor[N, K, 2 or 3]): ``(x, y[, visibility])`` in pixels.
        image_size (tuple[int, int]): ``(height, width)``.

    Returns:
        Tensor[N, K, 2]: coordinates as fractions of the image size.
    """
    height, width = check_image_size("image_size", image_size)
    k = as_keypoints("keypoints", keypoints)
    return k[..., :2] / k.new_tensor([width, height])  # [N, K, 2]


def decode_keypoints(codes, image_size) -> torch.Tensor:
    """The inverse of :func:`encode_keypoints`.

    Args:
        codes (Tensor[N, K, 2]): ``(x / W, y / H)``.
        image_size (tuple[int, int]): ``(height, width)``.

    Returns:
        Tensor[N, K, 2]: ``(x, y)`` in pixels.
    """
    height, width = check_image_size("image_size", image_size)
    c = as_keypoints("codes", codes, (2,))
    return c * c.new_tensor([width, height])  # [N, K, 2]


# -- the networks -----------------------------------------------------------------------


class RegressionTrunk(nn.Module):
    """Backbone, pooled to a fixed grid, flattened, one shared fully connected layer.

    Args:
        backbone (nn.Module, optional): returns a list of feature maps (the last is used)
            and has ``out_channels``; default ``VGGBackbone(DEFAULT_TRUNK_CHANNELS,
            convs_per_stage=1)`` (output stride 16).
        pooled_size (int): the feature map is average-pooled to ``pooled_size x
            pooled_size`` (``nn.AdaptiveAvgPool2d``, as VGG's classifier does), so any
            image size gives the same number of features. 1 would be a global average,
            which forgets where things are.
        hidden (int): width of the shared fully connected layer.
        dropout (float): dropout after it (0: none).

    Shape:
        ``[N, 3, H, W] -> [N, hidden]``.
    """

    def __init__(
        self,
        backbone: nn.Module | None = None,
        pooled_size: int = 4,
        hidden: int = 256,
        dropout: float = 0.0,
    ):
        super().__init__()
        if backbone is None:
            backbone = VGGBackbone(DEFAULT_TRUNK_CHANNELS, convs_per_stage=1)
        if not hasattr(backbone, "out_channels"):
            raise ValueError(
                "backbone must have an out_channels attribute (the channels of its last map)"
            )
        pooled_size = check_positive_int("pooled_size", pooled_size)
        hidden = check_positive_int("hidden", hidden)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.backbone = backbone
        self.pool = nn.AdaptiveAvgPool2d(pooled_size)
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(backbone.out_channels * pooled_size**2, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
        )
        self.hidden = hidden
        self.out_channels = backbone.out_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)[1]

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone's last map ``[N, C, h, w]`` and the shared features ``[N, hidden]``."""
        check_image_batch(images)
        features = self.backbone(images)
        last = features[-1] if isinstance(features, (list, tuple)) else features  # [N, C, h, w]
        return last, self.fc(self.pool(last))  # [N, hidden]


class LocalisationNet(nn.Module):
    """Classification + localisation: one trunk, a class head and a box head.

    Args:
        num_classes (int): class scores per image, background (0) included.
        trunk (RegressionTrunk, optional): the shared part; default ``RegressionTrunk()``.

    The class head reads ``[shared FC, global average of the backbone's map]``
    (``hidden + C`` numbers), the box head the shared FC alone.

    Shape:
        ``forward(images [N, 3, H, W])`` returns a dict: ``"class_logits"`` ``[N,
        num_classes]`` and ``"boxes"`` ``[N, 4]``, box codings (see :func:`vizlib.boxes.encode_normalised_cxcywh`).
    """

    def __init__(self, num_classes: int, trunk: RegressionTrunk | None = None):
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.trunk = RegressionTrunk() if trunk is None else trunk
        # the class reads the shared FC and the global average of the map (see the module docstring)
        self.class_head = nn.Linear(self.trunk.hidden + self.trunk.out_channels, self.num_classes)
        self.box_head = nn.Linear(self.trunk.hidden, 4)
        # Start from the average answer (a box in the middle, a third of the image wide)
        # rather than from random numbers: the first steps then refine a box instead of
        # chasing one across the image.
        nn.init.normal_(self.box_head.weight, std=1e-3)
        with torch.no_grad():
            self.box_head.bias.copy_(torch.tensor([0.5, 0.5, 0.3, 0.3]))

    def forward(self, images) -> dict[str, torch.Tensor]:
        last, shared = self.trunk.features(as_image_batch(images))  # [N, C, h, w], [N, hidden]
        average = last.mean(dim=(2, 3))  # [N, C]: the same wherever the thing is
        return {
            "class_logits": self.class_head(torch.cat([shared, average], dim=1)),
            "boxes": self.box_head(shared),
        }

    @torch.no_grad()
    def predict(self, images) -> dict[str, torch.Tensor]:
        """Labels, their probabilities and pixel boxes (the model's mode is kept).

        Returns:
            dict: ``"labels"`` ``[N]`` int64 (argmax over the classes but background),
            ``"scores"`` ``[N]`` (softmax probability of that label), ``"boxes"`` ``[N, 4]``
            xyxy pixels.
        """
        batch = as_image_batch(images)
        out = self(batch)
        probs = out["class_logits"].softmax(dim=1)  # [N, C]
        # one object per image, so the answer is never "background"
        scores, labels = probs[:, 1:].max(dim=1)
        return {
            "labels": labels + 1,
            "scores": scores,
            "boxes": decode_normalised_cxcywh(out["boxes"], batch.shape[-2:]),
        }


class KeypointNet(nn.Module):
    """Keypoints as regression (DeepPose's first stage): one trunk, a ``2 K`` head.

    Args:
        num_keypoints (int): ``K``.
        trunk (RegressionTrunk, optional): default ``RegressionTrunk()``.

    Shape:
        ``forward(images [N, 3, H, W])`` returns ``[N, K, 2]`` keypoint codings
        (see :func:`encode_keypoints`).
    """

    def __init__(self, num_keypoints: int, trunk: RegressionTrunk | None = None):
        super().__init__()
        self.num_keypoints = check_positive_int("num_keypoints", num_keypoints)
        self.trunk = RegressionTrunk() if trunk is None else trunk
        self.head = nn.Linear(self.trunk.hidden, 2 * self.num_keypoints)
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.constant_(self.head.bias, 0.5)  # every point starts at the image centre

    def forward(self, images) -> torch.Tensor:
        shared = self.trunk(as_image_batch(images))  # [N, hidden]
        return self.head(shared).reshape(-1, self.num_keypoints, 2)  # [N, K, 2]

    @torch.no_grad()
    def predict(self, images) -> torch.Tensor:
        """Keypoints in pixels, ``[N, K, 2]``."""
        batch = as_image_batch(images)
        return decode_keypoints(self(batch), batch.shape[-2:])


# -- losses -----------------------------------------------------------------------------


def localisation_loss(
    outputs: dict, targets: dict, image_size, box_weight: float = 1.0, box_loss: str = "l2"
) -> dict[str, torch.Tensor]:
    """The multitask loss of classification + localisation.

    ``cross_entropy(class_logits, label) + box_weight * box term``, where the box term is
    the squared error (``"l2"``) or smooth L1 of the four box codings, summed over the
    four numbers and averaged over the images (:func:`vizlib.losses.multitask_loss`).
    The two terms have different units (nats against squared fractions of the image),
    so ``box_weight`` sets how much one pixel of box error is worth against one
    misclassification: 0 trains a classifier only, a very large weight a box regressor
    that ignores the class.

    Args:
        outputs (dict): from :class:`LocalisationNet`: ``"class_logits"`` ``[N, C]``,
            ``"boxes"`` ``[N, 4]`` codings.
        targets (dict): ``"label"`` ``[N]`` int64 (1 .. C - 1) and ``"box"`` ``[N, 4]``
            xyxy pixels (a batch of ``vizlib.data.localisation.localisation_data``'s sets, or of
            ``vizlib.data.LocalisationScenes``).
        image_size (tuple[int, int]): ``(height, width)`` of the images.
        box_weight (float): weight of the box term, >= 0.
        box_loss (str): ``"l2"`` (the lecture's choice) or ``"smooth_l1"`` (Fast R-CNN's,
            with ``beta = 1/9``: less pulled by a few very wrong boxes).

    Returns:
        dict[str, Tensor]: scalars ``"classification"`` and ``"box"`` (already multiplied
        by ``box_weight``); their sum is the loss to minimise.
    """
    if not isinstance(outputs, dict) or not {"class_logits", "boxes"} <= set(outputs):
        raise ValueError(
            "outputs must be a dict with 'class_logits' and 'boxes' (LocalisationNet's output)"
        )
    if not isinstance(targets, dict) or not {"label", "box"} <= set(targets):
        raise ValueError(
            "targets must be a dict with 'label' [N] and 'box' [N, 4] (a batch of "
            "LocalisationScenes targets)"
        )
    check_choice("box_loss", box_loss, BOX_LOSSES)
    boxes = targets["box"]
    boxes = boxes.as_subclass(torch.Tensor) if isinstance(boxes, torch.Tensor) else boxes
    box_targets = encode_normalised_cxcywh(boxes, image_size)  # [N, 4]
    labels = targets["label"]
    labels = (
        labels.as_subclass(torch.Tensor).reshape(-1) if isinstance(labels, torch.Tensor) else labels
    )
    terms = multitask_loss(
        outputs["class_logits"],
        labels,
        outputs["boxes"],
        box_targets,
        box_weight=box_weight,
        box_loss=box_loss,
    )
    return {"classification": terms["classification"], "box": box_weight * terms["box_regression"]}


def keypoint_loss(predicted, keypoints, image_size) -> torch.Tensor:
    """DeepPose's L2 loss: squared distance between predicted and true keypoint codings.

    Only labelled keypoints (visibility ``v > 0``) count: a point outside the image has
    no position to learn. The squared distances are summed over the keypoints of each
    image and averaged over the images.

    Args:
        predicted (Tensor[N, K, 2]): keypoint codings from :class:`KeypointNet`.
        keypoints (Tensor[N, K, 3]): true ``(x, y, v)`` in pixels.
        image_size (tuple[int, int]): ``(height, width)``.

    Returns:
        Tensor: the scalar loss.
    """
    pred = as_keypoints("predicted", predicted, (2,))
    truth = as_keypoints("keypoints", keypoints, (3,))
    if pred.shape[:2] != truth.shape[:2]:
        raise ValueError(
            f"predicted [N, K, 2] and keypoints [N, K, 3] must agree on N and K, got "
            f"{tuple(pred.shape)} and {tuple(truth.shape)}"
        )
    target = encode_keypoints(truth, image_size)  # [N, K, 2]
    labelled = (truth[..., 2] > 0).to(pred.dtype)  # [N, K]
    squared = ((pred - target) ** 2).sum(dim=-1)  # [N, K]
    return (squared * labelled).sum() / max(len(pred), 1)
