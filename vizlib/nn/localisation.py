"""Classification + localisation, and keypoints, as plain regression from one image.

When an image holds exactly one object, "where is it?" has a fixed-size answer: four
numbers for its box, or ``2 K`` numbers for ``K`` keypoints. A classification network
then only needs a second head that regresses those numbers (the localisation entries of
ILSVRC; DeepPose, Toshev & Szegedy, 2014, for human pose):

::

    image -> backbone -> pooled features -> shared FC -> class head: C scores   (softmax loss)
                                                     \\-> box head:   4 numbers  (L2 loss)

* :class:`RegressionTrunk`: a small VGG backbone (:class:`~vizlib.nn.backbone.VGGBackbone`),
  pooled to a fixed ``p x p`` grid and flattened (so the FC layer still knows *where*
  each feature was: a global average would throw the position away), then one fully
  connected layer shared by every head;
* :class:`LocalisationNet`: the trunk, a class head and a box head;
* :class:`KeypointNet`: the trunk and a head of ``2 K`` coordinates (DeepPose's first stage);
* box and keypoint *codings*: the heads predict coordinates as fractions of the image
  size (:func:`encode_box`, :func:`encode_keypoints`), so that every target is a number
  of order 1 whatever the image size, and the losses' scales do not depend on it;
* :func:`localisation_loss`: the multitask loss (cross-entropy + weighted L2 or smooth L1,
  :func:`vizlib.losses.multitask_loss`), :func:`keypoint_loss`: L2 over labelled keypoints.

Labels follow the book's convention: 0 is background, objects are ``1 .. C - 1``; with one
object per image the background class is never the answer, but keeping it makes the class
index the same in every chapter.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import as_float_tensor, check_positive_int
from ..boxes import _check_image_size, box_convert
from ..losses import BOX_LOSSES, multitask_loss
from .backbone import VGGBackbone
from .blocks import check_image_batch

__all__ = [
    "RegressionTrunk",
    "LocalisationNet",
    "KeypointNet",
    "encode_box",
    "decode_box",
    "encode_keypoints",
    "decode_keypoints",
    "localisation_loss",
    "keypoint_loss",
    "DEFAULT_TRUNK_CHANNELS",
]

#: Channels of the default backbone's four stages (output stride 16).
DEFAULT_TRUNK_CHANNELS = (16, 32, 64, 128)


# -- codings ----------------------------------------------------------------------------


def encode_box(boxes, image_size) -> torch.Tensor:
    """Boxes as the box head predicts them: centre and size as fractions of the image.

    Args:
        boxes (Tensor[N, 4]): ``(x1, y1, x2, y2)`` in pixels.
        image_size (tuple[int, int]): ``(height, width)``.

    Returns:
        Tensor[N, 4]: ``(cx / W, cy / H, w / W, h / H)``; a box inside the image has
        every number in [0, 1].
    """
    height, width = _check_image_size("image_size", image_size)
    centre_size = box_convert(boxes, "xyxy", "cxcywh")  # [N, 4]
    scale = centre_size.new_tensor([width, height, width, height])  # [4]
    return centre_size / scale


def decode_box(codes, image_size) -> torch.Tensor:
    """The inverse of :func:`encode_box`: box-head outputs to pixel boxes.

    A regression head may output a negative width or height; it is clamped to 0, so
    every decoded box is valid (a zero-area box has IoU 0 with anything).

    Args:
        codes (Tensor[N, 4]): ``(cx / W, cy / H, w / W, h / H)``.
        image_size (tuple[int, int]): ``(height, width)``.

    Returns:
        Tensor[N, 4]: ``(x1, y1, x2, y2)`` in pixels.
    """
    height, width = _check_image_size("image_size", image_size)
    c = as_float_tensor("codes", codes)
    if c.dim() != 2 or c.shape[1] != 4:
        raise ValueError(f"codes must have shape [N, 4] (cx, cy, w, h), got {tuple(c.shape)}")
    scale = c.new_tensor([width, height, width, height])  # [4]
    centre_size = c * scale  # [N, 4]
    centre_size = torch.cat([centre_size[:, :2], centre_size[:, 2:].clamp(min=0)], dim=1)
    return box_convert(centre_size, "cxcywh", "xyxy")


def _check_keypoints(name: str, keypoints, coords: tuple[int, ...]) -> torch.Tensor:
    k = as_float_tensor(name, keypoints)
    if k.dim() != 3 or k.shape[-1] not in coords:
        want = " or ".join(str(c) for c in coords)
        raise ValueError(f"{name} must have shape [N, K, {want}], got {tuple(k.shape)}")
    return k


def encode_keypoints(keypoints, image_size) -> torch.Tensor:
    """Keypoints as the keypoint head predicts them: ``(x / W, y / H)``.

    Args:
        keypoints (Tensor[N, K, 2 or 3]): ``(x, y[, visibility])`` in pixels.
        image_size (tuple[int, int]): ``(height, width)``.

    Returns:
        Tensor[N, K, 2]: coordinates as fractions of the image size.
    """
    height, width = _check_image_size("image_size", image_size)
    k = _check_keypoints("keypoints", keypoints, (2, 3))
    return k[..., :2] / k.new_tensor([width, height])  # [N, K, 2]


def decode_keypoints(codes, image_size) -> torch.Tensor:
    """The inverse of :func:`encode_keypoints`.

    Args:
        codes (Tensor[N, K, 2]): ``(x / W, y / H)``.
        image_size (tuple[int, int]): ``(height, width)``.

    Returns:
        Tensor[N, K, 2]: ``(x, y)`` in pixels.
    """
    height, width = _check_image_size("image_size", image_size)
    c = _check_keypoints("codes", codes, (2,))
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

    def __init__(self, backbone: nn.Module | None = None, pooled_size: int = 4, hidden: int = 256,
                 dropout: float = 0.0):
        super().__init__()
        if backbone is None:
            backbone = VGGBackbone(DEFAULT_TRUNK_CHANNELS, convs_per_stage=1)
        if not hasattr(backbone, "out_channels"):
            raise ValueError("backbone must have an out_channels attribute (the channels of its last map)")
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

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_image_batch(images)
        features = self.backbone(images)
        last = features[-1] if isinstance(features, (list, tuple)) else features  # [N, C, h, w]
        return self.fc(self.pool(last))  # [N, hidden]


def _as_batch(images) -> torch.Tensor:
    """A list of same-size ``[3, H, W]`` images (what a detection loader gives) as one batch."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("images is an empty list")
        shapes = {tuple(im.shape) for im in images}
        if len(shapes) != 1:
            raise ValueError(f"images must all have the same size to be batched, got {sorted(shapes)}")
        images = torch.stack([im.as_subclass(torch.Tensor) for im in images])
    elif isinstance(images, torch.Tensor):
        images = images.as_subclass(torch.Tensor)
    return check_image_batch(images)


