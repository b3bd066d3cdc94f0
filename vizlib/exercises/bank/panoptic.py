"""Exercises of the chapter "Panoptic segmentation" (lessons/panoptic): the semantic head's
target map (stuff classes, one "thing" class, void ignored; its solution trains a short
run in the chapter), the merge of instances and stuff into one panoptic map (Panoptic
FPN's heuristic), and PQ = SQ x RQ of one class on one image.

Expected values come from hand-computed cases and from the library's references,
``vizlib.nn.panoptic.semantic_targets``, ``panoptic_merge`` (equal to a port of
detectron2's ``combine_semantic_and_instance_outputs``, tests/test_nn_panoptic.py) and
``vizlib.metrics.panoptic.PanopticQuality`` (equal to a port of panopticapi,
tests/test_metrics_panoptic.py, and to torchmetrics' PanopticQuality)."""

from __future__ import annotations

from ..spec import EDGE_WEIGHT, Case, exercise, hidden

_NOT_THE_ANSWER = (
    "vizlib.exercises",
    "vizlib.nn",
    "vizlib.metrics",
    "torchmetrics",
    "detectron2",
    "panopticapi",
)
STUFF = (6, 7, 8)


def _semantic_reference(semantic, stuff_ids):
    from vizlib.nn.panoptic import semantic_targets

    return semantic_targets(semantic, stuff_ids)


def _merge_reference(scores, labels, masks, semantic, stuff_ids, overlap, score, area):
    import torch

    from vizlib.nn.panoptic import panoptic_merge

    ids, segments = panoptic_merge(scores, labels, masks, semantic, stuff_ids, overlap, score, area)
    return ids, torch.tensor([s["category_id"] for s in segments], dtype=torch.int64)


def _pq_reference(pred_ids, pred_categories, gt_ids, gt_categories, category):
    import torch

    from vizlib.metrics.panoptic import PanopticQuality

    cats = sorted(set(pred_categories.tolist()) | set(gt_categories.tolist()) | {int(category)})
    metric = PanopticQuality({c: True for c in cats})

    def segments(ids, categories):
        present = set(ids.unique().tolist()) - {0}
        return [
            {"id": k + 1, "category_id": int(c)}
            for k, c in enumerate(categories.tolist())
            if k + 1 in present
        ]

    metric.update(
        pred_ids, segments(pred_ids, pred_categories), gt_ids, segments(gt_ids, gt_categories)
    )
    r = metric.compute().per_class[int(category)]
    return torch.tensor([r.pq, r.sq, r.rq], dtype=torch.float64)


def _scene_maps(g, n=1):
    """Semantic maps of generated scenes (64 x 64, things 1..5, stuff 6..8)."""
    from vizlib.data import PanopticScenes

    seed = int(torch_randint(g, 0, 10_000))
    ds = PanopticScenes(n, seed=seed)
    return [ds[i][1] for i in range(n)]


def torch_randint(g, low, high):
    import torch

    return int(torch.randint(low, high, (1,), generator=g))


