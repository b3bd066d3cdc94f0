"""Exercises of the page "Faster R-CNN" (lessons/faster_rcnn): the RPN's anchor labels, and
the random minibatch of anchors its loss is computed on.

Expected values come from hand-computed cases and from the library's references:
``vizlib.anchors.match_anchors`` with the low-quality rule (proven equal to torchvision's
``Matcher`` in tests/test_anchors.py; mapped to 1 / 0 / -1 it is torchvision's
``RegionProposalNetwork.assign_targets_to_anchors``, see tests/test_widgets_rpn.py) and
``vizlib.anchors.sample_balanced`` (torchvision's ``BalancedPositiveNegativeSampler``).

Sampling is random, so most sampling cases accept *any* pair of masks with the right
properties (:class:`_Minibatch`); two cases fix the draw order (the one the exercise text
gives, torchvision's) and compare exactly, which also shows that different seeds give
different picks."""

from __future__ import annotations

from ..spec import EDGE_WEIGHT, Case, exercise, hidden

_NOT_THE_ANSWER = ("vizlib.exercises", "vizlib.nn", "vizlib.widgets", "vizlib.anchors")


def _random_boxes(n: int, seed: int | None = None, size: float = 64.0, g=None):
    """``n`` valid xyxy boxes with positive width and height inside a ``size`` square
    (from a fixed seed, or from generator ``g``)."""
    import torch

    g = g if g is not None else torch.Generator().manual_seed(seed)
    wh = 4 + torch.rand(n, 2, generator=g) * size / 2  # [n, 2]
    xy = torch.rand(n, 2, generator=g) * (size - wh)  # [n, 2] top-left corners
    return torch.cat([xy, xy + wh], dim=1)  # [n, 4]


def _rpn_labels_reference(iou, fg, bg):
    """vizlib's matching with the low-quality rule, as the RPN's 1 / 0 / -1 labels."""
    import torch

    from vizlib.anchors import BACKGROUND, IGNORE, match_anchors

    matches = match_anchors(iou, fg, bg, allow_low_quality_matches=True)
    out = torch.ones(matches.shape)
    out[matches == BACKGROUND] = 0.0
    out[matches == IGNORE] = -1.0
    return out