class LocalisationNet(nn.Module):
    """Classification + localisation: one trunk, a class head and a box head.

    Args:
        num_classes (int): class scores per image, background (0) included.
        trunk (RegressionTrunk, optional): the shared part; default ``RegressionTrunk()``.

    Shape:
        ``forward(images [N, 3, H, W])`` returns a dict: ``"class_logits"`` ``[N,
        num_classes]`` and ``"boxes"`` ``[N, 4]``, box codings (see :func:`encode_box`).
    """

    def __init__(self, num_classes: int, trunk: RegressionTrunk | None = None):
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.trunk = RegressionTrunk() if trunk is None else trunk
        self.class_head = nn.Linear(self.trunk.hidden, self.num_classes)
        self.box_head = nn.Linear(self.trunk.hidden, 4)
        # Start from the average answer (a box in the middle, a third of the image wide)
        # rather than from random numbers: the first steps then refine a box instead of
        # chasing one across the image.
        nn.init.normal_(self.box_head.weight, std=1e-3)
        with torch.no_grad():
            self.box_head.bias.copy_(torch.tensor([0.5, 0.5, 0.3, 0.3]))

    def forward(self, images) -> dict[str, torch.Tensor]:
        shared = self.trunk(_as_batch(images))  # [N, hidden]
        return {"class_logits": self.class_head(shared), "boxes": self.box_head(shared)}

    @torch.no_grad()
    def predict(self, images) -> dict[str, torch.Tensor]:
        """Labels, their probabilities and pixel boxes (the model's mode is kept).

        Returns:
            dict: ``"labels"`` ``[N]`` int64 (argmax over the classes but background),
            ``"scores"`` ``[N]`` (softmax probability of that label), ``"boxes"`` ``[N, 4]``
            xyxy pixels.
        """
        batch = _as_batch(images)
        out = self(batch)
        probs = out["class_logits"].softmax(dim=1)  # [N, C]
        # one object per image, so the answer is never "background"
        scores, labels = probs[:, 1:].max(dim=1)
        return {"labels": labels + 1, "scores": scores,
                "boxes": decode_box(out["boxes"], batch.shape[-2:])}


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
        shared = self.trunk(_as_batch(images))  # [N, hidden]
        return self.head(shared).reshape(-1, self.num_keypoints, 2)  # [N, K, 2]

    @torch.no_grad()
    def predict(self, images) -> torch.Tensor:
        """Keypoints in pixels, ``[N, K, 2]``."""
        batch = _as_batch(images)
        return decode_keypoints(self(batch), batch.shape[-2:])


