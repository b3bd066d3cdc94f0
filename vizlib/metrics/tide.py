"""TIDE: where a detector's missing AP goes (Bolya et al., ECCV 2020).

mAP says how much a detector misses, not why. TIDE (Bolya, Foley, Hays and Hoffman, "TIDE:
A General Toolbox for Identifying Object Detection Errors", ECCV 2020) gives every mistake
one cause and weighs each cause by the AP an oracle would win by fixing only that cause.

**1. Match** (section 2.1). As COCO at IoU :math:`t_f` (0.5): per image and class, the
detections by descending score each claim the unclaimed object of their class with the
highest IoU >= :math:`t_f`: a true positive (TP). The same code path as
:func:`vizlib.metrics.coco_evaluate` (its IoU, its tie-breaks, its 100 detections per image
and class), so that the base AP equals COCO's AP50 exactly.

**2. Blame** (section 2.2). A detection that is not a TP gets **one** error type, tested
in the order of the authors' code (``tidecv`` 1.0.1, ``TIDERun._eval_image``), with
:math:`t_b` = 0.1 and both ends of the paper's ranges included:

1. **Loc**: its best IoU with an object of its own class lies in :math:`[t_b, t_f]`.
2. **Cls**: IoU >= :math:`t_f` with an object of another class.
3. **Dupe**: IoU >= :math:`t_f` with an object of its class that a higher-scoring detection
   already claimed.
4. **Bkg**: IoU <= :math:`t_b` with every object (and every detection in an image without
   objects).
5. **Both**: anything else, i.e. :math:`t_b` < IoU < :math:`t_f` with an object of another
   class only.

An object no detection claimed is **Miss**, unless a Cls or Loc error targets it: that
error is its cause, and fixing it finds the object.

**3. Weigh** (section 2.3). dAP of a type = AP after an oracle fixes only the errors of that
type, minus the base AP; everything else stays as it was. The fixes (section 2.2, and
``tidecv``'s ``fix()`` methods):

* **Cls**: relabel the detection to its object's class, now a TP; **Loc**: move its box onto
  its object, now a TP. If the object was already claimed, or another Cls or Loc error of
  higher score targets the same object, the fixed detection would be a duplicate, so it is
  suppressed instead (``BestGTMatch``).
* **Both**, **Dupe**, **Bkg**: suppress the detection.
* **Miss**: drop the missed objects from the ground truth ("reduce the number of GT").

Two summaries bound what the six leave out (section 2.3, "special errors"): **FP**, every
false positive suppressed, and **FN**, every object no detection found dropped. The dAPs do
not add up to the AP missing: fixing one kind changes the ranking the others are scored in,
which is why TIDE fixes each kind alone (section 2.3, on the progressive fixing of Hoiem et
al. and its order dependence).

AP is COCO's 101-point AP at :math:`t_f`, averaged over the classes present in the ground
truth (as :func:`~vizlib.metrics.coco_evaluate`). ``tidecv`` computes the same 101-point AP
(in percent); one convention is taken from it: a class whose objects all go (the Miss or FN
fix) scores 0 if it still has detections and leaves the mean if it has none. Three small
differences from ``tidecv``, all on COCO's side: the recall grid is pycocotools'
``np.linspace(0, 1, 101)`` (``tidecv``: ``i / 100``; 10 of the 101 points differ in the last
bit, which moves a dAP by up to ~1e-3 when a recall lands exactly on one); tied scores keep
COCO's order (image, then input) in every fixed run too (``tidecv`` ranks the errors before
the TPs there); and a class that has detections but no object is left out of the mean, as
COCO does (``tidecv`` scores it 0). With distinct scores, ``tidecv``'s grid and every class
present, the numbers agree with ``tidecv`` 1.0.1 to 1e-15.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from vizlib._checks import as_float_tensor, check_boxes, check_fraction, check_labels
from vizlib.boxes import box_convert
from vizlib.metrics.average_precision import coco_sampled_precision
from vizlib.metrics.coco import COCO_MAX_DETS, NO_GROUND_TRUTH
from vizlib.metrics.coco_iou import coco_iou_xywh

__all__ = ["TIDE_ERROR_TYPES", "TIDE_SPECIAL_ERRORS", "TideBreakdown", "tide_errors"]

# The six main error types, in the paper's order (Fig. 1), and the two special ones.
TIDE_ERROR_TYPES = ("Cls", "Loc", "Both", "Dupe", "Bkg", "Miss")
TIDE_SPECIAL_ERRORS = ("FP", "FN")

# What a kept detection is: a TP or one of the five detection errors (Miss is for objects).
_TP, _CLS, _LOC, _BOTH, _DUPE, _BKG = range(6)
_KIND_NAMES = {_CLS: "Cls", _LOC: "Loc", _BOTH: "Both", _DUPE: "Dupe", _BKG: "Bkg"}
# pycocotools' cap on a threshold (COCOeval.evaluateImg): IoU 1 - 1e-10 counts as a match.
_COCO_MAX_THRESHOLD = 1 - 1e-10


class TideBreakdown(NamedTuple):
    """Result of :func:`tide_errors`."""

    ap50: float  # base AP at IoU iou_foreground (AP50), mean over classes with ground truth
    delta_ap: dict[str, float]  # "Cls", "Loc", "Both", "Dupe", "Bkg", "Miss", "FP", "FN" -> dAP
    counts: dict[str, int]  # detections of each error type; for "Miss", objects


# --------------------------------------------------------------------------- inputs


class _Image(NamedTuple):
    """One image's boxes as float64 COCO (x, y, w, h) arrays, as coco_evaluate reads them."""

    gt_box: np.ndarray  # [G, 4]
    gt_label: np.ndarray  # [G] int64
    dt_box: np.ndarray  # [D, 4]
    dt_score: np.ndarray  # [D] float64
    dt_label: np.ndarray  # [D] int64