@exercise(
    "faster_rcnn.rpn_labels",
    title="The RPN's label for every anchor",
    function="rpn_labels",
    points=3,
    hint="Per anchor (per column): its best IoU over the objects gives 1.0 (>= fg_iou), "
    "0.0 (< bg_iou) or -1.0 (in between). Then the low-quality rule: per object (per "
    "row), its best IoU over the anchors; every anchor that reaches it (==, so ties "
    "count; only where it is above 0) becomes 1.0 whatever its band. No objects (M = 0): "
    "every anchor is 0.0.",
    forbidden=(
        "match_anchors",
        "match_anchors_to_boxes",
        "Matcher",
        "assign_targets_to_anchors",
        "rpn_anchor_labels",
        "rpn_targets",
    )
    + _NOT_THE_ANSWER,
)
def _rpn_labels_cases():
    import torch

    from vizlib.boxes import box_iou

    def t(rows):
        return torch.tensor(rows, dtype=torch.float32)

    def labels(values):
        return torch.tensor(values, dtype=torch.float32)

    reference = _rpn_labels_reference

    yield Case(
        "one object, 0.7 / 0.3: IoU 0.9 positive, 0.5 ignored, 0.1 negative",
        (t([[0.9, 0.5, 0.1]]), 0.7, 0.3),
        expected=labels([1, -1, 0]),
        hint="1.0 for a positive, 0.0 for a negative, -1.0 for an ignored anchor (not the "
        "index of the object: the RPN only asks 'object or not')",
    )
    yield Case(
        "exactly at the thresholds: IoU 0.7 is positive, 0.3 is ignored, 0.29 negative",
        (t([[0.7, 0.3, 0.29]]), 0.7, 0.3),
        expected=labels([1, -1, 0]),
        hint="positive means IoU >= fg_iou; negative means IoU < bg_iou, strictly below",
    )
    yield Case(
        "an anchor over two objects takes its best IoU over both",
        (t([[0.75, 0.1, 0.0], [0.2, 0.0, 0.9]]), 0.7, 0.3),
        expected=labels([1, 0, 1]),
        hint="rows are objects, columns anchors: an anchor's band comes from the max over dim 0",
    )
    yield Case(
        "an object whose best anchor reaches only 0.6 still gets that anchor as a positive",
        (t([[0.6, 0.2, 0.0], [0.0, 0.1, 0.9]]), 0.7, 0.3),
        expected=labels([1, 0, 1]),
        hint="the low-quality rule: per row (object), the best IoU over the anchors; the "
        "anchors that reach it are positive even below fg_iou",
    )
    yield Case(
        "an object whose best IoU is below bg_iou (0.2): its best anchor is positive, not negative",
        (t([[0.2, 0.1, 0.0], [0.0, 0.05, 0.8]]), 0.7, 0.3),
        expected=labels([1, 0, 1]),
        hint="apply the rule after the bands: it overrides 'negative' as well as 'ignored'",
    )
    yield Case(
        "ties: every anchor tied for an object's best IoU is positive",
        (t([[0.4, 0.4, 0.1]]), 0.7, 0.3),
        expected=labels([1, 1, 0]),
        hint="compare each row with its maximum (==) instead of taking one argmax",
    )
    yield Case(
        "an object that no anchor overlaps at all (best IoU 0) makes nothing positive",
        (t([[0.0, 0.0, 0.0], [0.8, 0.1, 0.0]]), 0.7, 0.3),
        expected=labels([1, 0, 0]),
        hint="IoU 0 matches nothing: claim anchors only where the object's best IoU is above 0",
    )
    yield Case(
        "equal thresholds 0.5 / 0.5: nothing is ignored",
        (t([[0.5, 0.49, 0.2]]), 0.5, 0.5),
        expected=labels([1, 0, 0]),
    )
    yield Case(
        "an image without objects (M = 0): every anchor is negative",
        (torch.zeros(0, 5), 0.7, 0.3),
        expected=labels([0, 0, 0, 0, 0]),
        hint="there is no max over an empty dimension: handle M = 0 first",
        weight=EDGE_WEIGHT,
    )
    yield Case(
        "no anchors (N = 0): an empty tensor",
        (torch.zeros(2, 0), 0.7, 0.3),
        expected=labels([]),
        weight=EDGE_WEIGHT,
    )
    anchors = _random_boxes(400, seed=31)
    gt = _random_boxes(5, seed=32)
    iou = box_iou(gt, anchors)  # [5, 400]
    for fg, bg in ((0.7, 0.3), (0.6, 0.4)):
        yield Case(
            f"5 objects x 400 anchors, {fg} / {bg}: agrees with vizlib and torchvision",
            (iou, fg, bg),
            expected=reference(iou, fg, bg),
        )


