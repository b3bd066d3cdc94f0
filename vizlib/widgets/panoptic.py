"""PQ decomposer widget: one scene's panoptic quality, segment by segment, as the merge moves.

The merge of Panoptic FPN (:func:`vizlib.nn.panoptic.panoptic_merge`) turns instances and a
semantic map into one map of segments with three settings: the instances' score
threshold, the overlap threshold (drop an instance whose pixels are already taken beyond
it) and the stuff's minimum area. Each state of the widget merges, then matches the merged
segments with the truth (:func:`vizlib.metrics.panoptic.match_segments`, the same rule PQ
counts with: same category, IoU > 0.5) and draws, left to right: the image, the truth's
segments, the merged segments (each in its category's colour), the merged segments as
matched (green) or false positives (red), and the true segments as matched (green) or
false negatives (orange). The title gives PQ = SQ x RQ, things and stuff apart, and the
counts. The merge and the matching are vizlib's; this module only draws them.

By default the scene is a generated one and the "model outputs" are made from its truth:
each thing's mask moved by a pixel and given a score, a duplicate of one thing, a thing of
the wrong class with a low score, and a semantic map with a few small wrong blobs. Pass a
trained model's outputs to look at real predictions.
"""

from __future__ import annotations

import numpy as np
import torch

from vizlib._checks import check_int_tensor
from vizlib.metrics.panoptic import PanopticQuality, match_segments
from vizlib.nn.panoptic import panoptic_merge, panoptic_segments, semantic_targets
from vizlib.viz._figure import fast_figure, set_image_axes, subplot_layout

from ._base import Control, Widget

__all__ = ["PanopticPQWidget", "pq_widget_numbers", "default_scene"]

_MATCHED, _FP, _FN, _NONE = 1, 2, 3, 0
_OUTCOME_COLOURS = ["#202020", "#2ca02c", "#d62728", "#ff7f0e"]  # void, TP, FP, FN


def default_scene(index: int = 7, seed: int = 2) -> dict:
    """A generated scene and made-up model outputs for it (see the module docstring).

    Returns:
        dict: ``image`` ``Tensor[3, H, W]``, ``truth`` ``(ids, segments)``
        (:func:`~vizlib.nn.panoptic.panoptic_segments`), ``scores`` ``Tensor[D]``,
        ``labels`` ``Tensor[D]``, ``masks`` ``Tensor[D, H, W]`` bool, ``semantic``
        ``Tensor[H, W]`` (head classes), ``stuff_categories`` and ``categories``.
    """
    from vizlib.data import STUFF_IDS, THING_IDS, PanopticScenes

    image, t = PanopticScenes(index + 1, seed=seed)[index]
    sem = t["semantic"].as_subclass(torch.Tensor)
    inst = t["instances"].as_subclass(torch.Tensor)
    masks = t["masks"].as_subclass(torch.Tensor).bool()
    labels = t["labels"].clone()
    g = torch.Generator().manual_seed(seed)
    moved = torch.stack(
        [torch.roll(m, shifts=(k % 2, 1), dims=(0, 1)) for k, m in enumerate(masks)]
    )
    scores = 0.55 + 0.4 * torch.rand(len(masks), generator=g)
    if len(masks):
        # a duplicate of the first thing, moved by 3 pixels (more than half of it on the
        # first), and a thing of the wrong class moved by 4 pixels, with lower scores
        dup = torch.roll(moved[0], shifts=(3, 3), dims=(0, 1))
        wrong = torch.roll(masks[-1], shifts=(0, -4), dims=(0, 1))
        moved = torch.cat([moved, dup[None], wrong[None]])
        labels = torch.cat([labels, labels[:1], (labels[-1:] % 5) + 1])
        scores = torch.cat([scores, torch.tensor([0.6, 0.4])])
    semantic = semantic_targets(sem, STUFF_IDS)
    h, w = semantic.shape
    for k in range(4):  # small wrong stuff blobs
        y, x = torch.randint(0, h - 8, (2,), generator=g).tolist()
        size = 3 + 2 * k
        semantic[y : y + size, x : x + size] = 1 + (k % len(STUFF_IDS))
    return {
        "image": image.as_subclass(torch.Tensor),
        "truth": panoptic_segments(sem, inst, STUFF_IDS),
        "scores": scores,
        "labels": labels,
        "masks": moved,
        "semantic": semantic,
        "stuff_categories": tuple(STUFF_IDS),
        "categories": {c: True for c in THING_IDS} | {c: False for c in STUFF_IDS},
    }


