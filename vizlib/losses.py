"""Losses and their weights: smooth L1, focal loss, FCOS centre-ness, the two-term detector
loss, and class weights for a per-pixel cross-entropy.

* :func:`smooth_l1_loss` - quadratic near zero, linear far away: box regression that
  outliers cannot dominate (Girshick, Fast R-CNN, 2015). Equals ``F.smooth_l1_loss``.
* :func:`sigmoid_focal_loss` - cross-entropy scaled by ``(1 - p_t) ** gamma`` so that the
  many easy negatives of a dense detector stop swamping the few hard examples (Lin et
  al., RetinaNet, 2017). Equals ``torchvision.ops.sigmoid_focal_loss``;
  :func:`focal_loss_curve` gives the curve for plots.
* :func:`fcos_centerness_target` - how central a point is in its box (Tian et al., FCOS,
  2019).
* :func:`multitask_loss` - classification + box regression over the foreground, as in
  Fast/Faster R-CNN's heads (``torchvision.models.detection.roi_heads.fastrcnn_loss``).
* :func:`median_frequency_weights` - per-class weights for a segmentation cross-entropy
  that give rare classes as much say as common ones (median frequency balancing, Eigen &
  Fergus, 2015, as used by SegNet); pass them as ``F.cross_entropy(..., weight=...)``.
"""

from __future__ import annotations

from numbers import Real

import torch
import torch.nn.functional as F

from vizlib._checks import (
    as_float_tensor,
    check_choice,
    check_int_tensor,
    check_number,
    check_positive_int,
    check_same_shape,
)

__all__ = [
    "REDUCTIONS",
    "BOX_LOSSES",
    "smooth_l1_loss",
    "sigmoid_focal_loss",
    "focal_loss_curve",
    "fcos_centerness_target",
    "multitask_loss",
    "median_frequency_weights",
]

REDUCTIONS = ("none", "mean", "sum")
BOX_LOSSES = ("smooth_l1", "l2")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()  # NaN for an empty input, as torch's own losses
    if reduction == "sum":
        return loss.sum()
    return loss