def _random_outputs(g, d, size=24, stuff=3):
    """Random overlapping rectangular instance masks, scores, labels, a blocky semantic map."""
    import torch

    masks = torch.zeros(d, size, size, dtype=torch.bool)
    for i in range(d):
        x1, y1 = torch.randint(0, size - 4, (2,), generator=g).tolist()
        w, h = torch.randint(3, 12, (2,), generator=g).tolist()
        masks[i, y1 : y1 + h, x1 : x1 + w] = True
    scores = torch.rand(d, generator=g)
    labels = torch.randint(1, 6, (d,), generator=g)
    blocks = torch.randint(0, stuff + 1, (4, 4), generator=g)
    semantic = blocks.repeat_interleave(size // 4, 0).repeat_interleave(size // 4, 1)
    return scores, labels, masks, semantic


def _random_panoptic(g, size=20):
    """A truth of rectangles over a stuff background (no void), and a prediction made of
    the truth moved a little, some classes changed, an extra segment and a void patch.
    Categories: 1, 2 things-like, 6 the background."""
    import torch

    gt = torch.ones(size, size, dtype=torch.int64)  # segment 1: the background (category 6)
    gt_cats = [6]
    for _ in range(torch_randint(g, 2, 6)):
        x, y = torch.randint(0, size - 3, (2,), generator=g).tolist()
        w, h = torch.randint(4, 10, (2,), generator=g).tolist()
        gt[y : y + h, x : x + w] = len(gt_cats) + 1
        gt_cats.append(torch_randint(g, 1, 3))
    # renumber 1..n in order of appearance (a segment may have been covered)
    present = sorted(set(gt.unique().tolist()))
    new = torch.zeros(len(gt_cats) + 1, dtype=torch.int64)
    new[present] = torch.arange(1, len(present) + 1)
    gt, gt_cats = new[gt], torch.tensor([gt_cats[p - 1] for p in present])
    dy, dx = torch.randint(-1, 2, (2,), generator=g).tolist()
    pred = torch.roll(gt, (dy, dx), dims=(0, 1))
    pred_cats = gt_cats.clone()
    flip = torch.rand(len(pred_cats), generator=g) < 0.25
    pred_cats[flip & (pred_cats != 6)] = 3 - pred_cats[flip & (pred_cats != 6)]
    x, y = torch.randint(0, size - 4, (2,), generator=g).tolist()
    pred[y : y + 4, x : x + 4] = len(pred_cats) + 1  # an extra segment
    pred_cats = torch.cat([pred_cats, torch.tensor([torch_randint(g, 1, 3)])])
    x, y = torch.randint(0, size - 3, (2,), generator=g).tolist()
    pred[y : y + 3, x : x + 3] = 0  # void: no segment there
    return pred, pred_cats, gt, gt_cats


def _matched_case(g):
    """A random case and a thing category with at least one match (PQ > 0), else the
    background's (6): a case whose answer is not all zeros."""
    while True:
        pred, pred_cats, gt, gt_cats = _random_panoptic(g)
        for category in (torch_randint(g, 1, 3), 6):
            pq = _pq_reference(pred, pred_cats, gt, gt_cats, category)
            if float(pq[0]) > 0:
                return pred, pred_cats, gt, gt_cats, category


@exercise(
    "panoptic.semantic_target",
    title="The semantic head's target: stuff classes, one thing class, void ignored",
    function="semantic_target",
    points=3,
    hint="Start from a map of zeros (the thing class) shaped like semantic, int64; for "
    "k, c in enumerate(stuff_ids, start=1) set the pixels where semantic == c to k; "
    "finally set the pixels where semantic == 0 (void) to 255. Do not change the input.",
    forbidden=("semantic_targets",) + _NOT_THE_ANSWER,
)
def _semantic_cases():
    import torch

    semantic = torch.tensor([[6, 6, 1], [7, 2, 8], [8, 8, 5]])
    yield Case(
        "a 3 x 3 map: stuff 6, 7, 8 become 1, 2, 3, things 1..5 become 0",
        (semantic, STUFF),
        expected=torch.tensor([[1, 1, 0], [2, 0, 3], [3, 3, 0]]),
    )
    yield Case(
        "the stuff listed in another order: the order gives the class",
        (semantic, (8, 6, 7)),
        expected=torch.tensor([[2, 2, 0], [3, 0, 1], [1, 1, 0]]),
        hint="class k is stuff_ids[k - 1], whatever its category id",
    )
    void = torch.tensor([[0, 6, 6], [0, 3, 7]])
    yield Case(
        "void pixels (0) become 255, the value the loss ignores",
        (void, STUFF),
        expected=torch.tensor([[255, 1, 1], [255, 0, 2]]),
        hint="0 is void, not a thing: mark it 255",
    )
    yield Case(
        "a map of things only: all 0",
        (torch.tensor([[1, 2], [3, 4]]), STUFF),
        expected=torch.zeros(2, 2, dtype=torch.int64),
        weight=EDGE_WEIGHT,
    )
    for k, t in enumerate(_scene_maps(torch.Generator().manual_seed(3), 2)):
        semantic = t["semantic"].as_subclass(torch.Tensor)
        yield Case(
            f"a generated 64 x 64 scene ({k + 1})",
            (semantic, STUFF),
            expected=_semantic_reference(semantic, STUFF),
        )


@exercise(
    "panoptic.merge",
    title="The panoptic merge: instances by score, then stuff on the free pixels",
    function="merge",
    points=4,
    hint="ids = zeros [H, W] int64, categories = []. Go through the instances by "
    "descending score (torch.argsort(scores, descending=True)); stop at the first score "
    "below score_threshold. Skip an empty mask; if (mask & (ids > 0)).sum() / mask.sum() "
    "> overlap_threshold, drop it; else set ids[mask & (ids == 0)] to len(categories) + 1 "
    "and append its label. Then for each class k >= 1 present in semantic, in increasing "
    "order: region = (semantic == k) & (ids == 0); if region.sum() >= stuff_min_area (and "
    "> 0), give it the next id and category stuff_ids[k - 1]. Return (ids, "
    "torch.tensor(categories, dtype=torch.int64)).",
    forbidden=("panoptic_merge", "combine_semantic_and_instance_outputs") + _NOT_THE_ANSWER,
)
def _merge_cases():
    import torch

    semantic = torch.zeros(8, 8, dtype=torch.int64)
    semantic[:, 4:] = 1  # the right half: stuff class 1 (category 6)
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[0, :4, :4] = True
    masks[1, :4, 2:6] = True  # half of it on instance 0
    masks[2, :3, :3] = True  # all of it on instance 0
    scores, labels = torch.tensor([0.9, 0.8, 0.7]), torch.tensor([1, 2, 3])
    yield Case(
        "three instances: the first whole, the second keeps its free half (0.5 taken is not "
        "> 0.5), the third dropped (all taken); then the stuff's free pixels",
        (scores, labels, masks, semantic, STUFF, 0.5, 0.5, 10),
        expected=_merge_reference(scores, labels, masks, semantic, STUFF, 0.5, 0.5, 10),
        hint="drop an instance when more than overlap_threshold of its pixels are taken; "
        "a kept one takes only its free pixels",
    )
    reordered = torch.tensor([0.7, 0.8, 0.9])
    yield Case(
        "the same masks with the scores reversed: the small one goes first",
        (reordered, labels, masks, semantic, STUFF, 0.5, 0.5, 10),
        expected=_merge_reference(reordered, labels, masks, semantic, STUFF, 0.5, 0.5, 10),
        hint="sort the instances by descending score first",
    )
    yield Case(
        "the minimum stuff area 4,096 (detectron2's default) on an 8 x 8 map: no stuff",
        (scores, labels, masks, semantic, STUFF, 0.5, 0.5, 4096),
        expected=_merge_reference(scores, labels, masks, semantic, STUFF, 0.5, 0.5, 4096),
        hint="a stuff region smaller than stuff_min_area stays void (0)",
    )
    yield Case(
        "a score threshold above every score: stuff only",
        (scores, labels, masks, semantic, STUFF, 0.5, 0.95, 0),
        expected=_merge_reference(scores, labels, masks, semantic, STUFF, 0.5, 0.95, 0),
    )
    yield Case(
        "no instance and no stuff pixel (all thing class): all void, no segment",
        (
            torch.zeros(0),
            torch.zeros(0, dtype=torch.int64),
            torch.zeros(0, 8, 8, dtype=torch.bool),
            torch.zeros(8, 8, dtype=torch.int64),
            STUFF,
            0.5,
            0.5,
            0,
        ),
        expected=(torch.zeros(8, 8, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)),
        weight=EDGE_WEIGHT,
    )
    g = torch.Generator().manual_seed(17)
    for k, (overlap, score, area) in enumerate(((0.5, 0.3, 20), (0.2, 0.0, 0))):
        args = (*_random_outputs(g, 6), STUFF, overlap, score, area)
        yield Case(
            f"six random overlapping instances on a 24 x 24 map ({k + 1})",
            args,
            expected=_merge_reference(*args),
        )


@exercise(
    "panoptic.pq_of_class",
    title="PQ = SQ x RQ of one class on one image",
    function="pq_of_class",
    points=3,
    hint="For the class: its predicted segments P and true segments G, the ids present in "
    "each map (segment id k has category categories[k - 1]; id 0 is void and no segment; "
    "an id with no pixel is no segment). For each pair (p, g): "
    "inter = ((pred_ids == p) & (gt_ids == g)).sum(), union = area(p) + area(g) - inter; "
    "a pair with IoU > 0.5 is a TP (each segment matches at most one). FP = |P| - TP, "
    "FN = |G| - TP. SQ = mean IoU of the TPs (0 without TP), RQ = TP / (TP + FP/2 + FN/2), "
    "PQ = SQ * RQ; NaN for all three when the class has no segment at all.",
    forbidden=("panoptic_quality", "PanopticQuality", "match_segments") + _NOT_THE_ANSWER,
)
def _pq_cases():
    import math

    import torch

    gt = torch.tensor([[1, 1, 2, 2], [1, 1, 2, 2]])
    gt_cats = torch.tensor([6, 1])
    yield Case(
        "the truth itself: PQ = SQ = RQ = 1",
        (gt, gt_cats, gt, gt_cats, 1),
        expected=torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64),
    )
    pred = torch.tensor([[1, 1, 1, 2], [1, 1, 1, 2]])
    yield Case(
        "the thing predicted half its size: IoU 0.5 is not > 0.5, so one FP and one FN: "
        "PQ 0, SQ 0, RQ 0",
        (pred, gt_cats, gt, gt_cats, 1),
        expected=torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64),
        hint="a match needs IoU strictly above 0.5",
        weight=EDGE_WEIGHT,
    )
    yield Case(
        "the same prediction, the background class: IoU 4/6 > 0.5, so PQ = SQ = 2/3, RQ = 1",
        (pred, gt_cats, gt, gt_cats, 6),
        expected=torch.tensor([2 / 3, 2 / 3, 1.0], dtype=torch.float64),
        hint="union = area(p) + area(g) - intersection",
    )
    pred2 = torch.tensor([[1, 1, 2, 2], [1, 1, 2, 3]])
    cats2 = torch.tensor([6, 1, 1])
    yield Case(
        "an extra one-pixel segment of the class: one TP (IoU 3/4) and one FP",
        (pred2, cats2, gt, gt_cats, 1),
        expected=torch.tensor([0.75 * (1 / 1.5), 0.75, 1 / 1.5], dtype=torch.float64),
        hint="RQ = TP / (TP + FP / 2 + FN / 2)",
    )
    yield Case(
        "a class in neither map: NaN, NaN, NaN",
        (gt, gt_cats, gt, gt_cats, 3),
        expected=torch.tensor([math.nan] * 3, dtype=torch.float64),
        weight=EDGE_WEIGHT,
    )
    g = torch.Generator().manual_seed(23)
    for k in range(2):
        pred, pred_cats, gt, gt_cats, category = _matched_case(g)
        yield Case(
            f"random segments, some moved, relabelled, an extra one and a void patch, "
            f"category {category} ({k + 1})",
            (pred, pred_cats, gt, gt_cats, category),
            expected=_pq_reference(pred, pred_cats, gt, gt_cats, category),
            hint="void (0) is no segment; it still counts in no area",
        )