def _xywh(name: str, boxes) -> np.ndarray:
    """Validated ``Tensor[N, 4]`` xyxy boxes as float64 ``[N, 4]`` (x, y, w, h), converted
    from the input's own values (not a float32 copy) so that IoUs equal COCO's."""
    check_boxes(name, boxes.as_subclass(torch.Tensor) if isinstance(boxes, torch.Tensor) else boxes)
    b = (
        boxes.detach().cpu().as_subclass(torch.Tensor).double()
        if isinstance(boxes, torch.Tensor)
        else torch.as_tensor(np.asarray(boxes, dtype=np.float64))
    )
    return box_convert(b.reshape(-1, 4), "xyxy", "xywh").numpy()


def _read_image(i: int, target, prediction) -> tuple[_Image, object]:
    """Check image ``i``'s target and prediction dicts; returns them as arrays and its id."""
    for name, d, keys in (
        ("targets", target, ("boxes", "labels")),
        ("predictions", prediction, ("boxes", "scores", "labels")),
    ):
        if not isinstance(d, dict) or any(k not in d for k in keys):
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"{name}[{i}] must be a dict with keys {keys}, got {got}")
    crowd = target.get("iscrowd")
    if crowd is not None and bool(torch.as_tensor(crowd).bool().any()):
        raise ValueError(
            f"targets[{i}]['iscrowd'] marks crowd regions, which tide_errors does not handle; "
            "drop the crowd boxes (or the key) first"
        )
    gt_box = _xywh(f"targets[{i}]['boxes']", target["boxes"])
    gt_label = check_labels(f"targets[{i}]['labels']", target["labels"], len(gt_box))
    dt_box = _xywh(f"predictions[{i}]['boxes']", prediction["boxes"])
    dt_label = check_labels(f"predictions[{i}]['labels']", prediction["labels"], len(dt_box))
    score = as_float_tensor(f"predictions[{i}]['scores']", prediction["scores"])
    if score.shape != (len(dt_box),):
        raise ValueError(
            f"predictions[{i}]['scores'] must have shape [{len(dt_box)}] (one per box), "
            f"got {tuple(score.shape)}"
        )
    image_id = target.get("image_id", i)
    image_id = int(image_id.item()) if isinstance(image_id, torch.Tensor) else image_id
    image = _Image(
        gt_box,
        gt_label.cpu().numpy(),
        dt_box,
        score.detach().cpu().double().numpy(),
        dt_label.cpu().numpy(),
    )
    return image, image_id


# --------------------------------------------------------------------------- per image


class _Verdicts(NamedTuple):
    """What each kept detection and each object of one image turned out to be."""

    kept: np.ndarray  # [k] indices of the kept detections, by descending score
    kind: np.ndarray  # [k] _TP or an error code
    fixes_to: np.ndarray  # [k] for Cls/Loc errors a fix turns into a TP: the object, else -1
    claimed: np.ndarray  # [G] bool: a TP found it
    covered: np.ndarray  # [G] bool: unclaimed, but a fixable Cls or Loc error targets it