def pq_widget_numbers(
    scene: dict, score_threshold: float, overlap_threshold: float, stuff_min_area: int
) -> dict:
    """The merge of one state, its matching with the truth and its PQ.

    Args:
        scene (dict): as :func:`default_scene` returns.
        score_threshold, overlap_threshold, stuff_min_area: :func:`panoptic_merge`'s.

    Returns:
        dict: ``ids`` ``Tensor[H, W]`` and ``segments`` (the merge), ``matches`` (a
        :class:`~vizlib.metrics.panoptic.SegmentMatches`), ``pq`` (a
        :class:`~vizlib.metrics.panoptic.PanopticResult` of this image),
        ``pred_outcome`` and ``truth_outcome`` (``uint8 [H, W]``: 0 void, 1 matched,
        2 false positive, 3 false negative).
    """
    ids, segments = panoptic_merge(
        scene["scores"],
        scene["labels"],
        scene["masks"],
        scene["semantic"],
        scene["stuff_categories"],
        overlap_threshold,
        score_threshold,
        stuff_min_area,
    )
    gt_ids, gt_segments = scene["truth"]
    m = match_segments(ids, segments, gt_ids, gt_segments, scene["categories"])
    metric = PanopticQuality(scene["categories"])
    metric.update(ids, segments, gt_ids, gt_segments)
    pred_outcome = np.zeros(ids.shape, dtype=np.uint8)
    truth_outcome = np.zeros(gt_ids.shape, dtype=np.uint8)
    ids_np, gt_np = ids.numpy(), gt_ids.numpy()
    for p, g, _ in m.matches:
        pred_outcome[ids_np == p] = _MATCHED
        truth_outcome[gt_np == g] = _MATCHED
    for p in m.false_positives:
        pred_outcome[ids_np == p] = _FP
    for g in m.false_negatives:
        truth_outcome[gt_np == g] = _FN
    return {
        "ids": ids,
        "segments": segments,
        "matches": m,
        "pq": metric.compute(),
        "pred_outcome": pred_outcome,
        "truth_outcome": truth_outcome,
    }


def _category_map(ids: torch.Tensor, segments: list[dict]) -> np.ndarray:
    """``uint8 [H, W]``: the category of each pixel's segment (0 void)."""
    lut = np.zeros(int(ids.max()) + 1 if ids.numel() else 1, dtype=np.uint8)
    for s in segments:
        lut[s["id"]] = s["category_id"]
    return lut[ids.numpy()]


def _discrete(colours: list[str]) -> list:
    """A plotly colorscale giving integer ``k`` in ``[0, len - 1]`` colour ``k``."""
    n = len(colours)
    scale = []
    for k, c in enumerate(colours):
        scale += [[k / n, c], [(k + 1) / n, c]]
    return scale


def _fmt(x: float) -> str:
    return "n/a" if x != x else f"{x:.2f}"