# ---------------------------------------------------------------- hidden cases


@hidden("panoptic.semantic_target")
def _semantic_hidden(g):
    import torch

    for k in range(3):
        semantic = torch.randint(
            0, 9, (torch_randint(g, 4, 20), torch_randint(g, 4, 20)), generator=g
        )
        order = torch.randperm(3, generator=g).add(6).tolist()
        yield Case(
            f"a random map of every category and void, stuff order {order} ({k + 1})",
            (semantic, tuple(order)),
            expected=_semantic_reference(semantic, tuple(order)),
        )


@hidden("panoptic.merge")
def _merge_hidden(g):
    import torch

    for k in range(3):
        overlap = float(torch.rand(1, generator=g)) * 0.8 + 0.1
        score = float(torch.rand(1, generator=g)) * 0.6
        area = torch_randint(g, 0, 60)
        args = (*_random_outputs(g, torch_randint(g, 1, 9)), STUFF, overlap, score, area)
        yield Case(
            f"random instances, thresholds {overlap:.2f} / {score:.2f}, area {area} ({k + 1})",
            args,
            expected=_merge_reference(*args),
        )


@hidden("panoptic.pq_of_class")
def _pq_hidden(g):
    for k in range(3):
        pred, pred_cats, gt, gt_cats, category = _matched_case(g)
        yield Case(
            f"random segments, category {category} ({k + 1})",
            (pred, pred_cats, gt, gt_cats, category),
            expected=_pq_reference(pred, pred_cats, gt, gt_cats, category),
        )