def _keep_and_order(score: np.ndarray, label: np.ndarray) -> np.ndarray:
    """COCO's detections: the top COCO_MAX_DETS[-1] per class, by descending score (ties
    keep the input order, as pycocotools' stable sorts); returns their indices."""
    index = np.arange(len(score))
    by_class = np.lexsort((index, -score, label))  # class, then descending score
    sorted_label = label[by_class]
    rank = np.arange(len(by_class)) - np.searchsorted(sorted_label, sorted_label, side="left")
    kept = by_class[rank < COCO_MAX_DETS[-1]]
    return kept[np.lexsort((kept, -score[kept]))]


def _greedy_match(iou: np.ndarray, same: np.ndarray, t_f: float) -> np.ndarray:
    """COCO's greedy matching of detections (rows, by descending score) to objects of their
    class: each claims the unclaimed object with the highest IoU >= t_f (ties: the later
    object, as pycocotools). Returns [D] the claimed object, or -1."""
    threshold = min(t_f, _COCO_MAX_THRESHOLD)
    eligible = same & (iou >= threshold)  # [D, G]
    claimed = np.zeros(iou.shape[1], dtype=bool)  # [G]
    match = np.full(len(iou), -1)
    for d in np.nonzero(eligible.any(axis=1))[0]:
        pool = np.where(eligible[d] & ~claimed, iou[d], -np.inf)  # [G]
        g = len(pool) - 1 - int(np.argmax(pool[::-1]))  # the last of the best
        if pool[g] > -np.inf:
            match[d] = g
            claimed[g] = True
    return match


def _assess_image(image: _Image, t_f: float, t_b: float) -> _Verdicts:
    """Match one image's detections and give each that is not a TP its error type."""
    kept = _keep_and_order(image.dt_score, image.dt_label)
    num_gt = len(image.gt_label)
    label = image.dt_label[kept]
    iou = coco_iou_xywh(image.dt_box[kept], image.gt_box, np.zeros(num_gt, dtype=bool))  # [k, G]
    same = label[:, None] == image.gt_label[None, :]  # [k, G]: same class
    match = _greedy_match(iou, same, t_f)
    claimed = np.zeros(num_gt, dtype=bool)
    claimed[match[match >= 0]] = True

    kind = np.where(match >= 0, _TP, _BKG)  # an image without objects: all Bkg (tidecv)
    target = np.full(len(kept), -1)
    if num_gt and len(kept):
        own = np.where(same, iou, 0.0)  # [k, G] IoU with objects of the detection's class
        other = np.where(same, 0.0, iou)  # [k, G] ... of the other classes
        own_best, other_best = own.max(axis=1), other.max(axis=1)  # [k]
        dupe_best = np.where(claimed[None, :], own, 0.0).max(axis=1)  # [k] claimed, own class
        fp = match < 0
        # tidecv's order: Loc, Cls, Dupe, Bkg, then Both (the rest). Loc comes first, so a
        # box near an object of its class is Loc even when it covers another class's object.
        loc = fp & same.any(axis=1) & (t_b <= own_best) & (own_best <= t_f)
        cls = fp & ~loc & (other_best >= t_f)
        dupe = fp & ~loc & ~cls & (dupe_best >= t_f)
        bkg = fp & ~loc & ~cls & ~dupe & (iou.max(axis=1) <= t_b)
        kind = np.select([~fp, loc, cls, dupe, bkg], [_TP, _LOC, _CLS, _DUPE, _BKG], _BOTH)
        # The object each one is blamed on (tidecv: np.argmax, the first of the best).
        own_target = np.where(same, iou, -1.0).argmax(axis=1)  # [k]
        target = np.select([loc, cls], [own_target, other.argmax(axis=1)], -1)

    # A Cls or Loc error on an unclaimed object would be a TP once fixed; of several on one
    # object only the highest-scored (the first here) is, the rest would be duplicates
    # (tidecv's BestGTMatch). Those objects are "covered": not Miss errors.
    fixes_to = np.full(len(kept), -1)
    aims = np.nonzero(((kind == _CLS) | (kind == _LOC)) & (target >= 0))[0]
    aims = aims[~claimed[target[aims]]]
    objects, first = np.unique(target[aims], return_index=True)
    fixes_to[aims[first]] = objects
    covered = np.zeros(num_gt, dtype=bool)
    covered[objects] = True
    return _Verdicts(kept, kind, fixes_to, claimed, covered)


