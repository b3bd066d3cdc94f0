"""Exercises of the page "Focal loss" (book/focal_loss): the sigmoid focal loss of RetinaNet.

Expected values come from hand-computed cases and from ``torchvision.ops.sigmoid_focal_loss``
(which ``vizlib.losses.sigmoid_focal_loss`` equals; its ``alpha=-1`` is ``alpha=None``)."""

from __future__ import annotations

from ..spec import EDGE_WEIGHT, Case, exercise, hidden

_NOT_THE_ANSWER = ("vizlib.exercises",)


@exercise(
    "focal_loss.my_focal_loss",
    title="The sigmoid focal loss",
    function="my_focal_loss",
    points=3,
    hint="Start from the binary cross-entropy of each element, computed from the logits "
    "(F.binary_cross_entropy_with_logits(..., reduction='none') is -log p_t and stays "
    "finite). p = sigmoid(logit); p_t is p for a positive and 1 - p for a negative. "
    "Multiply the cross-entropy by (1 - p_t) ** gamma, then, if alpha is not None, by "
    "alpha for positives and 1 - alpha for negatives. Keep the input's shape.",
    forbidden=(
        "sigmoid_focal_loss",
        "focal_loss_curve",
        "vizlib.losses",
        "vizlib.nn",
        "torchvision.ops",
    )
    + _NOT_THE_ANSWER,
)
def _focal_loss_cases():
    import math

    import torch
    from torch.nn import functional as F
    from torchvision.ops import sigmoid_focal_loss

    def reference(logits, targets, alpha, gamma):
        return sigmoid_focal_loss(
            logits, targets, alpha=-1 if alpha is None else alpha, gamma=gamma
        )

    g = torch.Generator().manual_seed(41)
    logits = torch.randn(40, generator=g) * 3
    targets = (torch.rand(40, generator=g) < 0.3).float()
    yield Case(
        "gamma 0 and no alpha: plain binary cross-entropy",
        (logits, targets, None, 0.0),
        expected=F.binary_cross_entropy_with_logits(logits, targets, reduction="none"),
        hint="one loss per element (no sum, no mean); the cross-entropy of an element "
        "is -log of the probability given to its true label",
    )
    log9 = math.log(9.0)  # sigmoid(log 9) = 0.9
    right = torch.tensor([log9, -log9])  # p_t = 0.9 for a positive and for a negative
    yield Case(
        "gamma 2: a right answer at p_t = 0.9 costs 100 times less than its cross-entropy",
        (right, torch.tensor([1.0, 0.0]), None, 2.0),
        expected=torch.full((2,), 0.01 * -math.log(0.9)),
        hint="p_t is sigmoid(logit) for a positive and 1 - sigmoid(logit) for a "
        "negative; the factor is (1 - p_t) ** gamma",
    )
    wrong = torch.tensor([-log9, log9])  # p_t = 0.1: confidently wrong
    yield Case(
        "gamma 2: a wrong answer at p_t = 0.1 keeps 81% of its cross-entropy",
        (wrong, torch.tensor([1.0, 0.0]), None, 2.0),
        expected=torch.full((2,), 0.81 * -math.log(0.1)),
    )
    yield Case(
        "alpha 0.25 weighs a positive by 0.25 and a negative by 0.75",
        (torch.zeros(2), torch.tensor([1.0, 0.0]), 0.25, 0.0),
        expected=torch.tensor([0.25, 0.75]) * math.log(2.0),
        hint="alpha_t = alpha for a positive, 1 - alpha for a negative; alpha=None means "
        "no weighting at all (not alpha = 0.5)",
    )
    extreme = torch.tensor([200.0, -200.0, 200.0, -200.0])
    yield Case(
        "logits of +-200 give finite losses (0 or 200), not inf or NaN",
        (extreme, torch.tensor([1.0, 1.0, 0.0, 0.0]), None, 2.0),
        expected=torch.tensor([0.0, 200.0, 200.0, 0.0]),
        hint="sigmoid(-200) is exactly 0 in float32 and log(0) = -inf: compute the "
        "cross-entropy from the logits (binary_cross_entropy_with_logits or "
        "F.logsigmoid), never as -log(sigmoid(x))",
    )
    yield Case(
        "no elements: an empty loss",
        (torch.zeros(0), torch.zeros(0), 0.25, 2.0),
        expected=torch.zeros(0),
        weight=EDGE_WEIGHT,
    )
    batch = torch.randn(2, 50, 3, generator=g) * 2  # [images, anchors, classes]
    labels = (torch.rand(2, 50, 3, generator=g) < 0.1).float()
    for alpha, gamma in ((0.25, 2.0), (0.75, 0.5), (None, 5.0)):
        yield Case(
            f"a [2, 50, 3] batch (images x anchors x classes), alpha {alpha}, gamma {gamma}: "
            "agrees with torchvision",
            (batch, labels, alpha, gamma),
            expected=reference(batch, labels, alpha, gamma),
            hint="work elementwise so that any shape works, and return that shape",
        )


# ---------------------------------------------------------------- hidden cases
# Drawn at grading time from the instructor's secret (vizlib.exercises.spec.hidden): the
# same kinds of input as the random public cases, unknown without the secret.


@hidden("focal_loss.my_focal_loss")
def _focal_loss_hidden(g):
    import torch
    from torchvision.ops import sigmoid_focal_loss

    for k, (alpha, gamma) in enumerate(((0.25, 2.0), (None, 1.0), (0.6, 3.5))):
        shape = tuple(int(s) for s in torch.randint(1, 12, (1 + k,), generator=g))
        logits = torch.randn(shape, generator=g) * 4
        targets = (torch.rand(shape, generator=g) < 0.3).float()
        yield Case(
            f"random logits ({k + 1}), alpha {alpha}, gamma {gamma}",
            (logits, targets, alpha, gamma),
            expected=sigmoid_focal_loss(
                logits, targets, alpha=-1 if alpha is None else alpha, gamma=gamma
            ),
        )
