"""Exercises of the chapter "Classification + localisation, and pose as regression"
(lessons/localisation): the multitask loss, PCK, and the cost of sliding windows. The
sliding-window stub is named ``my_count_windows``: the chapter itself calls vizlib's
``count_windows`` in an earlier cell, which a stub of the same name would replace.

Expected values come from hand-computed cases and from the library's references
(``vizlib.losses.multitask_loss``, checked against ``torch.nn.functional`` in the tests;
``vizlib.metrics.pck``; ``vizlib.boxes.count_windows``, checked against
``torch.nn.functional.unfold``)."""

from __future__ import annotations

from ..spec import EDGE_WEIGHT, Case, exercise, hidden

_NOT_THE_ANSWER = ("vizlib.exercises",)


@exercise(
    "localisation.multitask_loss",
    title="The multitask loss of classification + localisation",
    function="multitask_loss",
    points=3,
    hint="the classification term is the cross-entropy averaged over the images (what "
    "F.cross_entropy gives by default); the box term adds up the squared errors of a box's "
    "four numbers, then averages that over the images; the total is classification + "
    "box_weight * box.",
    forbidden=("multitask_loss", "localisation_loss", "vizlib.losses", "vizlib.nn")
    + _NOT_THE_ANSWER,
)
def _multitask_cases():
    import torch

    from vizlib.losses import multitask_loss

    def reference(logits, labels, preds, targets, weight):
        return multitask_loss(logits, labels, preds, targets, box_weight=weight, box_loss="l2")[
            "total"
        ]

    g = torch.Generator().manual_seed(4)
    logits = torch.randn(6, 6, generator=g)
    labels = torch.tensor([1, 2, 3, 4, 5, 1])
    preds = torch.rand(6, 4, generator=g)
    targets = torch.rand(6, 4, generator=g)
    right = torch.nn.functional.one_hot(labels, 6).float() * 50
    yield Case(
        "a perfect prediction costs (almost) nothing",
        (right, labels, targets, targets, 10.0),
        expected=torch.tensor(0.0),
        atol=1e-6,
        weight=EDGE_WEIGHT,
    )
    yield Case(
        "box_weight = 0 leaves the cross-entropy alone",
        (logits, labels, preds, targets, 0.0),
        expected=torch.nn.functional.cross_entropy(logits, labels),
        hint="the classification term is the mean cross-entropy over the images",
    )
    yield Case(
        "right classes, boxes off by 0.1 in x: 10 * 0.01 = 0.1",
        (right, labels, targets + torch.tensor([0.1, 0, 0, 0]), targets, 10.0),
        expected=torch.tensor(0.1),
        atol=1e-5,
        hint="sum the squared errors over the 4 numbers of a box, then average over the images",
    )
    yield Case(
        "6 random images, box_weight 1",
        (logits, labels, preds, targets, 1.0),
        expected=reference(logits, labels, preds, targets, 1.0),
    )
    yield Case(
        "6 random images, box_weight 25",
        (logits, labels, preds, targets, 25.0),
        expected=reference(logits, labels, preds, targets, 25.0),
        hint="total = classification + box_weight * box",
    )


@exercise(
    "localisation.pck",
    title="PCK: the percentage of correct keypoints",
    function="pck",
    points=3,
    hint="measure the Euclidean distance of each predicted point to its true one ([N, K]); a "
    "point is correct when that distance is at most threshold times its object's normaliser "
    "(normaliser[:, None] broadcasts over the K keypoints); count only keypoints with "
    "gt[..., 2] > 0, and return correct-and-labelled / labelled as a float.",
    forbidden=("pck", "vizlib.metrics") + _NOT_THE_ANSWER,
)
def _pck_cases():
    import torch

    from vizlib.metrics import pck

    gt = torch.tensor([[[10.0, 10.0, 2.0], [20.0, 10.0, 2.0], [30.0, 30.0, 1.0]]])  # [1, 3, 3]
    yield Case(
        "every point exact: PCK 1",
        (gt[..., :2].clone(), gt, 0.2, torch.tensor([10.0])),
        expected=1.0,
    )
    off = gt[..., :2].clone()
    off[0, 0, 0] += 3.0  # 3 px off with a budget of 2 px
    yield Case(
        "one of three points 3 px off, allowed 0.2 * 10 = 2 px: PCK 2/3",
        (off, gt, 0.2, torch.tensor([10.0])),
        expected=2 / 3,
    )
    yield Case(
        "the same with a budget of 0.5 * 10 = 5 px: PCK 1",
        (off, gt, 0.5, torch.tensor([10.0])),
        expected=1.0,
    )
    edge = gt[..., :2].clone()
    edge[0, 1, 1] += 2.0
    yield Case(
        "exactly at the threshold counts as correct",
        (edge, gt, 0.2, torch.tensor([10.0])),
        expected=1.0,
        hint="use <=, not <",
    )
    hidden = gt.clone()
    hidden[0, 2, 2] = 0.0  # unlabelled: its prediction does not count
    far = gt[..., :2].clone()
    far[0, 2] = torch.tensor([60.0, 60.0])
    yield Case(
        "an unlabelled point (v = 0) is not scored",
        (far, hidden, 0.2, torch.tensor([10.0])),
        expected=1.0,
        hint="keep only keypoints with gt[..., 2] > 0, in the numerator and the denominator",
    )
    g = torch.Generator().manual_seed(5)
    truth = torch.cat(
        [
            torch.rand(8, 6, 2, generator=g) * 64,
            torch.randint(0, 3, (8, 6, 1), generator=g).float(),
        ],
        dim=-1,
    )
    guess = truth[..., :2] + torch.randn(8, 6, 2, generator=g) * 4
    norm = torch.rand(8, generator=g) * 20 + 10
    yield Case(
        "8 objects of 6 keypoints with their own normalisers agree with vizlib.metrics.pck",
        (guess, truth, 0.3, norm),
        expected=pck(guess, truth, 0.3, norm).mean,
        hint="each object has its own normaliser: normaliser[:, None] broadcasts over K",
    )