# --------------------------------------------------------------------------- AP


def _mean_ap(point_class: np.ndarray, point_tp: np.ndarray, num_gt: np.ndarray) -> float:
    """COCO's 101-point AP per class, averaged as coco_evaluate averages AP50.

    ``point_class`` [P] (in [0, K)) and ``point_tp`` [P] describe the detections that count,
    in COCO's pooled order (descending score, then image, then input order); ``num_gt`` [K]
    the objects per class. A class with no object left scores 0 if it has detections and
    leaves the mean if it has none (tidecv's ``APDataObject.is_empty``).
    """
    num_classes = len(num_gt)
    order = np.argsort(point_class, kind="stable")  # by class, pooled order kept
    bounds = np.searchsorted(point_class[order], np.arange(num_classes + 1))
    sampled = np.zeros((num_classes, 101))  # [K, 101] precision at recall 0:0.01:1
    for k in np.nonzero((num_gt > 0) & (bounds[1:] > bounds[:-1]))[0]:
        hit = point_tp[order[bounds[k] : bounds[k + 1]]]
        tp = np.cumsum(hit, dtype=np.float64)
        fp = np.cumsum(~hit, dtype=np.float64)
        sampled[k] = coco_sampled_precision(tp / (tp + fp), tp / num_gt[k])
    counted = (num_gt > 0) | (bounds[1:] > bounds[:-1])  # [K]
    if not counted.any():
        return 0.0  # nothing left to score
    # coco_evaluate's AP50 is the mean of its [101, K] precision slice; the same layout
    # gives the same float, to the last bit.
    return float(np.mean(sampled[counted].T.ravel()))


# --------------------------------------------------------------------------- public