class PanopticPQWidget(Widget):
    """The PQ of one scene decomposed into matched segments, false positives and false
    negatives, as the merge's three settings move.

    Args:
        scene (dict, optional): :func:`default_scene`'s keys, e.g. a trained model's
            outputs for one validation image (``scores``, ``labels``, ``masks`` as
            ``Tensor[D, H, W]`` bool, ``semantic`` the argmax of its semantic logits) with
            the image, the truth and the categories; default: :func:`default_scene`.
        **defaults: the controls' starting values.
    """

    controls = [
        Control(
            "score_threshold",
            "instance score ≥",
            values=[0.1, 0.3, 0.5, 0.7, 0.9],
            default=0.5,
            # the default scene's scores (0.40 to 0.80) merge alike at 0.3 and 0.5: each of these
            # three changes what is kept
            static_values=[0.5, 0.7, 0.9],
        ),
        Control(
            "overlap_threshold",
            "drop an instance if more than this share is taken",
            values=[0.1, 0.3, 0.5, 0.7, 0.9],
            default=0.5,
        ),
        Control(
            "stuff_min_area",
            "stuff min area (px)",
            values=[0, 16, 64, 256, 1024, 4096],
            default=4096,
            static_values=[0, 64, 4096],
        ),
    ]
    static_controls = ("score_threshold", "stuff_min_area")
    max_static_states = 9

    def __init__(self, scene: dict | None = None, **defaults):
        self.scene = default_scene() if scene is None else self._check(scene)
        super().__init__(**defaults)
        pq_widget_numbers(self.scene, **self.state_defaults())  # fail now on bad input

    @staticmethod
    def _check(scene: dict) -> dict:
        keys = (
            "image",
            "truth",
            "scores",
            "labels",
            "masks",
            "semantic",
            "stuff_categories",
            "categories",
        )
        if not isinstance(scene, dict) or set(keys) - set(scene):
            missing = sorted(set(keys) - set(scene)) if isinstance(scene, dict) else keys
            raise ValueError(f"scene must be a dict with {list(keys)}; missing {list(missing)}")
        image = scene["image"]
        if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
            raise ValueError("scene['image'] must be a Tensor[3, H, W] with values in [0, 1]")
        semantic = check_int_tensor("scene['semantic']", scene["semantic"], "[H, W]")
        if tuple(semantic.shape) != tuple(image.shape[1:]):
            raise ValueError(
                f"scene['semantic'] must be [H, W] = {list(image.shape[1:])} like the image, "
                f"got {list(semantic.shape)}"
            )
        return dict(scene)

    def numbers(self, **state) -> dict:
        """:func:`pq_widget_numbers` for a state (defaults for the controls not given)."""
        return pq_widget_numbers(self.scene, **self._full_state(state))

    def figure(self, score_threshold, overlap_threshold, stuff_min_area):
        from vizlib.data.scenes import CLASS_NAMES, PALETTE

        n = pq_widget_numbers(self.scene, score_threshold, overlap_threshold, stuff_min_area)
        image = self.scene["image"]
        h, w = image.shape[1:]
        rgb = (image.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        titles = ["image", "truth", "merged", "merged: matched / FP", "truth: matched / FN"]
        cells = [(1, k) for k in range(1, 6)]
        layout, refs = subplot_layout(
            cells, rows=1, cols=5, subplot_titles=titles, horizontal_spacing=0.02
        )
        palette = [f"rgb({r},{g},{b})" for r, g, b in PALETTE.tolist()]
        names = np.array(CLASS_NAMES)
        gt_ids, gt_segments = self.scene["truth"]
        truth_cats = _category_map(gt_ids, gt_segments)
        pred_cats = _category_map(n["ids"], n["segments"])

        # numpy arrays, not .tolist(): plotly deep-copies nested lists into every figure (43,000
        # deepcopy calls, 28 ms a move) and sends arrays as typed arrays (6 ms a move in all)
        def classes(z, cell, name):
            return {
                "type": "heatmap",
                "z": z,
                "zmin": -0.5,
                "zmax": len(palette) - 0.5,
                "colorscale": _discrete(palette),
                "showscale": False,
                "customdata": names[z],
                "hovertemplate": "(%{x}, %{y}) %{customdata}<extra>" + name + "</extra>",
                **refs[cell],
            }

        def outcome(z, cell, name):
            return {
                "type": "heatmap",
                "z": z,
                "zmin": -0.5,
                "zmax": 3.5,
                "colorscale": _discrete(_OUTCOME_COLOURS),
                "showscale": False,
                "hovertemplate": "(%{x}, %{y})<extra>" + name + "</extra>",
                **refs[cell],
            }

        data = [
            {"type": "image", "z": rgb, "hoverinfo": "skip", **refs[(1, 1)]},
            classes(truth_cats, (1, 2), "truth"),
            classes(pred_cats, (1, 3), "merged"),
            outcome(n["pred_outcome"], (1, 4), "merged"),
            outcome(n["truth_outcome"], (1, 5), "truth"),
        ]
        for cell in cells:
            set_image_axes(layout, refs[cell], w, h, show_ticks=False)
        r = n["pq"]
        tp = len(n["matches"].matches)
        fp, fn = len(n["matches"].false_positives), len(n["matches"].false_negatives)
        void = int((n["ids"] == 0).sum())
        layout["title"] = {
            "text": (
                f"PQ {_fmt(r.all.pq)} (SQ {_fmt(r.all.sq)}, RQ {_fmt(r.all.rq)}; means over the "
                f"classes present)  |  things PQ "
                f"{_fmt(r.things.pq)}, stuff PQ {_fmt(r.stuff.pq)}  |  TP {tp}, FP {fp}, "
                f"FN {fn}, void pixels {void}<br><sub>score ≥ {score_threshold}, overlap ≤ "
                f"{overlap_threshold}, stuff ≥ {stuff_min_area} px. green: matched (same class, "
                "IoU > 0.5); "
                "red: false positive; orange: false negative; black: void</sub>"
            ),
            "font": {"size": 13},
        }
        # no fixed width: a 1,000-px figure overflowed the book's text column, and a slider
        # click past the column's edge never reached the slider
        layout.update(height=300, margin={"l": 10, "r": 10, "t": 90, "b": 10})
        return fast_figure(data, layout)
