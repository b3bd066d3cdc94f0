"""COCO format, the one home of the export: ground truth for the generated scenes
(:func:`to_coco`) or for any dataset's target dicts (:func:`targets_to_coco`), and
predictions in COCO's result format (:func:`to_coco_results`), so that COCO evaluation
(``vizlib.evaluate.coco.evaluate_coco``, equal to ``pycocotools``, the reference
implementation every paper reports) scores any chapter, and other tools read our data.

Both ground-truth exports write their annotations through one function, so a box, a
mask or a keypoint is written the same way whichever data it comes from.

Formats (https://cocodataset.org/#format-data and #format-results):

* ``instances``: one annotation per thing: ``bbox`` as ``[x, y, width, height]`` (COCO's
  top-left corner + size; our boxes are xyxy), ``area`` = mask pixels, ``iscrowd`` 0,
  ``segmentation`` as run-length encoding (RLE, ``pycocotools.mask.encode``);
* ``keypoints``: the same plus ``keypoints`` (a flat list ``[x1, y1, v1, ...]`` of
  ``NUM_KEYPOINTS`` triples; points with v = 0 are written as 0, 0, 0 as COCO does) and
  ``num_keypoints``; every category lists keypoint names and a skeleton;
* ``panoptic``: one PNG per image whose colour encodes a segment id
  (``id = R + 256 G + 256^2 B``) and ``segments_info`` for every thing and stuff segment.
  Thing segment ids are the instance numbers 1..N; a stuff segment's id is
  ``1000 * category_id``.

Keypoint OKS needs one constant per keypoint: set ``COCOeval.params.kpt_oks_sigmas`` to
``KEYPOINT_OKS_SIGMAS`` (``vizlib.evaluate.coco.evaluate_coco`` does it); pycocotools'
default has COCO's 17 person keypoints and would fail on our ``NUM_KEYPOINTS``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .._checks import check_choice
from ..boxes import box_convert
from .scenes import (
    KEYPOINT_NAMES,
    KEYPOINT_SKELETONS,
    NUM_KEYPOINTS,
    PALETTE,
    STUFF_CLASSES,
    STUFF_IDS,
    THING_CLASSES,
    THING_IDS,
    Scene,
)

__all__ = [
    "COCO_TASKS",
    "COCO_IOU_TYPES",
    "coco_categories",
    "to_coco",
    "targets_to_coco",
    "to_coco_results",
    "encode_mask",
    "coco_bboxes",
    "panoptic_ids_to_rgb",
    "panoptic_rgb_to_ids",
]

COCO_TASKS = ("instances", "keypoints", "panoptic")
#: What a COCO result holds and is evaluated by: boxes (box IoU), masks (mask IoU), or
#: keypoints (object keypoint similarity, OKS).
COCO_IOU_TYPES = ("bbox", "segm", "keypoints")


def coco_categories(task: str = "instances") -> list[dict]:
    """COCO ``categories`` for a task: things (ids 1..5); panoptic adds stuff (6..8)."""
    check_choice("task", task, COCO_TASKS)
    cats = []
    for cid, name in zip(THING_IDS, THING_CLASSES, strict=True):
        cat = {"id": cid, "name": name, "supercategory": "shape"}
        if task == "keypoints":
            names = list(KEYPOINT_NAMES[name])
            cat["keypoints"] = names + [f"unused_{k}" for k in range(len(names), NUM_KEYPOINTS)]
            cat["skeleton"] = KEYPOINT_SKELETONS[name]
        if task == "panoptic":
            cat.update(isthing=1, color=PALETTE[cid].tolist())
        cats.append(cat)
    if task == "panoptic":
        for cid, name in zip(STUFF_IDS, STUFF_CLASSES, strict=True):
            cats.append(
                {
                    "id": cid,
                    "name": name,
                    "supercategory": "stuff",
                    "isthing": 0,
                    "color": PALETTE[cid].tolist(),
                }
            )
    return cats


def coco_bboxes(boxes) -> list[list[float]]:
    """Boxes ``(N, 4)`` xyxy -> COCO ``bbox`` lists ``[x, y, width, height]``
    (through ``vizlib.boxes.box_convert``, the one home of format conversions)."""
    xywh = box_convert(
        torch.as_tensor(np.asarray(boxes, dtype=np.float64)).reshape(-1, 4), "xyxy", "xywh"
    )
    return [[round(float(v), 4) for v in row] for row in xywh.tolist()]


def encode_mask(mask) -> dict:
    """A bool ``(H, W)`` mask -> COCO RLE dict with ``counts`` as a str (JSON-ready)."""
    from pycocotools import mask as mask_utils

    m = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask)
    if m.ndim != 2:
        raise ValueError(f"mask must have shape [H, W], got {m.shape}")
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def panoptic_ids_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Segment ids ``(H, W)`` -> ``uint8 (H, W, 3)`` with id = R + 256 G + 256^2 B."""
    ids = np.asarray(ids, dtype=np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 256**2 % 256], axis=-1).astype(np.uint8)