def tide_errors(
    targets, predictions, iou_foreground: float = 0.5, iou_background: float = 0.1
) -> TideBreakdown:
    """TIDE's error types and their dAP (Bolya et al., ECCV 2020), see the module docstring.

    Args:
        targets (list[dict]): per image, ``boxes`` Tensor[M, 4] ``(x1, y1, x2, y2)`` and
            ``labels`` Tensor[M] (integers); optional ``image_id`` (orders tied scores, as in
            :func:`~vizlib.metrics.coco_evaluate`). No crowd regions.
        predictions (list[dict]): per image, in the same order, ``boxes`` Tensor[N, 4]
            ``(x1, y1, x2, y2)``, ``scores`` Tensor[N] and ``labels`` Tensor[N].
        iou_foreground (float): :math:`t_f`, the IoU of a match (0.5: AP50).
        iou_background (float): :math:`t_b` < :math:`t_f`, the IoU at or below which a
            detection is on background.

    Returns:
        TideBreakdown: ``ap50`` (base AP at :math:`t_f` over the classes present in
        ``targets``; :data:`~vizlib.metrics.NO_GROUND_TRUTH` (-1) without any object, and
        then every dAP is 0), ``delta_ap`` (the dAP of ``Cls``, ``Loc``, ``Both``, ``Dupe``,
        ``Bkg``, ``Miss`` and of the summaries ``FP``, ``FN``; in AP units, not percent)
        and ``counts`` (detections of each type; objects for ``Miss``).
    """
    t_f = check_fraction("iou_foreground", iou_foreground)
    t_b = check_fraction("iou_background", iou_background)
    if not t_b < t_f:
        raise ValueError(
            f"iou_background must be below iou_foreground, got {t_b} and {t_f} "
            "(TIDE's defaults: 0.1 and 0.5)"
        )
    for name, value in (("targets", targets), ("predictions", predictions)):
        if not isinstance(value, (list, tuple)):
            raise ValueError(
                f"{name} must be a list of per-image dicts, got {type(value).__name__}"
            )
    if len(targets) != len(predictions):
        raise ValueError(
            "targets and predictions must have one dict per image, in the same order, got "
            f"{len(targets)} and {len(predictions)}"
        )
    read = [_read_image(i, t, p) for i, (t, p) in enumerate(zip(targets, predictions, strict=True))]
    images = [image for image, _ in read]
    image_ids = [image_id for _, image_id in read]
    if len(set(image_ids)) != len(image_ids):
        raise ValueError("targets: every image needs a distinct 'image_id'")
    # coco_evaluate pools images by sorted id: tied scores keep that order.
    image_rank = np.empty(len(images), dtype=np.int64)
    image_rank[sorted(range(len(images)), key=image_ids.__getitem__)] = np.arange(len(images))

    verdicts = [_assess_image(image, t_f, t_b) for image in images]
    cat = np.concatenate  # flatten the per-image results into one row per detection / object
    kind = cat([np.zeros(0, dtype=np.int64)] + [v.kind for v in verdicts])
    counts = {name: int((kind == code).sum()) for code, name in _KIND_NAMES.items()}
    gt_label = cat([np.zeros(0, dtype=np.int64)] + [im.gt_label for im in images])
    claimed = cat([np.zeros(0, dtype=bool)] + [v.claimed for v in verdicts])
    covered = cat([np.zeros(0, dtype=bool)] + [v.covered for v in verdicts])
    missed = ~claimed & ~covered
    counts["Miss"] = int(missed.sum())
    counts = {name: counts[name] for name in TIDE_ERROR_TYPES}
    classes = np.unique(gt_label)  # [K] COCO's categories: the labels of the ground truth
    if not len(classes):
        zeros = dict.fromkeys(TIDE_ERROR_TYPES + TIDE_SPECIAL_ERRORS, 0.0)
        return TideBreakdown(NO_GROUND_TRUTH, zeros, counts)

    def class_index(labels: np.ndarray) -> np.ndarray:
        """Position of each label in ``classes``; -1 for a label without ground truth."""
        pos = np.minimum(np.searchsorted(classes, labels), len(classes) - 1)
        return np.where(classes[pos] == labels, pos, -1)

    # One row per kept detection, in COCO's pooled order: descending score, then image.
    pairs = list(zip(images, verdicts, strict=True))
    score = cat([np.zeros(0)] + [im.dt_score[v.kept] for im, v in pairs])
    rank = cat(
        [np.zeros(0, dtype=np.int64)]
        + [np.full(len(v.kept), r) for r, v in zip(image_rank, verdicts, strict=True)]
    )
    within = cat([np.zeros(0, dtype=np.int64)] + [v.kept for v in verdicts])
    pooled = np.lexsort((within, rank, -score))
    # Per image, object indices are offset into the flat object arrays.
    offsets = np.cumsum([0] + [len(im.gt_label) for im in images])
    fixes_to = cat(
        [np.zeros(0, dtype=np.int64)]
        + [np.where(v.fixes_to >= 0, v.fixes_to + offsets[i], -1) for i, v in enumerate(verdicts)]
    )[pooled]
    kind = kind[pooled]
    dt_label = cat([np.zeros(0, dtype=np.int64)] + [im.dt_label[v.kept] for im, v in pairs])
    own_class = class_index(dt_label)[pooled]
    tp = kind == _TP
    gt_class = class_index(gt_label)
    num_gt = np.bincount(gt_class, minlength=len(classes))  # [K]

    def ap_with(point_class=own_class, point_tp=tp, drop=None, gt_count=num_gt) -> float:
        """AP after a fix: detections moved (``point_class``, ``point_tp``), dropped
        (``drop``; class -1 is dropped too: no ground truth of it) or objects removed."""
        keep = point_class >= 0 if drop is None else (point_class >= 0) & ~drop
        return _mean_ap(point_class[keep], point_tp[keep], gt_count)

    base = ap_with()
    fixed = {}
    for code, name in ((_CLS, "Cls"), (_LOC, "Loc")):
        # The oracle relabels (Cls: to its object's class) or re-boxes (Loc) the errors that
        # become TPs and suppresses those that would be duplicates.
        error = kind == code
        winner = error & (fixes_to >= 0)
        new_class = np.where(winner, gt_class[np.maximum(fixes_to, 0)], own_class)
        fixed[name] = ap_with(new_class, tp | winner, drop=error & ~winner)
    for code, name in ((_BOTH, "Both"), (_DUPE, "Dupe"), (_BKG, "Bkg")):
        fixed[name] = ap_with(drop=kind == code)  # suppressed
    fixed["Miss"] = ap_with(gt_count=num_gt - np.bincount(gt_class[missed], minlength=len(classes)))
    fixed["FP"] = ap_with(drop=~tp)  # every false positive suppressed
    fixed["FN"] = ap_with(gt_count=np.bincount(gt_class[claimed], minlength=len(classes)))
    delta = {name: fixed[name] - base for name in TIDE_ERROR_TYPES + TIDE_SPECIAL_ERRORS}
    return TideBreakdown(base, delta, counts)
