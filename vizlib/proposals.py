"""Region proposals: selective search, and how many objects a list of proposals finds.

R-CNN (Girshick et al., 2014) and Fast R-CNN (Girshick, 2015) do not look everywhere:
they classify a few thousand *proposals*, boxes that probably hold an object, made by
selective search (Uijlings et al., 2013) before the network sees the image:

1. over-segment the image into small regions of similar colour with the graph-based
   segmentation of Felzenszwalb & Huttenlocher (2004) (``skimage.segmentation.felzenszwalb``);
2. merge, again and again, the two *neighbouring* regions that are most similar by
   colour, texture, size and fill (:func:`region_similarity`) until one region is left;
3. every region ever made (the initial ones and each merge) gives a box: objects at every
   scale appear somewhere in the hierarchy;
4. rank the boxes of all the groupings together: a box made late in the hierarchy (a big
   region) comes early, with a random factor so that the strategies interleave.

:func:`proposal_recall` measures the proposals: the share of the objects that some
proposal among the first ``k`` covers at IoU >= 0.5 (or 0.7), as ``k`` grows.
:class:`CachedProposals` runs a proposer once per image and remembers the boxes.
"""

from __future__ import annotations

import hashlib
import heapq
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from vizlib._checks import check_boxes, check_fraction, check_number, check_positive_int
from vizlib.boxes import box_iou

__all__ = [
    "COLOUR_SPACES",
    "SIMILARITIES",
    "CachedProposals",
    "initial_regions",
    "proposal_recall",
    "region_features",
    "region_similarity",
    "selective_search",
]

#: Colour spaces selective search can group in (Uijlings et al. use several for diversity).
COLOUR_SPACES = ("rgb", "hsv", "lab")
#: The four similarities, by letter: colour, texture, size, fill.
SIMILARITIES = {"C": "colour", "T": "texture", "S": "size", "F": "fill"}

_COLOUR_BINS = 25  # per channel (the paper's 25)
_TEXTURE_BINS = 10  # per orientation and channel (the paper's 10)
_ORIENTATIONS = 8  # Gaussian derivatives in 8 orientations (the paper's), sigma = 1


# -- input ----------------------------------------------------------------------------------


def _as_hwc(image) -> np.ndarray:
    """An RGB image ``[3, H, W]`` (tensor or array, float in [0, 1] or uint8) as float64
    ``[H, W, 3]`` in [0, 1]."""
    if isinstance(image, torch.Tensor):
        array = image.detach().cpu().as_subclass(torch.Tensor).numpy()
    elif isinstance(image, np.ndarray):
        array = image
    else:
        raise ValueError(f"image must be a tensor or array [3, H, W], got {type(image).__name__}")
    if array.ndim != 3 or array.shape[0] != 3:
        raise ValueError(
            f"image must have shape [3, H, W] (RGB, channels first), got {array.shape}"
        )
    if array.shape[1] < 2 or array.shape[2] < 2:
        raise ValueError(f"image must be at least 2 x 2 pixels, got {array.shape[1:]}")
    if array.dtype == np.uint8:
        array = array / 255.0
    elif not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"image must be float in [0, 1] or uint8, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError("image must be finite, but it holds NaN or inf")
    if array.min() < 0 or array.max() > 1:
        raise ValueError(
            f"a float image must lie in [0, 1], got values from {array.min():.3g} to {array.max():.3g}"
        )
    return np.ascontiguousarray(array.transpose(1, 2, 0))


def _convert(rgb: np.ndarray, space: str) -> np.ndarray:
    """``[H, W, 3]`` in [0, 1] to ``space``, each channel scaled to [0, 1]."""
    from skimage import color

    if space == "rgb":
        return rgb
    if space == "hsv":
        return color.rgb2hsv(rgb)
    lab = color.rgb2lab(rgb)  # L in [0, 100], a and b in about [-128, 127]
    return np.clip((lab + np.array([0.0, 128.0, 128.0])) / np.array([100.0, 255.0, 255.0]), 0, 1)


# -- step 1: initial regions ------------------------------------------------------------------


