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
read from it alone must be learnt separately at each of the ``p * p`` positions, and on
the chapter's CPU budget that left shape classification far behind (accuracy 0.34
against 0.47 after 500 steps, 0.69 after 1000 with the average). The global average is
the same wherever the thing is, which is what "what" needs (the global average pooling
of Network in Network, GoogLeNet and ResNet).

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
  :func:`vizlib.losses.multitask_loss`), :func:`keypoint_loss`: L2 over labelled keypoints;
* the chapter's data, as tensors in memory (64-pixel images are small, and a CPU epoch
  should not be spent converting samples): :func:`localisation_data` (one thing per
  generated scene, or PASCAL VOC's single-object photographs) and :func:`keypoint_data`
  (one class's keypoints, one thing per scene);
* its scores: :func:`localisation_scores` (class, IoU, "correct" in the ILSVRC sense)
  and :func:`keypoint_scores` (PCK);
* :func:`count_windows`: how many crops a sliding-window localiser would classify.

Labels follow the book's convention: 0 is background, objects are ``1 .. C - 1``; with one
object per image the background class is never the answer, but keeping it makes the class
index the same in every chapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from .._checks import as_float_tensor, check_boxes, check_fraction, check_positive_int
from ..boxes import _check_image_size, box_convert
from ..data.sources import DATA_SOURCES
from ..data.sources import check_data_args as _check_data_args
from ..losses import BOX_LOSSES, multitask_loss
from .backbone import VGGBackbone
from .blocks import check_image_batch

__all__ = [
    "KeypointData",
    "SingleObjectData",
    "TensorSamples",
    "RegressionTrunk",
    "LocalisationNet",
    "KeypointNet",
    "encode_box",
    "decode_box",
    "encode_keypoints",
    "decode_keypoints",
    "localisation_loss",
    "keypoint_loss",
    "localisation_data",
    "keypoint_data",
    "localisation_scores",
    "keypoint_scores",
    "paired_box_iou",
    "count_windows",
    "DATA_SOURCES",
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
        self.out_channels = backbone.out_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)[1]

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone's last map ``[N, C, h, w]`` and the shared features ``[N, hidden]``."""
        check_image_batch(images)
        features = self.backbone(images)
        last = features[-1] if isinstance(features, (list, tuple)) else features  # [N, C, h, w]
        return last, self.fc(self.pool(last))  # [N, hidden]


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

    The class head reads ``[shared FC, global average of the backbone's map]``
    (``hidden + C`` numbers), the box head the shared FC alone.

    Shape:
        ``forward(images [N, 3, H, W])`` returns a dict: ``"class_logits"`` ``[N,
        num_classes]`` and ``"boxes"`` ``[N, 4]``, box codings (see :func:`encode_box`).
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
        last, shared = self.trunk.features(_as_batch(images))  # [N, C, h, w], [N, hidden]
        average = last.mean(dim=(2, 3))  # [N, C]: the same wherever the thing is
        return {"class_logits": self.class_head(torch.cat([shared, average], dim=1)),
                "boxes": self.box_head(shared)}

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


# -- data -------------------------------------------------------------------------------

class TensorSamples(torch.utils.data.Dataset):
    """Samples held as tensors: ``images[i]`` and a dict of ``fields[k][i]``.

    A ``DataLoader`` over it batches the dicts into dicts of ``[B, ...]`` tensors, which
    is what :func:`localisation_loss` takes.

    Args:
        images (Tensor[N, 3, H, W]): float images in [0, 1].
        **fields (Tensor[N, ...]): the targets, one row per image (``label``, ``box``, ...).
    """

    def __init__(self, images: torch.Tensor, **fields: torch.Tensor):
        check_image_batch(images)
        for name, value in fields.items():
            if not isinstance(value, torch.Tensor) or len(value) != len(images):
                raise ValueError(f"{name} must be a tensor with one row per image ({len(images)}), "
                                 f"got {type(value).__name__} of length {len(value)}")
        self.images, self.fields = images, fields

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.images[index], {k: v[index] for k, v in self.fields.items()}

    def subset(self, indices) -> TensorSamples:
        """The samples at ``indices`` (a list or a tensor of indices), as a new set."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return TensorSamples(self.images[idx], **{k: v[idx] for k, v in self.fields.items()})

    def __repr__(self) -> str:
        fields = ", ".join(f"{k} {tuple(v.shape[1:])}" for k, v in self.fields.items())
        return f"TensorSamples({len(self)} images {tuple(self.images.shape[1:])}; {fields})"


class SingleObjectData(NamedTuple):
    """What :func:`localisation_data` returns.

    ``train`` and ``val`` give ``(image [3, H, W], {"label": int64 [], "box": [4]})``,
    the box xyxy in pixels; ``class_names[label]`` names a label (0 is background).
    """

    train: TensorSamples
    val: TensorSamples
    class_names: tuple[str, ...]
    source: str


class KeypointData(NamedTuple):
    """What :func:`keypoint_data` returns.

    ``train`` and ``val`` give ``(image [3, H, W], {"keypoints": [K, 3], "box": [4]})``
    (``(x, y, visibility)`` in pixels; the box is the thing's, for PCK's normaliser);
    ``keypoint_names[k]`` names keypoint ``k``.
    """

    train: TensorSamples
    val: TensorSamples
    keypoint_names: tuple[str, ...]
    thing: str


def _scene_samples(count: int, seed: int, image_size: int, thing: str | None = None):
    """``count`` one-thing scenes of stream ``seed`` (only those showing ``thing``, if given)."""
    from ..data.scenes import THING_CLASSES, SceneConfig, make_scene

    config = SceneConfig(image_size=image_size)
    wanted = None if thing is None else THING_CLASSES.index(thing) + 1
    scenes, index = [], 0
    while len(scenes) < count:
        # raw scenes, no tv_tensors round trip: with one thing and no augmentation the
        # generator's box (the tight box of the visible mask) is the dataset's box
        scene = make_scene(seed, index, config, num_objects=1)
        index += 1
        if wanted is None or int(scene.labels[0]) == wanted:
            scenes.append(scene)
    images = torch.stack([torch.from_numpy(s.image).permute(2, 0, 1) for s in scenes]).float() / 255
    return scenes, images  # images: [N, 3, H, W]


def _voc_single_objects(root, image_set: str, count: int, image_size: int, download: bool):
    """PASCAL VOC 2012 photos that hold exactly one annotated object, resized to squares."""
    from torchvision.transforms import v2

    from ..data.real import voc_detection

    data = voc_detection(root, "2012", image_set, download=download)
    # R-CNN's "warp": every photo is squashed to a square, boxes move with it
    resize = v2.Resize((image_size, image_size), antialias=True)
    images, labels, boxes = [], [], []
    for i in range(len(data)):
        image, target = data[i]
        if len(target["labels"]) != 1:
            continue
        image, target = resize(image, target)
        images.append(image.as_subclass(torch.Tensor))
        labels.append(target["labels"][0])
        boxes.append(target["boxes"][0].as_subclass(torch.Tensor))
        if len(images) == count:
            break
    if not images:
        raise ValueError(f"PASCAL VOC {image_set} holds no image with a single object under {root}")
    return TensorSamples(torch.stack(images), label=torch.stack(labels).long(), box=torch.stack(boxes).float())


def localisation_data(source: str = "scenes", *, image_size: int = 64, train_images: int = 2000,
                      val_images: int = 300, seed: int = 0, root: str | Path = "data",
                      download: bool = False) -> SingleObjectData:
    """The data of classification + localisation: one object per image.

    Args:
        source (str): ``"scenes"``: generated scenes with exactly one thing (5 classes,
            ``vizlib.data.make_scene(..., num_objects=1)``; train from stream ``seed + 1``,
            validation from ``seed + 2``). ``"voc"``: the PASCAL VOC 2012 ``train`` and
            ``val`` photos that hold exactly one annotated object (20 classes), squashed
            to ``image_size`` squares (an opt-in download).
        image_size (int): side of the square images.
        train_images, val_images (int): set sizes (VOC: at most what the split holds).
        seed (int): scenes only.
        root (str or Path): VOC only: the folder that holds (or will hold) ``VOCdevkit/``.
        download (bool): VOC only: fetch it (about 2 GB) if missing.

    Returns:
        SingleObjectData: ``train``, ``val`` (:class:`TensorSamples` with ``label`` ``[N]``
        int64 and ``box`` ``[N, 4]`` xyxy pixels), ``class_names``, ``source``.

    Raises:
        ValueError: a bad argument.
        vizlib.data.real.DataNotFoundError: ``"voc"`` without its files and without
            ``download=True`` (or offline), with what to do.
    """
    image_size, train_images, val_images, seed = _check_data_args(
        source, image_size, train_images, val_images, seed, download)
    if source == "voc":
        from ..data.real import VOC_CLASSES

        train = _voc_single_objects(root, "train", train_images, image_size, download)
        val = _voc_single_objects(root, "val", val_images, image_size, download)
        return SingleObjectData(train, val, tuple(VOC_CLASSES), "voc")
    from ..data.scenes import DETECTION_CLASSES

    sets = []
    for count, stream in ((train_images, seed + 1), (val_images, seed + 2)):
        scenes, images = _scene_samples(count, stream, image_size)
        labels = torch.tensor([int(s.labels[0]) for s in scenes])  # [N]
        boxes = torch.stack([torch.from_numpy(s.boxes[0]) for s in scenes]).float()  # [N, 4]
        sets.append(TensorSamples(images, label=labels, box=boxes))
    return SingleObjectData(sets[0], sets[1], tuple(DETECTION_CLASSES), "scenes")


def keypoint_data(thing: str = "star", *, image_size: int = 64, train_images: int = 2000,
                  val_images: int = 300, seed: int = 0) -> KeypointData:
    """The data of pose as regression: one thing of one class per scene, and its keypoints.

    As a person has the same joints in every photo, every thing of one class has the same
    keypoints: a star its centre and five tips, ordered by a rule read off the picture
    (the topmost tip first, then clockwise; see ``vizlib.data.scenes``). A tip outside
    the image has visibility 0.

    Args:
        thing (str): one of ``vizlib.data.THING_CLASSES``.
        image_size (int): side of the square images.
        train_images, val_images (int): set sizes; scenes showing another class are
            skipped (about four in five), so this generates about five times as many.
        seed (int): train from stream ``seed + 1``, validation from ``seed + 2``.

    Returns:
        KeypointData: ``train``, ``val`` (:class:`TensorSamples` with ``keypoints``
        ``[N, K, 3]`` and ``box`` ``[N, 4]``), ``keypoint_names`` (K names), ``thing``.
    """
    from ..data.scenes import KEYPOINT_NAMES, THING_CLASSES

    if thing not in THING_CLASSES:
        raise ValueError(f"thing must be one of {THING_CLASSES}, got {thing!r}")
    image_size = check_positive_int("image_size", image_size)
    train_images = check_positive_int("train_images", train_images)
    val_images = check_positive_int("val_images", val_images)
    seed = check_positive_int("seed", seed, allow_zero=True)
    k = len(KEYPOINT_NAMES[thing])  # the class's own keypoints; the other slots are padding
    sets = []
    for count, stream in ((train_images, seed + 1), (val_images, seed + 2)):
        scenes, images = _scene_samples(count, stream, image_size, thing)
        keypoints = torch.stack([torch.from_numpy(s.keypoints[0, :k]) for s in scenes]).float()  # [N, K, 3]
        boxes = torch.stack([torch.from_numpy(s.boxes[0]) for s in scenes]).float()  # [N, 4]
        sets.append(TensorSamples(images, keypoints=keypoints, box=boxes))
    return KeypointData(sets[0], sets[1], tuple(KEYPOINT_NAMES[thing]), thing)


# -- scores -----------------------------------------------------------------------------


def paired_box_iou(boxes1, boxes2) -> torch.Tensor:
    """IoU of ``boxes1[i]`` with ``boxes2[i]`` (not every pair: the diagonal of ``box_iou``).

    Args:
        boxes1, boxes2 (Tensor[N, 4]): xyxy boxes.

    Returns:
        Tensor[N]: in [0, 1]; 0 where both boxes have zero area.
    """
    b1 = check_boxes("boxes1", boxes1)
    b2 = check_boxes("boxes2", boxes2)
    if b1.shape != b2.shape:
        raise ValueError(f"boxes1 and boxes2 must both be [N, 4] with the same N, got "
                         f"{tuple(b1.shape)} and {tuple(b2.shape)}")
    b2 = b2.to(b1.dtype)
    top_left = torch.maximum(b1[:, :2], b2[:, :2])  # [N, 2]
    bottom_right = torch.minimum(b1[:, 2:], b2[:, 2:])  # [N, 2]
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=1)  # [N]
    area1 = (b1[:, 2:] - b1[:, :2]).prod(dim=1)  # [N]
    area2 = (b2[:, 2:] - b2[:, :2]).prod(dim=1)  # [N]
    union = area1 + area2 - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), torch.zeros_like(union))


def _model_device(model: nn.Module) -> torch.device:
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def _predict_all(model: nn.Module, images: torch.Tensor, batch_size: int):
    dev = _model_device(model)
    was_training = model.training
    model.eval()
    try:
        return [model.predict(images[i:i + batch_size].to(dev)) for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)


def localisation_scores(model: LocalisationNet, data: TensorSamples, batch_size: int = 256,
                        iou_threshold: float = 0.5) -> dict:
    """Score a localisation net on a set: class accuracy, mean IoU, "correct" localisations.

    ILSVRC's localisation task counted an image as solved when the class was right *and*
    the box overlapped the true one with IoU >= 0.5; the same rule gives ``"correct"``.

    Args:
        model (LocalisationNet): left in the mode it was in.
        data (TensorSamples): with fields ``label`` and ``box`` (:func:`localisation_data`).
        batch_size (int): images per forward pass.
        iou_threshold (float): the IoU a box needs to count as found.

    Returns:
        dict: ``"accuracy"``, ``"mean_iou"``, ``"correct"`` (floats), and per image
        (on the CPU): ``"iou"`` ``[N]``, ``"right_class"`` ``[N]`` bool, ``"labels"``,
        ``"scores"`` ``[N]`` and ``"boxes"`` ``[N, 4]`` (the predictions).
    """
    if not isinstance(data, TensorSamples) or not {"label", "box"} <= set(data.fields):
        raise ValueError("data must be TensorSamples with 'label' and 'box' (localisation_data's sets)")
    batch_size = check_positive_int("batch_size", batch_size)
    threshold = check_fraction("iou_threshold", iou_threshold)
    chunks = _predict_all(model, data.images, batch_size)
    pred = {k: torch.cat([c[k].cpu() for c in chunks]) for k in ("labels", "scores", "boxes")}
    iou = paired_box_iou(pred["boxes"], data.fields["box"])  # [N]
    right = pred["labels"] == data.fields["label"]  # [N]
    return {"accuracy": float(right.float().mean()), "mean_iou": float(iou.mean()),
            "correct": float((right & (iou >= threshold)).float().mean()),
            "iou": iou, "right_class": right, **pred}


def keypoint_scores(model: KeypointNet, data: TensorSamples, threshold: float = 0.2,
                    batch_size: int = 256) -> dict:
    """Score a keypoint net with PCK: a keypoint is correct within ``threshold`` times the
    size of its thing (the longer side of its box).

    Args:
        model (KeypointNet): left in the mode it was in.
        data (TensorSamples): with fields ``keypoints`` and ``box`` (:func:`keypoint_data`).
        threshold (float): PCK's threshold, a fraction of the normaliser (0.2: PCK@0.2).
        batch_size (int): images per forward pass.

    Returns:
        dict: ``"pck"`` (float, over all labelled keypoints), ``"per_keypoint"`` ``[K]``,
        and per image (on the CPU): ``"image_pck"`` ``[N]`` (NaN with no labelled point),
        ``"distance"`` ``[N, K]`` in units of the normaliser, ``"predicted"`` ``[N, K, 2]``
        pixels, ``"normaliser"`` ``[N]`` pixels.
    """
    from ..metrics import pck

    if not isinstance(data, TensorSamples) or not {"keypoints", "box"} <= set(data.fields):
        raise ValueError("data must be TensorSamples with 'keypoints' and 'box' (keypoint_data's sets)")
    batch_size = check_positive_int("batch_size", batch_size)
    threshold = check_fraction("threshold", threshold)
    predicted = torch.cat([c.cpu() for c in _predict_all(model, data.images, batch_size)])  # [N, K, 2]
    truth = data.fields["keypoints"]  # [N, K, 3]
    sizes = data.fields["box"][:, 2:] - data.fields["box"][:, :2]  # [N, 2]
    normaliser = sizes.max(dim=1).values.clamp(min=1.0)  # [N]
    result = pck(predicted, truth, threshold, normaliser)
    distance = torch.linalg.vector_norm(predicted - truth[..., :2], dim=-1) / normaliser[:, None]  # [N, K]
    labelled = truth[..., 2] > 0  # [N, K]
    correct = ((distance <= threshold) & labelled).sum(dim=1)  # [N]
    count = labelled.sum(dim=1)  # [N]
    image_pck = torch.where(count > 0, correct / count.clamp(min=1), torch.full_like(distance[:, 0], float("nan")))
    return {"pck": result.mean, "per_keypoint": result.per_keypoint, "image_pck": image_pck,
            "distance": distance, "predicted": predicted, "normaliser": normaliser}


# -- why detection is not one regression ---------------------------------------------------


def count_windows(image_size, window_sizes, stride: int) -> int:
    """How many crops a sliding-window detector classifies in one image.

    A window of height ``h`` fits at ``(H - h) // stride + 1`` vertical positions (none
    when ``h > H``), likewise across; every window size adds its own positions. OverFeat
    (Sermanet et al., 2014) made this affordable by sharing the convolutions between
    windows; R-CNN (Girshick et al., 2014) by classifying only ~2000 proposed regions.

    Args:
        image_size (tuple[int, int]): ``(height, width)`` in pixels.
        window_sizes (sequence of (int, int)): ``(height, width)`` of each window shape.
        stride (int): pixels between neighbouring positions.

    Returns:
        int: the number of crops.
    """
    height, width = _check_image_size("image_size", image_size)
    stride = check_positive_int("stride", stride)
    if isinstance(window_sizes, (str, bytes)) or not hasattr(window_sizes, "__iter__"):
        raise ValueError(f"window_sizes must be a sequence of (height, width) pairs, got {window_sizes!r}")
    total = 0
    for size in window_sizes:
        h, w = _check_image_size("window_sizes", size)
        if h > height or w > width:
            continue
        total += (int(height - h) // stride + 1) * (int(width - w) // stride + 1)
    return total