class _Minibatch:
    """The expected value of a sampling case: *any* pair of masks with these properties.

    The picks are random, so no single answer is right. ``compare_values`` falls back to
    ``got == expected`` for an expected value of an unknown type, and Python then asks
    this object (tensors and tuples do not know it; ``__array_ufunc__ = None`` makes
    numpy defer to it too). ``repr`` says what was expected and what was wrong with the
    latest answer, for the check's message.

    Args:
        labels (Tensor[N]): the case's labels (1 / 0 / -1).
        positives, negatives (int): how many of each must be sampled.
        not_first (bool): the positives must not be the first ``positives`` of the
            positive anchors in index order (a sample that is not random).
    """

    __array_ufunc__ = None
    __hash__ = object.__hash__

    def __init__(self, labels, positives: int, negatives: int, not_first: bool = False):
        self.labels, self.positives, self.negatives = labels, positives, negatives
        self.not_first = not_first
        self.problem = ""

    def _why_not(self, got) -> str:
        import numpy as np
        import torch

        n = len(self.labels)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return "a pair (positive mask, negative mask)"
        masks = []
        for name, m in zip(("positive", "negative"), got, strict=True):
            if isinstance(m, np.ndarray) and m.dtype.kind in "biuf":
                m = torch.from_numpy(m)  # as compare_values accepts arrays
            if not isinstance(m, torch.Tensor) or m.shape != (n,):
                return f"the {name} mask is not a tensor of shape [{n}]"
            if not bool(((m == 0) | (m == 1)).all()):
                return f"the {name} mask holds values other than True / False"
            masks.append(m.detach().cpu().bool())
        pos, neg = masks
        if bool((pos & (self.labels != 1)).any()):
            return "a sampled positive is not labelled 1"
        if bool((neg & (self.labels != 0)).any()):
            return "a sampled negative is not labelled 0"
        if int(pos.sum()) != self.positives:
            return f"{int(pos.sum())} positives sampled instead of {self.positives}"
        if int(neg.sum()) != self.negatives:
            return f"{int(neg.sum())} negatives sampled instead of {self.negatives}"
        first = torch.nonzero(self.labels == 1).flatten()[: self.positives]
        if self.not_first and bool(pos[first].all()):
            return "the positives are the first ones in index order: pick them at random"
        return ""

    def __eq__(self, got) -> bool:
        self.problem = self._why_not(got)
        return not self.problem

    def __repr__(self) -> str:
        want = (
            f"{self.positives} positives among the anchors labelled 1 and {self.negatives} "
            "negatives among those labelled 0"
        )
        return want + (f" (yours: {self.problem})" if self.problem else "")


@exercise(
    "faster_rcnn.sample_minibatch",
    title="The RPN's minibatch of anchors",
    function="sample_minibatch",
    points=3,
    hint="Indices of the positives (label 1) and negatives (label 0). Take "
    "num_pos = min(#positives, int(batch_size_per_image * positive_fraction)) positives, "
    "then num_neg = min(#negatives, batch_size_per_image - num_pos) negatives. Random "
    "picks: g = torch.Generator().manual_seed(seed); first "
    "torch.randperm(#positives, generator=g)[:num_pos] indexes the positives, then "
    "torch.randperm(#negatives, generator=g)[:num_neg] the negatives. Return two bool "
    "masks of shape [N].",
    forbidden=("sample_balanced", "BalancedPositiveNegativeSampler", "rpn_targets")
    + _NOT_THE_ANSWER,
)
def _sample_minibatch_cases():
    import torch

    from vizlib.anchors import sample_balanced

    def labels_with(pos: int, neg: int, ignored: int, seed: int):
        """A shuffled label vector with so many 1, 0 and -1."""
        g = torch.Generator().manual_seed(seed)
        values = torch.tensor([1.0] * pos + [0.0] * neg + [-1.0] * ignored)
        return values[torch.randperm(len(values), generator=g)]

    def exact(labels, batch, fraction, seed):
        return sample_balanced(labels, batch, fraction, torch.Generator().manual_seed(seed))

    # More than 1,000 anchors in the cases judged by properties: a failed case's message
    # then prints the reader's masks shortened (torch abbreviates longer tensors).
    lab = labels_with(40, 1000, 160, seed=1)
    yield Case(
        "40 positives, 1,000 negatives, 160 ignored; 64 per image, half positive: 32 + 32",
        (lab, 64, 0.5, 0),
        expected=_Minibatch(lab, 32, 32, not_first=True),
        hint="at most int(64 * 0.5) = 32 positives, chosen at random (not the first 32), "
        "then negatives fill the batch",
    )
    lab = labels_with(5, 1100, 20, seed=2)
    yield Case(
        "only 5 positives: all 5, and 59 negatives fill the batch of 64",
        (lab, 64, 0.5, 0),
        expected=_Minibatch(lab, 5, 59),
        hint="the negatives fill what the positives leave: batch_size_per_image - num_pos",
    )
    lab = labels_with(0, 1000, 100, seed=3)
    yield Case(
        "no positives at all: 16 negatives",
        (lab, 16, 0.5, 0),
        expected=_Minibatch(lab, 0, 16),
    )
    lab = labels_with(30, 1000, 0, seed=4)
    yield Case(
        "a quarter positive of 10 is int(2.5) = 2 positives and 8 negatives",
        (lab, 10, 0.25, 0),
        expected=_Minibatch(lab, 2, 8),
        hint="round the positive quota down, as int() does",
    )
    lab = labels_with(3, 10, 7, seed=5)
    yield Case(
        "fewer anchors than the batch: every positive and every negative, never an ignored",
        (lab, 64, 0.5, 0),
        expected=(lab == 1, lab == 0),
        hint="when there are fewer than wanted, take them all; label -1 is never sampled",
    )
    lab = labels_with(10, 5, 500, seed=6)
    yield Case(
        "500 ignored anchors, 10 positives and 5 negatives: the 15, no ignored one",
        (lab, 256, 0.5, 0),
        expected=(lab == 1, lab == 0),
    )
    lab = labels_with(4, 4, 4, seed=7)
    yield Case(
        "a batch of 0: nothing sampled",
        (lab, 0, 0.5, 0),
        expected=(torch.zeros(12, dtype=torch.bool), torch.zeros(12, dtype=torch.bool)),
        weight=EDGE_WEIGHT,
    )
    yield Case(
        "no anchors: two empty masks",
        (torch.zeros(0), 256, 0.5, 0),
        expected=(torch.zeros(0, dtype=torch.bool), torch.zeros(0, dtype=torch.bool)),
        weight=EDGE_WEIGHT,
    )
    lab = labels_with(60, 1800, 140, seed=8)
    yield Case(
        "2,000 anchors, torchvision's RPN setting 256 / 0.5: 60 positives and 196 negatives",
        (lab, 256, 0.5, 1),
        expected=_Minibatch(lab, 60, 196),
    )
    lab = labels_with(300, 1500, 200, seed=9)
    for seed in (0, 1):
        yield Case(
            f"seed {seed}, draw order as in the text (randperm of the positives, then of "
            "the negatives, one generator): the same picks as torchvision's sampler",
            (lab, 256, 0.5, seed),
            expected=exact(lab, 256, 0.5, seed),
            hint="g = torch.Generator().manual_seed(seed); perm = torch.randperm(number of "
            "positives, generator=g)[:num_pos] picks positives[perm]; then the same for the "
            "negatives with the same g. Different seeds must give different picks.",
        )