def initial_regions(
    image, scale: float = 100.0, sigma: float = 0.8, min_size: int = 10, colour_space: str = "rgb"
) -> np.ndarray:
    """Felzenszwalb & Huttenlocher's graph-based segmentation: the regions grouping starts from.

    Args:
        image (Tensor[3, H, W]): RGB, float in [0, 1] (or uint8).
        scale (float): ``k``, > 0: larger gives larger regions.
        sigma (float): Gaussian smoothing before segmenting, >= 0.
        min_size (int): smaller regions are merged into a neighbour, >= 1.
        colour_space (str): one of :data:`COLOUR_SPACES`.

    Returns:
        ndarray[H, W]: int64 region index of each pixel, ``0 .. R - 1``.
    """
    from skimage.segmentation import felzenszwalb

    rgb = _as_hwc(image)
    scale = check_number("scale", scale, low=0, strict=True)
    sigma = check_number("sigma", sigma, low=0)
    min_size = check_positive_int("min_size", min_size)
    if colour_space not in COLOUR_SPACES:
        raise ValueError(f"colour_space must be one of {COLOUR_SPACES}, got {colour_space!r}")
    pixels = _convert(rgb, colour_space)
    labels = felzenszwalb(pixels, scale=scale, sigma=sigma, min_size=min_size, channel_axis=-1)
    _, labels = np.unique(labels, return_inverse=True)  # 0 .. R - 1, no gaps
    return labels.reshape(rgb.shape[:2]).astype(np.int64)


# -- step 2: region features and similarities ---------------------------------------------------


def _texture_bins(pixels: np.ndarray) -> np.ndarray:
    """Per pixel, the texture-histogram bin of each (channel, orientation): ``[H, W, 3 * 8]``.

    Gaussian derivatives (sigma 1) in 8 orientations per colour channel (Uijlings et al.);
    a derivative and its opposite are the positive and negative parts of one response.
    """
    from scipy.ndimage import gaussian_filter

    features = []
    for c in range(pixels.shape[2]):
        gy = gaussian_filter(pixels[..., c], 1.0, order=(1, 0))  # d/dy
        gx = gaussian_filter(pixels[..., c], 1.0, order=(0, 1))  # d/dx
        for k in range(_ORIENTATIONS):
            angle = 2 * np.pi * k / _ORIENTATIONS
            features.append(np.maximum(np.cos(angle) * gx + np.sin(angle) * gy, 0))
    response = np.stack(features, axis=-1)  # [H, W, 24]
    top = response.max(axis=(0, 1), keepdims=True)
    response = response / np.where(top > 0, top, 1.0)  # each response in [0, 1]
    return np.minimum((response * _TEXTURE_BINS).astype(np.int64), _TEXTURE_BINS - 1)


def _histograms(bins: np.ndarray, labels: np.ndarray, regions: int, nbins: int) -> np.ndarray:
    """L1-normalised histograms ``[R, F * nbins]`` of ``bins [H, W, F]`` within each region."""
    features = bins.shape[-1]
    flat = labels.reshape(-1, 1) * (features * nbins) + np.arange(features) * nbins  # [HW, F]
    flat = (flat + bins.reshape(-1, features)).ravel()
    counts = np.bincount(flat, minlength=regions * features * nbins).astype(np.float64)
    counts = counts.reshape(regions, features * nbins)
    return counts / counts.sum(axis=1, keepdims=True)