def smooth_l1_loss(input, target, beta: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Smooth L1 (Huber-like) loss.

    With ``z = |input - target|``: ``0.5 * z**2 / beta`` where ``z < beta``, else
    ``z - 0.5 * beta``. The two pieces meet with equal value and slope at ``z = beta``;
    ``beta = 0`` is plain L1. Same as ``torch.nn.functional.smooth_l1_loss``.

    Args:
        input (Tensor[*]): predictions, float.
        target (Tensor[*]): targets, same shape as ``input``.
        beta (float): where the quadratic part ends, >= 0 (torchvision's RoI heads use 1/9).
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``.

    Returns:
        Tensor: the loss per element (``'none'``, shape ``[*]``) or a scalar.
    """
    x = as_float_tensor("input", input)
    y = as_float_tensor("target", target)
    check_same_shape("input", x, "target", y)
    beta = check_number("beta", beta, low=0)
    reduction = check_choice("reduction", reduction, REDUCTIONS)
    z = (x - y).abs()
    if beta == 0:  # the limit: L1 (and no division by zero)
        loss = z
    else:
        loss = torch.where(z < beta, 0.5 * z**2 / beta, z - 0.5 * beta)
    return _reduce(loss, reduction)


def _check_alpha(alpha) -> float | None:
    """The focal loss's class weight: in [0, 1], or None for none (specific to the focal
    loss: torchvision's ``-1`` for "no weighting" gets a hint)."""
    if alpha is None:
        return None
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0.0 <= alpha <= 1.0:
        raise ValueError(
            f"alpha must be in [0, 1] or None (no class weighting; torchvision writes -1), got {alpha!r}"
        )
    return float(alpha)


def sigmoid_focal_loss(
    inputs, targets, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> torch.Tensor:
    """Focal loss for binary (per-class sigmoid) classification (Lin et al., 2017).

    With ``p = sigmoid(inputs)`` and ``p_t = p`` for a positive, ``1 - p`` for a
    negative::

        FL = -alpha_t * (1 - p_t) ** gamma * log(p_t)

    ``(1 - p_t) ** gamma`` shrinks the loss of examples the model already gets right
    (``p_t`` near 1); ``alpha_t`` (``alpha`` for positives, ``1 - alpha`` for
    negatives) balances the two classes. ``gamma = 0, alpha = None`` is plain binary
    cross-entropy. Same as ``torchvision.ops.sigmoid_focal_loss`` (whose ``alpha=-1`` is
    ``alpha=None`` here).

    Args:
        inputs (Tensor[*]): logits, float.
        targets (Tensor[*]): same shape, in [0, 1] (1 positive, 0 negative).
        alpha (float or None): weight of the positives, in [0, 1]; None for no weighting.
        gamma (float): focusing exponent, >= 0.
        reduction (str): ``'none'`` (default, as torchvision) | ``'mean'`` | ``'sum'``.

    Returns:
        Tensor: the loss per element (``'none'``, shape ``[*]``) or a scalar.
    """
    x = as_float_tensor("inputs", inputs)
    t = as_float_tensor("targets", targets)
    check_same_shape("inputs", x, "targets", t)
    if t.numel() and bool(((t < 0) | (t > 1)).any()):
        raise ValueError("targets must be in [0, 1] (1 for a positive, 0 for a negative)")
    alpha = _check_alpha(alpha)
    gamma = check_number("gamma", gamma, low=0)
    reduction = check_choice("reduction", reduction, REDUCTIONS)
    p = torch.sigmoid(x)
    # BCE from the logits is stable where log(sigmoid(x)) would underflow.
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")  # = -log(p_t)
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        alpha_t = alpha * t + (1 - alpha) * (1 - t)
        loss = alpha_t * loss
    return _reduce(loss, reduction)


def focal_loss_curve(p_t, gamma: float = 2.0, alpha_t: float = 1.0) -> torch.Tensor:
    """The focal loss as a function of ``p_t``, the probability given to the true class.

    ``-alpha_t * (1 - p_t) ** gamma * log(p_t)``: the curve of the RetinaNet paper's
    Figure 1 (``gamma = 0`` is cross-entropy), for plotting.

    Args:
        p_t (Tensor[*] or sequence of float): probabilities in (0, 1].
        gamma (float): focusing exponent, >= 0.
        alpha_t (float): class weight, in [0, 1].

    Returns:
        Tensor[*]: the loss at each ``p_t``.
    """
    p = as_float_tensor("p_t", p_t)
    if p.numel() and bool(((p <= 0) | (p > 1)).any()):
        raise ValueError("p_t must be in (0, 1] (the loss is infinite at 0)")
    gamma = check_number("gamma", gamma, low=0)
    alpha_t = _check_alpha(alpha_t)
    if alpha_t is None:
        raise ValueError("alpha_t must be a number in [0, 1], got None")
    return -alpha_t * (1 - p) ** gamma * torch.log(p)


def fcos_centerness_target(ltrb) -> torch.Tensor:
    """FCOS centre-ness: 1 at a box's centre, falling to 0 at its edges (Tian et al., 2019).

    ``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))``. FCOS multiplies the class
    score by the predicted centre-ness, so that boxes predicted from a location far off
    an object's centre rank low in NMS. A ratio ``0 / 0`` (zero width or height) counts 0.

    Args:
        ltrb (Tensor[N, 4]): distances ``(l, t, r, b)`` from points inside their boxes
            to the four sides, >= 0 (see :func:`vizlib.boxes.encode_ltrb`).

    Returns:
        Tensor[N]: centre-ness in [0, 1].
    """
    d = as_float_tensor("ltrb", ltrb)
    if d.dim() == 1 and d.numel() == 0:
        d = d.reshape(0, 4)
    if d.dim() != 2 or d.shape[1] != 4:
        raise ValueError(f"ltrb must have shape [N, 4] (l, t, r, b), got {tuple(d.shape)}")
    if bool((d < 0).any()):
        raise ValueError("ltrb must be >= 0: centre-ness is defined for points inside their box")
    left_right = d[:, 0::2]  # [N, 2]: l, r
    top_bottom = d[:, 1::2]  # [N, 2]: t, b

    def ratio(pair: torch.Tensor) -> torch.Tensor:
        low, high = pair.min(dim=1).values, pair.max(dim=1).values
        return torch.where(
            high > 0, low / high.clamp(min=torch.finfo(high.dtype).tiny), torch.zeros_like(low)
        )

    return torch.sqrt(ratio(left_right) * ratio(top_bottom))


def multitask_loss(
    class_logits,
    class_targets,
    box_preds,
    box_targets,
    box_weight: float = 1.0,
    box_loss: str = "smooth_l1",
    beta: float = 1.0 / 9,
) -> dict[str, torch.Tensor]:
    """Fast R-CNN's two-term loss: classify every sample, regress boxes of the foreground.

    ``total = cross_entropy(class_logits, class_targets) + box_weight * box term``. The
    box term only counts samples with ``class_targets > 0``: a background sample has no
    box to regress. As in torchvision's ``fastrcnn_loss`` it is a sum over the foreground
    divided by the number of *all* samples, so a batch with few positives does not blow
    their box errors up. With per-class box predictions ``[N, C * 4]`` only the target
    class's four numbers are used. With ``box_loss='smooth_l1'``, ``beta=1/9`` and
    ``box_weight=1`` this equals ``fastrcnn_loss``. With no samples at all every term is 0.

    Args:
        class_logits (Tensor[N, C]): class scores, column 0 the background.
        class_targets (Tensor[N]): int64 class of each sample in ``[0, C)``, 0 background.
        box_preds (Tensor[N, 4] or Tensor[N, C * 4]): predicted box encodings (e.g.
            :func:`vizlib.boxes.encode_deltas` deltas), class-agnostic or per class.
        box_targets (Tensor[N, 4]): target encodings (ignored where the class is 0).
        box_weight (float): weight of the box term, >= 0.
        box_loss (str): ``'smooth_l1'`` or ``'l2'`` (squared error).
        beta (float): ``beta`` of the smooth L1 loss, >= 0.

    Returns:
        dict[str, Tensor]: scalars ``'classification'``, ``'box_regression'`` (before
        weighting) and ``'total'``.
    """
    logits = as_float_tensor("class_logits", class_logits)
    if logits.dim() != 2:
        raise ValueError(f"class_logits must have shape [N, C], got {tuple(logits.shape)}")
    n, num_classes = logits.shape
    labels = check_int_tensor("class_targets", class_targets, "[N]")
    if labels.shape != (n,):
        raise ValueError(f"class_targets must have shape [N] = [{n}], got {tuple(labels.shape)}")
    if n and bool(((labels < 0) | (labels >= num_classes)).any()):
        raise ValueError(f"class_targets must be in [0, {num_classes}) (C = class_logits.shape[1])")
    preds = as_float_tensor("box_preds", box_preds)
    if preds.dim() != 2 or preds.shape[0] != n or preds.shape[1] not in (4, 4 * num_classes):
        raise ValueError(
            f"box_preds must have shape [N, 4] or [N, C * 4] = [{n}, {4 * num_classes}], got {tuple(preds.shape)}"
        )
    targets = as_float_tensor("box_targets", box_targets)
    if targets.shape != (n, 4):
        raise ValueError(
            f"box_targets must have shape [N, 4] = [{n}, 4], got {tuple(targets.shape)}"
        )
    box_weight = check_number("box_weight", box_weight, low=0)
    check_choice("box_loss", box_loss, BOX_LOSSES)
    beta = check_number("beta", beta, low=0)

    if n == 0:  # keep the graph so that .backward() still works
        zero = logits.sum() * 0 + preds.sum() * 0
        return {"classification": zero, "box_regression": zero, "total": zero}

    classification = F.cross_entropy(logits, labels.long())
    foreground = torch.where(labels > 0)[0]  # [P]
    if preds.shape[1] == 4:
        fg_preds = preds[foreground]  # [P, 4]
    else:
        per_class = preds.reshape(n, num_classes, 4)  # [N, C, 4]
        fg_preds = per_class[foreground, labels[foreground]]  # [P, 4]: the target class's box
    if box_loss == "smooth_l1":
        box_sum = smooth_l1_loss(fg_preds, targets[foreground], beta=beta, reduction="sum")
    else:
        box_sum = ((fg_preds - targets[foreground]) ** 2).sum()
    box_regression = box_sum / n  # normalised by all samples, as torchvision
    return {
        "classification": classification,
        "box_regression": box_regression,
        "total": classification + box_weight * box_regression,
    }


def median_frequency_weights(
    masks, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """Class weights by median frequency balancing (Eigen & Fergus, 2015; SegNet, 2017).

    A per-pixel cross-entropy is a sum over pixels, so a class that covers few pixels (a
    small thing among large stuff regions) has little say in it, and a network can
    lower the loss a long way before it learns that class at all. Weighting each pixel's
    term by its class's weight evens that out: ``weight[c] = median_freq / freq[c]``, where
    ``freq[c]`` is the number of pixels of class ``c`` divided by the number of pixels of
    the images in which ``c`` appears, and ``median_freq`` is the median of ``freq`` over
    the classes that appear (the mean of the two middle values when their number is even,
    as ``numpy.median``). So the median class weighs 1, rarer classes more, commoner ones
    less. Pixels equal to ``ignore_index`` are not counted anywhere (nor in an image's
    pixel count); a class that appears in no image gets weight 0 (it has no pixels to
    weigh).

    Args:
        masks (Tensor[N, H, W] or Tensor[H, W]): integer class maps, values in
            ``[0, num_classes)`` or ``ignore_index``.
        num_classes (int): the number of classes ``C`` the loss scores.
        ignore_index (int, optional): the value of unlabelled pixels (255 in PASCAL VOC
            and the scenes), or None if every pixel is labelled.

    Returns:
        Tensor[C]: float32 weights, ready for ``torch.nn.functional.cross_entropy(logits,
        target, weight=weights)``.

    Raises:
        ValueError: if ``masks`` is not an integer tensor of 2 or 3 dimensions, holds a
            value outside ``[0, num_classes)`` other than ``ignore_index``, or has no
            labelled pixel; if ``num_classes`` is not a positive int or ``ignore_index``
            not an int or None.
    """
    labels = check_int_tensor("masks", masks, "[N, H, W] (a class per pixel)")
    if labels.dim() == 2:
        labels = labels.unsqueeze(0)  # one image
    if labels.dim() != 3:
        raise ValueError(f"masks must have shape [N, H, W] or [H, W], got {tuple(masks.shape)}")
    num_classes = check_positive_int("num_classes", num_classes)
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, int)
    ):
        raise ValueError(f"ignore_index must be an int or None, got {ignore_index!r}")
    flat = labels.reshape(labels.shape[0], -1).long()  # [N, H * W]
    valid = (
        flat != ignore_index
        if ignore_index is not None
        else torch.ones_like(flat, dtype=torch.bool)
    )
    bad = valid & ((flat < 0) | (flat >= num_classes))
    if bool(bad.any()):
        value = int(flat[bad][0])
        raise ValueError(
            f"masks must hold classes in [0, {num_classes}) or ignore_index="
            f"{ignore_index}, found {value}"
        )
    if not bool(valid.any()):
        raise ValueError(
            "masks have no labelled pixel (every pixel is ignore_index): no frequency to balance"
        )
    # pixels of each class in each image: one bincount over (image, class) pairs
    n = flat.shape[0]
    image = torch.arange(n).unsqueeze(1).expand_as(flat)  # [N, H * W]
    pairs = image[valid] * num_classes + flat[valid]
    counts = (
        torch.bincount(pairs, minlength=n * num_classes).reshape(n, num_classes).double()
    )  # [N, C]
    image_pixels = counts.sum(dim=1, keepdim=True)  # [N, 1]: labelled pixels of each image
    seen_in = (image_pixels * (counts > 0)).sum(dim=0)  # [C]: pixels of the images where c appears
    present = seen_in > 0
    freq = counts.sum(dim=0)[present] / seen_in[present]  # [P]
    weights = torch.zeros(num_classes, dtype=torch.float64)
    weights[present] = (
        torch.quantile(freq, 0.5) / freq
    )  # quantile 0.5 averages the two middle values
    return weights.float()
