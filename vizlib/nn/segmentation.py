"""What the segmentation chapters share around their models: the data, the scores, the
timings and the results table.

* :func:`segmentation_data`: the generated scenes (things and stuff, the default: no
  network) or PASCAL VOC 2012 (opt-in download), as train and validation datasets of
  ``(image [3, H, W], mask [H, W] int64)`` of one fixed size;
* :func:`score_segmenter`: a trained model's mIoU, pixel accuracy, per-class IoU, trimap
  (boundary band) mIoU, parameters and inference time, in one dict;
* :func:`inference_ms`: milliseconds per image for a forward pass;
* :class:`ResultsTable`: rows of numbers that show as an HTML table in a notebook.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .._checks import check_positive_int
from .blocks import check_image_batch, count_parameters

__all__ = ["DATA_SOURCES", "SegmentationData", "segmentation_data", "score_segmenter",
           "inference_ms", "ResultsTable"]

DATA_SOURCES = ("scenes", "voc")


def _check_data_args(source, image_size, train_images, val_images, seed, download):
    """The checks every chapter's data function makes; returns the four ints, checked.
    (Shared with :func:`vizlib.nn.localisation.localisation_data`.)"""
    if source not in DATA_SOURCES:
        raise ValueError(f"source must be one of {DATA_SOURCES}, got {source!r}")
    if not isinstance(download, bool):
        raise ValueError(f"download must be True or False, got {download!r}")
    return (check_positive_int("image_size", image_size),
            check_positive_int("train_images", train_images),
            check_positive_int("val_images", val_images),
            check_positive_int("seed", seed, allow_zero=True))


@dataclass
class SegmentationData:
    """Train and validation sets of one segmentation task, and what a model needs to know.

    Attributes:
        train, val (Dataset): ``(image Tensor[3, H, W] float in [0, 1], mask Tensor[H, W] int64)``.
        num_classes (int): classes the model scores.
        class_names (tuple[str, ...]): their names.
        ignore_index (int): target value of pixels not to learn from or count (255).
        source (str): ``"scenes"`` or ``"voc"``.
    """

    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset
    num_classes: int
    class_names: tuple[str, ...]
    ignore_index: int = 255
    source: str = "scenes"


class _Resized(torch.utils.data.Dataset):
    """A real data set resized to ``size x size`` (masks by nearest neighbour), first ``n`` items."""

    def __init__(self, base, size: int, n: int | None):
        from torchvision.transforms import v2

        self.base, self.n = base, len(base) if n is None else min(n, len(base))
        self.resize = v2.Resize((size, size), antialias=True)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        image, mask = self.resize(*self.base[index])  # tv_tensors.Mask is resized with NEAREST
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long()


def segmentation_data(source: str = "scenes", *, image_size: int = 64, train_images: int = 2000,
                      val_images: int = 200, seed: int = 0, root: str | Path = "data",
                      download: bool = False) -> SegmentationData:
    """The data of the segmentation chapters.

    Args:
        source (str): ``"scenes"``: generated scenes, things over stuff (9 classes:
            background, 5 things, 3 stuff; ``vizlib.data.SegmentationScenes``), train and
            validation drawn from different seeds. ``"voc"``: PASCAL VOC 2012
            segmentation (21 classes, 255 = void), ``train`` and ``val`` splits, resized
            to ``image_size`` squares.
        image_size (int): side of the square images.
        train_images, val_images (int): set sizes (VOC: at most the split's size).
        seed (int): scenes only: train uses ``seed + 1``, validation ``seed + 2``.
        root (str or Path): VOC only: the folder that holds (or will hold) ``VOCdevkit/``.
        download (bool): VOC only: fetch it (about 2 GB) if missing.

    Returns:
        SegmentationData

    Raises:
        ValueError: a bad argument.
        vizlib.data.real.DataNotFoundError: ``"voc"`` without its files and without
            ``download=True`` (or offline), with what to do.
    """
    image_size, train_images, val_images, seed = _check_data_args(
        source, image_size, train_images, val_images, seed, download)
    if source == "scenes":
        from ..data import CLASS_NAMES, NUM_SEMANTIC_CLASSES, SceneConfig, SegmentationScenes

        config = SceneConfig(image_size=image_size)
        return SegmentationData(
            SegmentationScenes(train_images, seed=seed + 1, config=config),
            SegmentationScenes(val_images, seed=seed + 2, config=config),
            NUM_SEMANTIC_CLASSES, tuple(CLASS_NAMES), 255, "scenes")
    if source == "voc":
        from ..data.real import VOC_CLASSES, voc_segmentation

        train = voc_segmentation(root, "2012", "train", download=download)
        val = voc_segmentation(root, "2012", "val", download=download)
        return SegmentationData(_Resized(train, image_size, train_images),
                                _Resized(val, image_size, val_images),
                                len(VOC_CLASSES), tuple(VOC_CLASSES), 255, "voc")
    raise AssertionError(source)  # pragma: no cover - checked above


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def inference_ms(model: torch.nn.Module, images: torch.Tensor, repeats: int = 3) -> float:
    """Milliseconds per image of ``model(images)`` (eval mode, no gradients), after a warm-up.

    Args:
        model (nn.Module): on its device; left in the mode it was in.
        images (Tensor[N, 3, H, W]): a batch (moved to the model's device).
        repeats (int): timed passes over the batch.

    Returns:
        float: wall-clock milliseconds per image, averaged over ``repeats`` passes
        (on a GPU, after synchronising, so the kernels' time is counted).
    """
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_image_batch(images)
    if len(images) == 0:
        raise ValueError("images must hold at least one image, got an empty batch")
    repeats = check_positive_int("repeats", repeats)
    tensor = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()), None)
    device = tensor.device if tensor is not None else torch.device("cpu")
    images = images.to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(images)  # warm-up: allocations, kernel selection
            _sync(device)
            start = time.perf_counter()
            for _ in range(repeats):
                model(images)
            _sync(device)
    finally:
        model.train(was_training)
    return 1000 * (time.perf_counter() - start) / (repeats * len(images))


def score_segmenter(model: torch.nn.Module, data: SegmentationData, *, widths: Sequence[int] = (1, 2, 4),
                    batch_size: int = 50, timing_images: int = 16, device=None) -> dict:
    """Everything the chapters report about one trained model, on ``data.val``.

    Args:
        model (nn.Module): ``[N, 3, H, W] -> logits [N, num_classes, H, W]`` (or a dict
            with them under ``"out"``); left in the mode it was in.
        data (SegmentationData): scored on ``data.val``, ``data.ignore_index`` not counted.
        widths (sequence of int): half-widths (pixels) of the boundary bands of the
            trimap mIoU (Chen et al., 2017).
        batch_size (int): evaluation batch size.
        timing_images (int): images of the batch that :func:`inference_ms` times.
        device: where to evaluate; default: the model's device.

    Returns:
        dict with ``"mIoU"``, ``"pixel_accuracy"``, ``"trimap"`` (dict width -> mIoU in
        the band of that half-width around the true boundaries), ``"per_class_iou"``
        (dict name -> IoU), ``"parameters"`` (trainable), ``"ms_per_image"`` and
        ``"evaluation"`` (the :class:`vizlib.evaluate.Evaluation`, for galleries).
    """
    from ..evaluate import evaluate_segmentation
    from ..metrics.boundary import TrimapMetric

    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(data, SegmentationData):
        raise ValueError(f"data must be a SegmentationData (from segmentation_data), got {type(data).__name__}")
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or not widths:
        raise ValueError(f"widths must be a non-empty sequence of band half-widths (ints >= 0), got {widths!r}")
    widths = [check_positive_int("widths", w, allow_zero=True) for w in widths]
    batch_size = check_positive_int("batch_size", batch_size)
    timing_images = check_positive_int("timing_images", timing_images)
    evaluation = evaluate_segmentation(model, data.val, data.num_classes, ignore_index=data.ignore_index,
                                       batch_size=batch_size, device=device, class_names=data.class_names)
    trimap = {}
    masks = [data.val[i][1] for i in range(len(data.val))]
    for width in widths:
        metric = TrimapMetric(data.num_classes, width, data.ignore_index)
        for pred, mask in zip(evaluation.predictions, masks, strict=True):
            metric.update(pred.long(), mask)
        trimap[width] = metric.compute().miou
    images = torch.stack([data.val[i][0] for i in range(min(timing_images, len(data.val)))])
    return {
        "mIoU": evaluation.metrics["mIoU"],
        "pixel_accuracy": evaluation.metrics["pixel_accuracy"],
        "trimap": trimap,
        "per_class_iou": evaluation.details["per_class_iou"],
        "parameters": count_parameters(model, trainable_only=True),
        "ms_per_image": inference_ms(model, images),
        "evaluation": evaluation,
    }


class ResultsTable:
    """Rows of results that show as an HTML table in a notebook and as text elsewhere.

    Args:
        rows (sequence of dict): one dict per row, same keys; numbers are formatted
            with ``formats[key]`` (a format spec such as ``".3f"``) or ``str``.
        formats (dict, optional): format spec per column. A missing value shows empty.
    """

    def __init__(self, rows: Sequence[dict], formats: dict | None = None):
        if isinstance(rows, (str, bytes, dict)) or not isinstance(rows, Sequence):
            raise ValueError(f"rows must be a list of dicts, got {type(rows).__name__}")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ValueError(f"rows[{i}] must be a dict (column -> value), got {type(row).__name__}")
        if formats is not None and not isinstance(formats, dict):
            raise ValueError(f"formats must be a dict (column -> format spec), got {type(formats).__name__}")
        self.rows = [dict(r) for r in rows]
        # every column that any row has, in the order they first appear
        self.columns = list(dict.fromkeys(k for r in self.rows for k in r))
        self.formats = dict(formats or {})
        for key, spec in self.formats.items():
            if not isinstance(spec, str):
                raise ValueError(f"formats[{key!r}] must be a format spec like '.3f', got {spec!r}")
            try:
                format(1.5, spec)
            except ValueError:
                raise ValueError(f"formats[{key!r}] = {spec!r} is not a format spec for numbers") from None

    def _cell(self, key: str, value) -> str:
        spec = self.formats.get(key)
        if spec and isinstance(value, (int, float)) and not isinstance(value, bool):
            return format(value, spec)
        return str(value)

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        if not self.rows:
            return "(no rows)"
        cells = [[self._cell(k, r.get(k, "")) for k in self.columns] for r in self.rows]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(self.columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        if not self.rows:
            return "<p>(no rows)</p>"
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(self._cell(k, r.get(k, '')))}</td>" for k in self.columns)
            + "</tr>" for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
