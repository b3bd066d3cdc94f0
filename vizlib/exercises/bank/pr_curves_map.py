"""Exercises of the page "Precision, recall and mean average precision" (book/pr_curves_map):
the all-point average precision of a ranked list of detections.

Expected values come from hand-computed cases and from ``vizlib.metrics`` (its
``precision_recall_curve`` and ``average_precision(..., "voc")``, proven equal to the
PASCAL VOC devkit's rule and, in the COCO flavour, to pycocotools in the tests)."""

from __future__ import annotations

from ..spec import EDGE_WEIGHT, Case, exercise, hidden

_NOT_THE_ANSWER = ("vizlib.exercises",)


@exercise(
    "pr_curves_map.all_point_ap",
    title="Average precision from a ranked list",
    function="all_point_ap",
    points=3,
    hint="Sort by score, highest first (stable, so that ties keep their order). Running sums "
    "of TP and FP give precision = TP / (TP + FP) and recall = TP / num_gt after each "
    "detection. Replace each precision by the largest precision at that point or any "
    "later one (a running max from the right). AP is the sum, over the detections where "
    "recall goes up, of (the rise in recall) x (that envelope value).",
    forbidden=(
        "average_precision",
        "precision_recall_curve",
        "precision_envelope",
        "average_precision_score",
        "mean_average_precision",
        "coco_evaluate",
        "vizlib.metrics",
        "sklearn",
        "torchmetrics",
        "pycocotools",
    )
    + _NOT_THE_ANSWER,
)
def _all_point_ap_cases():
    import torch

    from vizlib.metrics import average_precision, precision_recall_curve

    def flags(*values):
        return torch.tensor(values, dtype=torch.bool)

    def reference(scores, is_tp, num_gt):
        curve = precision_recall_curve(scores, is_tp, num_gt)
        return average_precision(curve.precision, curve.recall, "voc")

    yield Case(
        "every object found, no false alarm: AP 1",
        (torch.tensor([0.9, 0.8, 0.7]), flags(True, True, True), 3),
        expected=1.0,
    )
    yield Case(
        "no detection at all: AP 0",
        (torch.zeros(0), flags(), 4),
        expected=0.0,
        hint="with nothing detected, recall never rises: the area is 0 (and nothing "
        "to divide by, so return 0.0 before dividing)",
        weight=EDGE_WEIGHT,
    )
    yield Case(
        "only false alarms: AP 0",
        (torch.tensor([0.9, 0.4]), flags(False, False), 2),
        expected=0.0,
        weight=EDGE_WEIGHT,
    )
    yield Case(
        "three perfect detections of four objects: AP 0.75 (recall stops at 3/4)",
        (torch.tensor([0.9, 0.8, 0.7]), flags(True, True, True), 4),
        expected=0.75,
        hint="recall divides by the number of objects (num_gt), not by the number of "
        "true positives; levels never reached add nothing",
    )
    yield Case(
        "a false alarm ranked first: precisions 0, 1/2, 2/3 give AP 2/3",
        (torch.tensor([0.9, 0.8, 0.7]), flags(False, True, True), 2),
        expected=2 / 3,
        hint="at recall 1/2 the envelope is max(1/2, 2/3) = 2/3: use the best precision "
        "at this point or any later one, not the raw zig-zag",
    )
    yield Case(
        "the only true positive ranked last of four: AP 1/4",
        (torch.tensor([0.9, 0.8, 0.7, 0.6]), flags(False, False, False, True), 1),
        expected=0.25,
    )
    yield Case(
        "detections given in any order are ranked by score first",
        (torch.tensor([0.7, 0.9, 0.8]), flags(True, False, True), 2),
        expected=2 / 3,
        hint="sort by descending score, and reorder the TP flags the same way",
    )
    yield Case(
        "tied scores keep the order they were given in (a stable sort, as pycocotools)",
        (torch.tensor([0.9, 0.5, 0.5]), flags(True, False, True), 2),
        expected=0.5 + 0.5 * 2 / 3,
        hint="argsort(descending=True, stable=True); an unstable sort may put the tied "
        "true positive first and report AP 1",
    )
    g = torch.Generator().manual_seed(31)
    scores = torch.rand(300, generator=g)
    is_tp = torch.rand(300, generator=g) < scores  # better scores, more often right
    for num_gt in (int(is_tp.sum()), int(is_tp.sum()) + 40):
        yield Case(
            f"300 random detections, {int(is_tp.sum())} of them true, {num_gt} objects: "
            "agrees with vizlib.metrics",
            (scores, is_tp, num_gt),
            expected=reference(scores, is_tp, num_gt),
        )
    ties = torch.round(scores * 10) / 10  # only 11 distinct scores: many ties
    yield Case(
        "the same with scores rounded to one decimal (many ties): agrees with vizlib.metrics",
        (ties, is_tp, int(is_tp.sum())),
        expected=reference(ties, is_tp, int(is_tp.sum())),
    )


# ---------------------------------------------------------------- hidden cases
# Drawn at grading time from the instructor's secret (vizlib.exercises.spec.hidden): the
# same kinds of input as the random public cases, unknown without the secret.


@hidden("pr_curves_map.all_point_ap")
def _all_point_ap_hidden(g):
    import torch

    from vizlib.metrics import average_precision, precision_recall_curve

    for k in range(3):
        n = int(torch.randint(20, 200, (1,), generator=g))
        scores = torch.rand(n, generator=g)
        if k == 2:
            scores = torch.round(scores * 8) / 8  # many ties
        is_tp = torch.rand(n, generator=g) < scores
        num_gt = int(is_tp.sum()) + int(torch.randint(1, 30, (1,), generator=g))
        curve = precision_recall_curve(scores, is_tp, num_gt)
        yield Case(
            f"random detections ({k + 1})" + (", tied scores" if k == 2 else ""),
            (scores, is_tp, num_gt),
            expected=average_precision(curve.precision, curve.recall, "voc"),
        )