# -- losses -----------------------------------------------------------------------------


def localisation_loss(outputs: dict, targets: dict, image_size, box_weight: float = 1.0,
                      box_loss: str = "l2") -> dict[str, torch.Tensor]:
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
            xyxy pixels (what ``vizlib.data.LocalisationScenes`` gives, batched).
        image_size (tuple[int, int]): ``(height, width)`` of the images.
        box_weight (float): weight of the box term, >= 0.
        box_loss (str): ``"l2"`` (the lecture's choice) or ``"smooth_l1"`` (Fast R-CNN's,
            with ``beta = 1/9``: less pulled by a few very wrong boxes).

    Returns:
        dict[str, Tensor]: scalars ``"classification"`` and ``"box"`` (already multiplied
        by ``box_weight``); their sum is the loss to minimise.
    """
    if not isinstance(outputs, dict) or not {"class_logits", "boxes"} <= set(outputs):
        raise ValueError("outputs must be a dict with 'class_logits' and 'boxes' (LocalisationNet's output)")
    if not isinstance(targets, dict) or not {"label", "box"} <= set(targets):
        raise ValueError("targets must be a dict with 'label' [N] and 'box' [N, 4] (a batch of "
                         "LocalisationScenes targets)")
    if box_loss not in BOX_LOSSES:
        raise ValueError(f"box_loss must be one of {BOX_LOSSES}, got {box_loss!r}")
    boxes = targets["box"]
    boxes = boxes.as_subclass(torch.Tensor) if isinstance(boxes, torch.Tensor) else boxes
    box_targets = encode_box(boxes, image_size)  # [N, 4]
    labels = targets["label"]
    labels = labels.as_subclass(torch.Tensor).reshape(-1) if isinstance(labels, torch.Tensor) else labels
    terms = multitask_loss(outputs["class_logits"], labels, outputs["boxes"], box_targets,
                           box_weight=box_weight, box_loss=box_loss)
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
    pred = _check_keypoints("predicted", predicted, (2,))
    truth = _check_keypoints("keypoints", keypoints, (3,))
    if pred.shape[:2] != truth.shape[:2]:
        raise ValueError(f"predicted [N, K, 2] and keypoints [N, K, 3] must agree on N and K, got "
                         f"{tuple(pred.shape)} and {tuple(truth.shape)}")
    target = encode_keypoints(truth, image_size)  # [N, K, 2]
    labelled = (truth[..., 2] > 0).to(pred.dtype)  # [N, K]
    squared = ((pred - target) ** 2).sum(dim=-1)  # [N, K]
    return (squared * labelled).sum() / max(len(pred), 1)