@exercise(
    "localisation.count_windows",
    title="How many crops would a sliding window classify?",
    function="my_count_windows",
    points=2,
    hint="A window of height h fits at (H - h) // stride + 1 vertical positions (0 if h > H), "
    "likewise across; multiply, and add the counts of every window size.",
    forbidden=("count_windows", "unfold", "vizlib.boxes", "vizlib.nn") + _NOT_THE_ANSWER,
)
def _windows_cases():
    from vizlib.boxes import count_windows

    yield Case(
        "a 4 x 4 window in an 8 x 8 image at stride 4: 2 x 2 = 4 positions",
        ((8, 8), [(4, 4)], 4),
        expected=4,
    )
    yield Case("stride 1: 5 x 5 = 25 positions", ((8, 8), [(4, 4)], 1), expected=25)
    yield Case("a window as big as the image fits once", ((8, 8), [(8, 8)], 3), expected=1)
    yield Case(
        "a window bigger than the image does not fit",
        ((8, 8), [(9, 4)], 1),
        expected=0,
        hint="no position at all when h > H or w > W (do not let a negative count through)",
        weight=EDGE_WEIGHT,
    )
    yield Case(
        "a non-square image (height 6, width 10), a 2-high 4-wide window at stride 2: 3 x 4",
        ((6, 10), [(2, 4)], 2),
        expected=12,
        hint="sizes are (height, width)",
    )
    yield Case(
        "several window sizes add up",
        ((64, 64), [(16, 16), (32, 32), (16, 32)], 4),
        expected=13 * 13 + 9 * 9 + 13 * 9,
    )
    yield Case(
        "a 480 x 640 photo, 3 scales x 3 shapes, stride 8",
        (
            (480, 640),
            [
                (64, 64),
                (64, 128),
                (128, 64),
                (128, 128),
                (128, 256),
                (256, 128),
                (256, 256),
                (256, 512),
                (512, 256),
            ],
            8,
        ),
        expected=53 * 73 + 53 * 65 + 45 * 73 + 45 * 65 + 45 * 49 + 29 * 65 + 29 * 49 + 29 * 17 + 0,
        hint="the 512-high window does not fit in a 480-high photo: it adds nothing",
    )
    sizes = [(5, 7), (12, 3), (20, 20), (1, 1)]
    yield Case(
        "a 37 x 29 image, four window shapes, stride 3: agrees with vizlib.boxes",
        ((37, 29), sizes, 3),
        expected=count_windows((37, 29), sizes, 3),
    )


# ---------------------------------------------------------------- hidden cases
# Drawn at grading time from the instructor's secret (vizlib.exercises.spec.hidden): the
# same kinds of input as the random public cases, unknown without the secret.


def _draw(g, low: int, high: int) -> int:
    """A whole number in [low, high]."""
    import torch

    return int(torch.randint(low, high + 1, (1,), generator=g))


@hidden("localisation.multitask_loss")
def _multitask_hidden(g):
    import torch

    from vizlib.losses import multitask_loss

    for k, weight in enumerate((1.0, 5.0, 40.0)):
        n, classes = _draw(g, 2, 12), _draw(g, 3, 8)
        logits = torch.randn(n, classes, generator=g) * 2
        labels = torch.randint(1, classes, (n,), generator=g)  # objects, as the chapter's
        preds, targets = torch.rand(n, 4, generator=g), torch.rand(n, 4, generator=g)
        total = multitask_loss(logits, labels, preds, targets, box_weight=weight, box_loss="l2")
        yield Case(
            f"random images ({k + 1}), box_weight {weight:g}",
            (logits, labels, preds, targets, weight),
            expected=total["total"],
        )


@hidden("localisation.pck")
def _pck_hidden(g):
    import torch

    from vizlib.metrics import pck

    for k, alpha in enumerate((0.1, 0.2, 0.5)):
        n, points = _draw(g, 2, 10), _draw(g, 2, 17)
        truth = torch.cat(
            [
                torch.rand(n, points, 2, generator=g) * 96,
                torch.randint(0, 3, (n, points, 1), generator=g).float(),
            ],
            dim=-1,
        )
        truth[0, 0, 2] = 2.0  # at least one labelled keypoint
        guess = truth[..., :2] + torch.randn(n, points, 2, generator=g) * 5
        norm = torch.rand(n, generator=g) * 30 + 10
        yield Case(
            f"random keypoints ({k + 1}), alpha {alpha}",
            (guess, truth, alpha, norm),
            expected=pck(guess, truth, alpha, norm).mean,
        )


@hidden("localisation.count_windows")
def _windows_hidden(g):
    from vizlib.boxes import count_windows

    for k in range(3):
        image = (_draw(g, 16, 500), _draw(g, 16, 500))
        sizes = [(_draw(g, 1, image[0]), _draw(g, 1, image[1])) for _ in range(_draw(g, 1, 5))]
        stride = _draw(g, 1, 16)
        yield Case(
            f"a random image and windows ({k + 1})",
            (image, sizes, stride),
            expected=count_windows(image, sizes, stride),
        )