def panoptic_rgb_to_ids(rgb: np.ndarray) -> np.ndarray:
    """Inverse of ``panoptic_ids_to_rgb``: ``(H, W, 3)`` -> int64 ``(H, W)``."""
    rgb = np.asarray(rgb, dtype=np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256**2 * rgb[..., 2]


def _scenes_of(source) -> list[Scene]:
    if hasattr(source, "scenes") and callable(source.scenes):
        return list(source.scenes())
    if isinstance(source, Scene):
        return [source]
    scenes = list(source)
    if not all(isinstance(s, Scene) for s in scenes):
        raise ValueError("source must be a Scenes dataset or an iterable of Scene objects")
    return scenes


def _image_entry(scene: Scene) -> dict:
    h, w = scene.image.shape[:2]
    return {
        "id": int(scene.index),
        "file_name": f"{scene.index:06d}.png",
        "width": int(w),
        "height": int(h),
    }


def _numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().as_subclass(torch.Tensor).numpy()
    return np.asarray(x)


def _annotations(
    image_id: int, boxes, labels, masks=None, keypoints=None, first_id: int = 1
) -> list[dict]:
    """COCO annotations of one image's objects, numbered from ``first_id``.

    ``boxes`` ``[N, 4]`` xyxy, ``labels`` ``[N]``, optional ``masks`` ``[N, H, W]`` bool
    (``area`` is then the mask's pixel count and ``segmentation`` its RLE; otherwise the
    box area) and ``keypoints`` ``[N, K, 3]``.
    """
    bboxes = coco_bboxes(boxes)
    labels = _numpy(labels).reshape(-1)
    masks = None if masks is None else _numpy(masks).astype(bool)
    keypoints = None if keypoints is None else _numpy(keypoints).astype(np.float64)
    anns = []
    for i, bbox in enumerate(bboxes):
        ann = {
            "id": first_id + i,
            "image_id": int(image_id),
            "category_id": int(labels[i]),
            "bbox": bbox,
            "iscrowd": 0,
            "area": float(masks[i].sum()) if masks is not None else bbox[2] * bbox[3],
        }
        if masks is not None:
            ann["segmentation"] = encode_mask(masks[i])
        if keypoints is not None:
            kp = keypoints[i].copy()
            kp[kp[:, 2] == 0] = 0  # COCO writes an unlabelled point as (0, 0, 0)
            ann["keypoints"] = [round(float(v), 3) for v in kp.ravel()]
            ann["num_keypoints"] = int((kp[:, 2] > 0).sum())
        anns.append(ann)
    return anns


def targets_to_coco(
    targets: Sequence[dict],
    image_ids: Sequence[int],
    sizes: Sequence[tuple[int, int]],
    class_names: Sequence[str] | None = None,
    keypoints: bool = False,
) -> dict:
    """COCO ground truth from torchvision-style target dicts (for any dataset).

    Args:
        targets (list of dict): ``boxes`` ``(N, 4)`` xyxy, ``labels`` ``(N,)``; optional
            ``masks`` ``(N, H, W)`` bool (areas and ``segm`` AP) and ``keypoints``
            ``(N, K, 3)``.
        image_ids (list of int): the COCO id of each image (unique).
        sizes (list of (int, int)): each image's (height, width).
        class_names (sequence of str, optional): name of label ``i`` at index ``i``.
        keypoints (bool): write ``keypoints`` and ``num_keypoints``.

    Returns:
        dict: ``images``, ``annotations``, ``categories`` (the labels present, with their
        names).
    """
    if not len(targets) == len(image_ids) == len(sizes):
        raise ValueError(
            f"{len(targets)} targets, {len(image_ids)} image ids and {len(sizes)} sizes"
        )
    if len(set(image_ids)) != len(image_ids):
        raise ValueError("image ids must be unique")
    coco = {"images": [], "annotations": [], "categories": []}
    seen: set[int] = set()
    for i, (t, image_id, (h, w)) in enumerate(zip(targets, image_ids, sizes, strict=True)):
        if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
            raise ValueError(f"targets[{i}] must be a dict with 'boxes' (N, 4) and 'labels' (N,)")
        coco["images"].append({"id": int(image_id), "width": int(w), "height": int(h)})
        boxes = _numpy(t["boxes"]).reshape(-1, 4)
        anns = _annotations(
            image_id,
            boxes,
            t["labels"],
            t.get("masks"),
            t["keypoints"] if keypoints else None,
            first_id=len(coco["annotations"]) + 1,
        )
        coco["annotations"].extend(anns)
        seen.update(a["category_id"] for a in anns)
    for cid in sorted(seen):
        name = class_names[cid] if class_names is not None and cid < len(class_names) else str(cid)
        coco["categories"].append({"id": cid, "name": name})
    return coco


def to_coco(source, task: str = "instances", out_dir=None, write_images: bool = False) -> dict:
    """COCO ground truth for generated scenes.

    Args:
        source: a ``Scenes`` dataset (its raw, un-augmented scenes are used) or an
            iterable of ``Scene``. Image ids are the scenes' indices (so they match the
            datasets' ``target["image_id"]``); they must be unique.
        task (str): ``instances``, ``keypoints`` or ``panoptic``.
        out_dir (str or Path, optional): where to write ``{task}.json`` (and, for
            panoptic, the PNGs under ``panoptic/``; required for panoptic).
        write_images (bool): also write the RGB images as PNGs under ``images/``.

    Returns:
        dict: the COCO dictionary (``images``, ``annotations``, ``categories``).
    """
    check_choice("task", task, COCO_TASKS)
    if task == "panoptic" and out_dir is None:
        raise ValueError("panoptic export writes PNG files: pass out_dir")
    scenes = _scenes_of(source)
    ids = [s.index for s in scenes]
    if len(set(ids)) != len(ids):
        raise ValueError("scenes must have unique indices (they become COCO image ids)")
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    coco = {
        "info": {"description": f"vizlib generated scenes ({task})"},
        "images": [_image_entry(s) for s in scenes],
        "annotations": [],
        "categories": coco_categories(task),
    }
    next_id = 1
    for scene in scenes:
        if write_images:
            _write_png(out, "images", f"{scene.index:06d}.png", scene.image)
        if task == "panoptic":
            coco["annotations"].append(_panoptic_annotation(scene, out))
            continue
        anns = _annotations(
            scene.index,
            scene.boxes.reshape(-1, 4),
            scene.labels,
            scene.masks,
            scene.keypoints if task == "keypoints" else None,
            first_id=next_id,
        )
        coco["annotations"].extend(anns)
        next_id += len(anns)
    if out is not None:
        (out / f"{task}.json").write_text(json.dumps(coco))
    return coco


def _write_png(out: Path | None, folder: str, name: str, array: np.ndarray) -> None:
    from PIL import Image

    if out is None:
        raise ValueError("writing images needs out_dir")
    (out / folder).mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(out / folder / name)


def _panoptic_annotation(scene: Scene, out: Path) -> dict:
    segment_ids = np.zeros(scene.semantic.shape, dtype=np.int64)
    segments = []
    for i, mask in enumerate(scene.masks):
        segment_ids[mask] = i + 1
        segments.append((i + 1, int(scene.labels[i]), mask))
    for stuff_id in STUFF_IDS:
        region = (scene.semantic == stuff_id) & (scene.instances == 0)
        if region.any():
            segment_ids[region] = 1000 * stuff_id
            segments.append((1000 * stuff_id, stuff_id, region))
    info = []
    for seg_id, cat_id, region in segments:
        rows, cols = np.flatnonzero(region.any(1)), np.flatnonzero(region.any(0))
        box = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
        info.append(
            {
                "id": int(seg_id),
                "category_id": cat_id,
                "area": int(region.sum()),
                "bbox": coco_bboxes([box])[0],
                "iscrowd": 0,
            }
        )
    name = f"{scene.index:06d}.png"
    _write_png(out, "panoptic", name, panoptic_ids_to_rgb(segment_ids))
    return {"image_id": int(scene.index), "file_name": name, "segments_info": info}


def to_coco_results(
    predictions, image_ids, iou_type: str = "bbox", mask_threshold: float = 0.5
) -> list[dict]:
    """Model outputs -> COCO result list (what ``COCO.loadRes`` reads).

    Args:
        predictions (list of dict): one per image, torchvision style: ``boxes``
            ``(N, 4)`` xyxy, ``scores`` ``(N,)``, ``labels`` ``(N,)``; ``masks``
            ``(N, H, W)`` or ``(N, 1, H, W)`` bool or probabilities (for ``segm``);
            ``keypoints`` ``(N, K, 2 or 3)`` (for ``keypoints``).
        image_ids (list of int): the COCO image id of each prediction.
        iou_type (str): ``bbox``, ``segm`` or ``keypoints``.
        mask_threshold (float): probabilities above it are inside the mask.

    Returns:
        list of dict: one result per detection.
    """
    check_choice("iou_type", iou_type, COCO_IOU_TYPES)
    if len(predictions) != len(image_ids):
        raise ValueError(f"{len(predictions)} predictions but {len(image_ids)} image ids")
    results = []
    for pred, image_id in zip(predictions, image_ids, strict=True):
        for key in ("boxes", "scores", "labels"):
            if key not in pred:
                raise ValueError(f"each prediction needs {key!r}")
        boxes, scores, labels = (
            _numpy(pred["boxes"]).reshape(-1, 4),
            _numpy(pred["scores"]),
            _numpy(pred["labels"]),
        )
        masks = keypoints = None
        if iou_type == "segm":
            masks = _numpy(pred["masks"])
            masks = masks.reshape(len(boxes), *masks.shape[-2:])
            masks = masks > mask_threshold if masks.dtype != bool else masks
        if iou_type == "keypoints":
            keypoints = _numpy(pred["keypoints"])
            if keypoints.ndim < 2 or keypoints.shape[-1] not in (2, 3):
                raise ValueError(f"keypoints must have shape [N, K, 2 or 3], got {keypoints.shape}")
            keypoints = keypoints.reshape(len(boxes), *keypoints.shape[-2:])
        bboxes = coco_bboxes(boxes)
        for i in range(len(boxes)):
            res = {
                "image_id": int(image_id),
                "category_id": int(labels[i]),
                "score": float(scores[i]),
            }
            res["bbox"] = bboxes[i]
            if masks is not None:
                res["segmentation"] = encode_mask(masks[i])
            if keypoints is not None:
                kp = keypoints[i]
                if kp.shape[-1] == 2:  # COCO scores predicted points with v = 1
                    kp = np.concatenate([kp, np.ones((len(kp), 1))], axis=1)
                res["keypoints"] = [float(v) for v in kp.ravel()]
            results.append(res)
    return results