# ---------------------------------------------------------------- hidden cases
# Drawn at grading time from the instructor's secret (vizlib.exercises.spec.hidden): the
# same kinds of input as the random public cases, unknown without the secret.


def _draw(g, low: int, high: int) -> int:
    """A whole number in [low, high]."""
    import torch

    return int(torch.randint(low, high + 1, (1,), generator=g))


@hidden("faster_rcnn.rpn_labels")
def _rpn_labels_hidden(g):
    from vizlib.boxes import box_iou

    for k, (fg, bg) in enumerate(((0.7, 0.3), (0.6, 0.4), (0.5, 0.2))):
        gt = _random_boxes(_draw(g, 1, 8), g=g)
        anchors = _random_boxes(_draw(g, 50, 300), g=g)
        iou = box_iou(gt, anchors)
        yield Case(
            f"random objects and anchors ({k + 1}), {fg} / {bg}",
            (iou, fg, bg),
            expected=_rpn_labels_reference(iou, fg, bg),
        )


@hidden("faster_rcnn.sample_minibatch")
def _sample_minibatch_hidden(g):
    import torch

    from vizlib.anchors import sample_balanced

    for k in range(3):
        pos, neg, ignored = _draw(g, 0, 200), _draw(g, 50, 1500), _draw(g, 0, 300)
        values = torch.tensor([1.0] * pos + [0.0] * neg + [-1.0] * ignored)
        labels = values[torch.randperm(len(values), generator=g)]
        batch, fraction = (64, 128, 256)[k], (0.5, 0.25, 0.5)[k]
        seed = _draw(g, 0, 10_000)
        yield Case(
            f"random labels ({k + 1}), the draw order of the text",
            (labels, batch, fraction, seed),
            expected=sample_balanced(labels, batch, fraction, torch.Generator().manual_seed(seed)),
        )
