"""Data for every chapter: generated scenes (the default, no network) and opt-in real
data sets.

* ``scenes``: the generator, class names and label scheme, ``SceneConfig``, ``make_scene``;
* ``datasets``: torch ``Dataset`` views (segmentation, detection, keypoints,
  localisation, panoptic) with tv_tensors targets;
* ``transforms``: default ``transforms.v2`` augmentations;
* ``collate``: ``collate_detection`` (lists of images and targets, empty images allowed);
* ``coco_export``: COCO JSON (instances, keypoints, panoptic) for pycocotools;
* ``cache``: in-memory / on-disk scene cache;
* ``loading``: ``train_loader``, a chapter's training ``DataLoader`` (workers sized from
  the machine);
* ``real``: PASCAL VOC (opt-in download);
* ``sources``: ``DATA_SOURCES`` (scenes or VOC) and ``check_data_args``, the checks every
  chapter's data function makes;
* ``segmentation``: ``segmentation_data``, the segmentation chapters' train and
  validation sets (``SegmentationData``).
"""

from .cache import SceneCache
from .coco_export import (
    COCO_TASKS,
    coco_bboxes,
    coco_categories,
    encode_mask,
    panoptic_ids_to_rgb,
    panoptic_rgb_to_ids,
    targets_to_coco,
    to_coco,
    to_coco_results,
)
from .collate import collate_detection, collate_segmentation
from .datasets import (
    TASKS,
    UNCLAMPED_POINTS,
    DetectionScenes,
    KeypointScenes,
    LocalisationScenes,
    PanopticScenes,
    Scenes,
    SegmentationScenes,
    finish_sample,
    masks_to_tight_boxes,
    scene_to_sample,
)
from .loading import train_loader
from .real import (
    VOC_CLASSES,
    DataNotFoundError,
    voc_detection,
    voc_segmentation,
)
from .scenes import *  # noqa: F401,F403
from .scenes import __all__ as _scenes_all
from .segmentation import SegmentationData, segmentation_data
from .sources import DATA_SOURCES, check_data_args
from .transforms import train_transforms

__all__ = list(_scenes_all) + [
    "SceneCache",
    "train_loader",
    "COCO_TASKS",
    "coco_bboxes",
    "coco_categories",
    "encode_mask",
    "panoptic_ids_to_rgb",
    "panoptic_rgb_to_ids",
    "targets_to_coco",
    "to_coco",
    "to_coco_results",
    "collate_detection",
    "collate_segmentation",
    "UNCLAMPED_POINTS",
    "TASKS",
    "Scenes",
    "SegmentationScenes",
    "DetectionScenes",
    "KeypointScenes",
    "LocalisationScenes",
    "PanopticScenes",
    "finish_sample",
    "masks_to_tight_boxes",
    "scene_to_sample",
    "train_transforms",
    "VOC_CLASSES",
    "DataNotFoundError",
    "voc_detection",
    "voc_segmentation",
    "DATA_SOURCES",
    "check_data_args",
    "SegmentationData",
    "segmentation_data",
]