def region_features(pixels: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """What selective search measures of each initial region.

    Args:
        pixels (ndarray[H, W, 3]): the image in the grouping's colour space, in [0, 1].
        labels (ndarray[H, W]): region index of each pixel, ``0 .. R - 1``.

    Returns:
        dict: ``"colour"`` ``[R, 75]`` and ``"texture"`` ``[R, 240]`` L1-normalised
        histograms, ``"size"`` ``[R]`` pixels, ``"boxes"`` ``[R, 4]`` ``(x1, y1, x2, y2)``
        pixel edges (a region of one pixel at (x, y) has the box (x, y, x + 1, y + 1)).
    """
    regions = int(labels.max()) + 1
    colour_bins = np.minimum((pixels * _COLOUR_BINS).astype(np.int64), _COLOUR_BINS - 1)
    ys, xs = np.indices(labels.shape)
    flat = labels.ravel()
    boxes = np.empty((regions, 4))
    boxes[:, 0] = np.full(regions, np.inf)
    np.minimum.at(boxes[:, 0], flat, xs.ravel())
    boxes[:, 1] = np.inf
    np.minimum.at(boxes[:, 1], flat, ys.ravel())
    boxes[:, 2] = -np.inf
    np.maximum.at(boxes[:, 2], flat, xs.ravel() + 1)
    boxes[:, 3] = -np.inf
    np.maximum.at(boxes[:, 3], flat, ys.ravel() + 1)
    return {
        "colour": _histograms(colour_bins, labels, regions, _COLOUR_BINS),
        "texture": _histograms(_texture_bins(pixels), labels, regions, _TEXTURE_BINS),
        "size": np.bincount(flat, minlength=regions).astype(np.float64),
        "boxes": boxes,
    }


def _neighbours(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of regions that touch (4-connectivity)."""
    pairs = []
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        differ = a != b
        pairs.append(np.stack([np.minimum(a, b)[differ], np.maximum(a, b)[differ]], axis=1))
    both = np.unique(np.concatenate(pairs), axis=0)
    return {(int(i), int(j)) for i, j in both}


def region_similarity(a: dict, b: dict, image_area: float, measures: str = "CTSF") -> float:
    """Selective search's similarity of two regions: the sum of the chosen measures.

    With ``A``, ``B`` the regions and ``im`` the image (Uijlings et al., 2013, sec. 3.2):

    * colour ``C``: ``sum_k min(c_A[k], c_B[k])``, histogram intersection (25 bins per channel);
    * texture ``T``: the same on the gradient histograms;
    * size ``S``: ``1 - (size(A) + size(B)) / size(im)``: merge small regions first, so
      that regions of every size appear everywhere in the image;
    * fill ``F``: ``1 - (size(box(A u B)) - size(A) - size(B)) / size(im)``: merge regions
      that fill each other's gaps (a box around both with little else in it).

    Args:
        a, b (dict): ``"colour"``, ``"texture"`` histograms, ``"size"`` (pixels) and
            ``"box"`` ``(x1, y1, x2, y2)`` of each region.
        image_area (float): ``size(im)`` in pixels, > 0.
        measures (str): letters of :data:`SIMILARITIES`, e.g. ``"CTSF"`` or ``"TSF"``.

    Returns:
        float: the similarity, in ``[0, len(measures)]``.
    """
    total = 0.0
    if "C" in measures:
        total += float(np.minimum(a["colour"], b["colour"]).sum())
    if "T" in measures:
        total += float(np.minimum(a["texture"], b["texture"]).sum())
    if "S" in measures:
        total += 1.0 - (a["size"] + b["size"]) / image_area
    if "F" in measures:
        ax1, ay1, ax2, ay2 = a["box"]
        bx1, by1, bx2, by2 = b["box"]
        union = (max(ax2, bx2) - min(ax1, bx1)) * (max(ay2, by2) - min(ay1, by1))
        total += 1.0 - (union - a["size"] - b["size"]) / image_area
    return total


def _check_measures(measures) -> str:
    if not isinstance(measures, str) or not measures or set(measures) - set(SIMILARITIES):
        raise ValueError(
            f"a strategy's similarity must be letters of {''.join(SIMILARITIES)} "
            f"(colour, texture, size, fill), e.g. 'CTSF', got {measures!r}"
        )
    return measures


# -- step 3: hierarchical grouping ----------------------------------------------------------------


def _similarities(
    hist: dict,
    size: np.ndarray,
    boxes: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    image_area: float,
    measures: str,
) -> np.ndarray:
    """:func:`region_similarity` of the region pairs ``(i[k], j[k])`` at once: ``[K]``."""
    total = np.zeros(len(i))
    if "C" in measures:
        total += np.minimum(hist["colour"][i], hist["colour"][j]).sum(axis=1)
    if "T" in measures:
        total += np.minimum(hist["texture"][i], hist["texture"][j]).sum(axis=1)
    if "S" in measures:
        total += 1.0 - (size[i] + size[j]) / image_area
    if "F" in measures:
        lo = np.minimum(boxes[i, :2], boxes[j, :2])  # [K, 2]
        hi = np.maximum(boxes[i, 2:], boxes[j, 2:])  # [K, 2]
        union = (hi - lo).prod(axis=1)  # [K]: area of the box around both
        total += 1.0 - (union - size[i] - size[j]) / image_area
    return total


def _group(
    features: dict, pairs: set[tuple[int, int]], image_area: float, measures: str
) -> np.ndarray:
    """Greedy hierarchical grouping; the box of every region in the order it was made.

    Returns:
        ndarray[2R - 1, 4]: the ``R`` initial regions' boxes, then one per merge (the
        last is the whole image, or the last of its disconnected parts).
    """
    r = len(features["size"])
    most = 2 * r - 1  # R initial regions and at most R - 1 merges
    hist = {}
    for name in ("colour", "texture"):
        hist[name] = np.zeros((most, features[name].shape[1]))
        hist[name][:r] = features[name]
    size = np.zeros(most)
    size[:r] = features["size"]
    boxes = np.zeros((most, 4))
    boxes[:r] = features["boxes"]
    adjacent = {k: set() for k in range(r)}
    for a, b in pairs:
        adjacent[a].add(b)
        adjacent[b].add(a)
    alive = np.zeros(most, dtype=bool)
    alive[:r] = True
    # a max-heap of (-similarity, i, j); pairs whose regions were merged away are skipped
    first = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    sims = _similarities(hist, size, boxes, first[:, 0], first[:, 1], image_area, measures)
    heap = list(zip((-sims).tolist(), first[:, 0].tolist(), first[:, 1].tolist(), strict=True))
    heapq.heapify(heap)
    t = r
    while heap:
        _, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue
        alive[i] = alive[j] = False
        size[t] = size[i] + size[j]
        for name in hist:  # histograms of the union: size-weighted means (the paper's)
            hist[name][t] = (size[i] * hist[name][i] + size[j] * hist[name][j]) / size[t]
        boxes[t, :2] = np.minimum(boxes[i, :2], boxes[j, :2])
        boxes[t, 2:] = np.maximum(boxes[i, 2:], boxes[j, 2:])
        near = (adjacent.pop(i) | adjacent.pop(j)) - {i, j}
        adjacent[t] = near
        for n in near:
            adjacent[n] -= {i, j}
            adjacent[n].add(t)
        alive[t] = True
        if near:
            others = np.fromiter(near, dtype=np.int64, count=len(near))
            mine = np.full(len(others), t)
            sims = _similarities(hist, size, boxes, others, mine, image_area, measures)
            for s, n in zip((-sims).tolist(), others.tolist(), strict=True):
                heapq.heappush(heap, (s, n, t))
        t += 1
    return boxes[:t]


# -- the whole method -----------------------------------------------------------------------------


def _check_strategies(strategies) -> list[tuple[str, str]]:
    if isinstance(strategies, str) or not isinstance(strategies, (list, tuple)) or not strategies:
        raise ValueError(
            "strategies must be a non-empty sequence of (colour_space, similarity) pairs, "
            f"e.g. (('rgb', 'CTSF'), ('hsv', 'TSF')), got {strategies!r}"
        )
    out = []
    for s in strategies:
        if not isinstance(s, (list, tuple)) or len(s) != 2 or s[0] not in COLOUR_SPACES:
            raise ValueError(
                f"each strategy must be a pair (colour_space in {COLOUR_SPACES}, similarity letters), "
                f"got {s!r}"
            )
        out.append((s[0], _check_measures(s[1])))
    return out


def selective_search(
    image,
    scale=(50.0, 100.0),
    sigma: float = 0.8,
    min_size: int = 10,
    strategies=(("rgb", "CTSF"), ("hsv", "TSF")),
    seed: int = 0,
) -> torch.Tensor:
    """Selective search (Uijlings et al., 2013): class-agnostic boxes likely to hold objects.

    For every initial segmentation (one per colour space and ``scale``: Felzenszwalb &
    Huttenlocher's ``k``) and every strategy's similarity, regions are merged greedily
    (the most similar neighbouring pair first) until one is left; every region of the
    hierarchy gives a box. Ranking (the paper's): within one grouping the region made
    last gets position 1, the one before 2, ...; each position is multiplied by a random
    number in [0, 1) (seeded: the same image and seed give the same list), and all the
    groupings' boxes are sorted by that value, so that big regions come first while the
    groupings interleave. Duplicate boxes keep their best rank.

    Args:
        image (Tensor[3, H, W]): RGB, float in [0, 1] (or uint8).
        scale (float or sequence of float): Felzenszwalb's ``k`` (> 0), one segmentation each.
        sigma (float): smoothing of the segmentation, >= 0.
        min_size (int): smallest initial region in pixels, >= 1.
        strategies (sequence of (str, str)): ``(colour_space, similarity)`` pairs: a
            colour space of :data:`COLOUR_SPACES` and letters of :data:`SIMILARITIES`.
            The paper's "fast" mode is HSV and Lab, ``k`` 50 and 100, "CTSF" and "TSF".
        seed (int): seed of the ranking's random factor, >= 0.

    Returns:
        Tensor[P, 4]: float32 boxes ``(x1, y1, x2, y2)`` in pixel edges (every box has a
        positive width and height), best ranked first, no duplicates.
    """
    rgb = _as_hwc(image)
    scales = [scale] if isinstance(scale, (int, float)) else scale
    if isinstance(scales, (str, bytes)) or not isinstance(scales, (list, tuple)) or not scales:
        raise ValueError(
            f"scale must be a number or a non-empty sequence of numbers, got {scale!r}"
        )
    scales = [check_number("scale", s, low=0, strict=True) for s in scales]
    sigma = check_number("sigma", sigma, low=0)
    min_size = check_positive_int("min_size", min_size)
    plan = _check_strategies(strategies)
    seed = check_positive_int("seed", seed, allow_zero=True)
    rng = np.random.default_rng(seed)
    image_area = float(rgb.shape[0] * rgb.shape[1])

    ranked_boxes, values = [], []
    segmentations = {}
    for space, measures in plan:
        pixels = _convert(rgb, space)
        for k in scales:
            if (space, k) not in segmentations:
                labels = initial_regions(image, k, sigma, min_size, space)
                segmentations[space, k] = (
                    labels,
                    region_features(pixels, labels),
                    _neighbours(labels),
                )
            labels, features, pairs = segmentations[space, k]
            boxes = _group(features, pairs, image_area, measures)  # [2R - 1, 4], made in order
            position = np.arange(len(boxes), 0, -1, dtype=np.float64)  # the last made: 1
            ranked_boxes.append(boxes)
            values.append(position * rng.random(len(boxes)))
    boxes = np.concatenate(ranked_boxes)
    order = np.argsort(np.concatenate(values), kind="stable")
    boxes = boxes[order]
    _, first = np.unique(boxes, axis=0, return_index=True)  # dedup, keeping the best rank
    return torch.from_numpy(boxes[np.sort(first)]).float()


# -- measuring proposals ----------------------------------------------------------------------------


def proposal_recall(
    proposals, gt_boxes, iou_thresholds=(0.5, 0.7), counts=(1, 5, 10, 20, 50, 100, 200, 500)
) -> dict:
    """Recall of ranked proposals against the number kept: the share of the objects that
    at least one of an image's first ``k`` proposals covers at IoU >= ``t``.

    Args:
        proposals (list[Tensor[P_i, 4]]): per image, proposals ``(x1, y1, x2, y2)``, best first.
        gt_boxes (list[Tensor[M_i, 4]]): per image, the objects' boxes ``(x1, y1, x2, y2)``
            (an image may have none).
        iou_thresholds (sequence of float): each in [0, 1].
        counts (sequence of int): numbers of proposals kept, each >= 1, increasing.

    Returns:
        dict: ``"counts"`` (list[int]); ``"recall"``: ``{t: list[float]}``, one recall per
        count (NaN when there are no objects at all); ``"num_objects"`` (int);
        ``"mean_proposals"`` (float, per image, before any cut).
    """
    if not isinstance(proposals, (list, tuple)) or not isinstance(gt_boxes, (list, tuple)):
        raise ValueError("proposals and gt_boxes must be lists with one tensor [K, 4] per image")
    if len(proposals) != len(gt_boxes):
        raise ValueError(
            f"proposals and gt_boxes must have one entry per image, got {len(proposals)} and {len(gt_boxes)}"
        )
    thresholds = [check_fraction("iou_thresholds", t) for t in iou_thresholds]
    if not thresholds:
        raise ValueError("iou_thresholds must hold at least one threshold")
    if isinstance(counts, (int, np.integer)) or not counts:
        raise ValueError(f"counts must be a non-empty sequence of ints, got {counts!r}")
    counts = [check_positive_int("counts", k) for k in counts]
    if any(b <= a for a, b in zip(counts[:-1], counts[1:], strict=True)):
        raise ValueError(f"counts must be increasing, got {counts}")
    hits = {t: np.zeros(len(counts)) for t in thresholds}
    num_objects, total = 0, 0
    for i, (p, g) in enumerate(zip(proposals, gt_boxes, strict=True)):
        p = check_boxes(f"proposals[{i}]", p)
        g = check_boxes(f"gt_boxes[{i}]", g)
        total += len(p)
        num_objects += len(g)
        if len(g) == 0:
            continue
        if len(p) == 0:
            continue  # every object of the image missed
        iou = box_iou(g, p)  # [M, P]
        best_so_far = iou.cummax(dim=1).values  # [M, P]: best IoU among the first j + 1
        for c, k in enumerate(counts):
            best = best_so_far[:, min(k, len(p)) - 1]  # [M]
            for t in thresholds:
                hits[t][c] += float((best >= t).sum())
    recall = {
        t: (hits[t] / num_objects if num_objects else np.full(len(counts), np.nan)).tolist()
        for t in thresholds
    }
    return {
        "counts": counts,
        "recall": recall,
        "num_objects": num_objects,
        "mean_proposals": total / max(len(proposals), 1),
    }


class CachedProposals:
    """A proposer run once per image: the boxes are kept in memory, keyed by the image's
    pixels, and every later call with the same image returns them at once.

    Two-stage detectors of the R-CNN family take their proposals from outside: computing
    them once per image, before training, is what the papers did (R-CNN and Fast R-CNN
    cache selective search's boxes on disk). A detector that holds a ``CachedProposals``
    can still be called like any torchvision detector, ``model(images)``.

    Args:
        proposer (callable): ``proposer(image [3, H, W]) -> Tensor[P, 4]`` boxes, best first;
            default :func:`selective_search` with its defaults.
        max_proposals (int, optional): keep only the first ones.

    Attributes:
        seconds (float): time spent in ``proposer`` (cache misses only).
        computed (int): images proposed for so far.
    """

    def __init__(self, proposer: Callable | None = None, max_proposals: int | None = None):
        if proposer is not None and not callable(proposer):
            raise ValueError(f"proposer must be callable, got {type(proposer).__name__}")
        if max_proposals is not None:
            max_proposals = check_positive_int("max_proposals", max_proposals)
        self.proposer = proposer or selective_search
        self.max_proposals = max_proposals
        self.seconds = 0.0
        self.computed = 0
        self._cache: dict[str, torch.Tensor] = {}

    @staticmethod
    def _key(image: torch.Tensor) -> str:
        array = np.ascontiguousarray(image.detach().cpu().as_subclass(torch.Tensor).numpy())
        return hashlib.sha1(array.tobytes() + str(array.shape).encode()).hexdigest()

    def __call__(self, image) -> torch.Tensor:
        """Boxes ``Tensor[P, 4]`` for ``image [3, H, W]``, on the image's device."""
        if not isinstance(image, torch.Tensor) or image.dim() != 3:
            raise ValueError(
                f"image must be a tensor [3, H, W], got {getattr(image, 'shape', image)!r}"
            )
        key = self._key(image)
        if key not in self._cache:
            start = time.perf_counter()
            boxes = torch.as_tensor(self.proposer(image.detach().cpu())).float()
            self.seconds += time.perf_counter() - start
            self.computed += 1
            self._cache[key] = boxes[: self.max_proposals] if self.max_proposals else boxes
        return self._cache[key].to(image.device)

    def precompute(self, images: Sequence) -> float:
        """Propose for every image (``[3, H, W]`` each, or ``(image, target)`` pairs, such
        as a dataset's items); returns the seconds it took."""
        start = time.perf_counter()
        for item in images:
            self(item[0] if isinstance(item, (tuple, list)) else item)
        return time.perf_counter() - start

    def __len__(self) -> int:
        return len(self._cache)
