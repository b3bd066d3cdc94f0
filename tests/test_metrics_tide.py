"""TIDE's error breakdown: one hand-made scene per rule, COCO's AP50, empty images, bad input.

Every AP below is COCO's 101-point AP at IoU 0.5: the mean of the precision envelope read at
recall 0, 0.01, ..., 1 (0 past the last recall reached). So a class whose curve reaches
recall 0.5 at precision p, and no further, has AP = 51 p / 101.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vizlib.metrics import (
    NO_GROUND_TRUTH,
    TIDE_ERROR_TYPES,
    TIDE_SPECIAL_ERRORS,
    coco_evaluate,
    tide_errors,
)

ALL = TIDE_ERROR_TYPES + TIDE_SPECIAL_ERRORS

# The object of every scene, 10 x 10 at the origin, and boxes at known IoUs with it.
A = [0, 0, 10, 10]
IOU_08 = [0, 0, 10, 8]  # IoU 80 / 100
IOU_04 = [0, 0, 10, 4]  # IoU 40 / 100
FAR = [20, 20, 30, 30]  # IoU 0


def image(gt=(), dt=()):
    """One image: ``gt`` as (box, label) pairs, ``dt`` as (box, score, label) triples."""
    return (
        {
            "boxes": torch.tensor([b for b, _ in gt], dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor([c for _, c in gt], dtype=torch.int64),
        },
        {
            "boxes": torch.tensor([b for b, _, _ in dt], dtype=torch.float32).reshape(-1, 4),
            "scores": torch.tensor([s for _, s, _ in dt], dtype=torch.float32),
            "labels": torch.tensor([c for _, _, c in dt], dtype=torch.int64),
        },
    )


def tide(*images, **kwargs):
    targets, predictions = zip(*images, strict=True) if images else ((), ())
    return tide_errors(list(targets), list(predictions), **kwargs)


def assert_breakdown(result, ap50, counts=None, **delta):
    """``result`` has base ``ap50``, the given counts (others 0) and dAPs (others 0)."""
    assert result.ap50 == pytest.approx(ap50, abs=1e-12)
    assert set(result.delta_ap) == set(ALL) and set(result.counts) == set(TIDE_ERROR_TYPES)
    want = dict.fromkeys(ALL, 0.0) | delta
    assert result.delta_ap == pytest.approx(want, abs=1e-12)
    assert result.counts == dict.fromkeys(TIDE_ERROR_TYPES, 0) | (counts or {})


# --------------------------------------------------------------------------- one error each


def test_perfect_detector_has_ap_1_and_no_error():
    r = tide(
        image([(A, 1), ([30, 30, 50, 45], 2)], [(A, 0.9, 1), ([30, 30, 50, 45], 0.4, 2)]),
        image([(FAR, 2)], [(FAR, 0.7, 2)]),
    )
    assert_breakdown(r, 1.0)


def test_classification_error_is_fixed_by_relabelling():
    # Image 0: an object of class 1 found at IoU 0.8 but called class 2 (score 0.9): Cls.
    # Image 1: an object of class 2 found exactly (score 0.8).
    # Base: class 1 has no detection, AP 0; class 2 ranks FP (0.9) then TP (0.8) of 1
    # object: precision 1/2 at recall 1, AP 0.5. Mean 0.25.
    # Cls fixed: both classes one TP each, AP 1: dAP 0.75.
    # FP (suppress every FP): class 2 AP 1, class 1 still 0: dAP 0.25.
    # FN (drop every object no TP found): class 1 has neither objects nor detections left
    # and leaves the mean (tidecv's convention); class 2 stays 0.5: dAP 0.25.
    # The class-1 object is not a Miss: the Cls error stands for it.
    r = tide(image([(A, 1)], [(IOU_08, 0.9, 2)]), image([(FAR, 2)], [(FAR, 0.8, 2)]))
    assert_breakdown(r, 0.25, {"Cls": 1}, Cls=0.75, FP=0.25, FN=0.25)


def test_classification_error_of_a_class_without_ground_truth_still_counts():
    # Class 7 has no object, so (as in COCO) its detection plays no part in the AP; fixed,
    # it becomes class 1's TP: AP 0 -> 1.
    r = tide(image([(A, 1)], [(IOU_08, 0.9, 7)]))
    assert_breakdown(r, 0.0, {"Cls": 1}, Cls=1.0)


def test_localisation_error_is_fixed_by_moving_the_box():
    # Image 0: the object found by a class-1 box at IoU 0.4 (score 0.9): Loc.
    # Image 1: a second object found exactly (score 0.8).
    # Base: FP then TP of 2 objects: precision 1/2 up to recall 1/2: AP = 51 * 0.5 / 101.
    # Loc fixed: two TPs, AP 1. FP: one TP of 2 objects, AP 51 / 101. FN: one object left,
    # FP then TP: AP 1/2. No Miss: the Loc error stands for object 0.
    base = 51 * 0.5 / 101
    r = tide(image([(A, 1)], [(IOU_04, 0.9, 1)]), image([(FAR, 1)], [(FAR, 0.8, 1)]))
    assert_breakdown(r, base, {"Loc": 1}, Loc=1 - base, FP=51 / 101 - base, FN=0.5 - base)


def test_duplicate_is_fixed_by_suppression():
    # Image 0: the object found (0.9) and found again at IoU 0.8 (0.8): Dupe.
    # Image 1: a second object found (0.7).
    # Base: TP, FP, TP of 2 objects: precision 1 up to recall 1/2 (51 points), then 2/3
    # (50 points): AP = (51 + 50 * 2/3) / 101. Dupe fixed: AP 1.
    base = (51 + 50 * 2 / 3) / 101
    r = tide(
        image([(A, 1)], [(A, 0.9, 1), (IOU_08, 0.8, 1)]),
        image([(FAR, 1)], [(FAR, 0.7, 1)]),
    )
    assert_breakdown(r, base, {"Dupe": 1}, Dupe=1 - base, FP=1 - base)


def test_both_error_is_fixed_by_suppression():
    # Image 0: a class-1 object found (0.6), and a class-2 box at IoU 0.4 with it (0.9):
    # Both (wrong class and poorly placed). Image 1: a class-2 object found (0.5).
    # Base: class 1 AP 1; class 2 FP then TP of 1 object: AP 1/2. Mean 0.75.
    # Both fixed (suppressed): 1.
    r = tide(
        image([(A, 1)], [(A, 0.6, 1), (IOU_04, 0.9, 2)]),
        image([(FAR, 2)], [(FAR, 0.5, 2)]),
    )
    assert_breakdown(r, 0.75, {"Both": 1}, Both=0.25, FP=0.25)


def test_background_error_is_fixed_by_suppression():
    # A box on nothing (0.9) above the object's TP (0.5): FP then TP, AP 1/2; fixed: 1.
    r = tide(image([(A, 1)], [(FAR, 0.9, 1), (A, 0.5, 1)]))
    assert_breakdown(r, 0.5, {"Bkg": 1}, Bkg=0.5, FP=0.5)


def test_missed_object_is_fixed_by_dropping_it_from_the_count():
    # Two objects, one found: precision 1 up to recall 1/2, AP 51/101. Miss fixed (one
    # object left): AP 1. FN is the same fix here.
    r = tide(image([(A, 1)], [(A, 0.9, 1)]), image([(FAR, 1)]))
    assert_breakdown(r, 51 / 101, {"Miss": 1}, Miss=50 / 101, FN=50 / 101)


# --------------------------------------------------------------------------- precedence


def test_loc_is_tested_before_cls():
    # The class-1 box overlaps the class-1 object by 0.4 and a class-2 object by 0.8:
    # tidecv blames the localisation. Base: class 1 FP of 1 object, AP 0; class 2 missed,
    # AP 0. Loc fixed: class 1 AP 1, mean 0.5. The class-2 object is missed (no Cls error
    # stands for it); dropping it leaves class 2 without objects or detections, so the mean
    # is class 1's 0 -> dAP 0.
    other = [0, 0, 10, 5]  # IoU with IOU_04 = 40 / 50 = 0.8; with A 0.5
    r = tide(image([(A, 1), (other, 2)], [(IOU_04, 0.9, 1)]))
    assert_breakdown(r, 0.0, {"Loc": 1, "Miss": 1}, Loc=0.5)


def test_cls_is_tested_before_dupe():
    # Object 0 (class 1) is found exactly (0.9). A second class-1 box (0.8) overlaps it by
    # 0.95 (a duplicate) and a class-2 object by 90/95 = 0.947: tidecv calls it Cls, and
    # fixing it (relabelled to class 2) finds the class-2 object.
    # Base: class 1 TP, FP of 1 object: AP 1; class 2 AP 0; mean 0.5. Cls fixed: 1.
    # FP: class 1 AP 1, class 2 AP 0: 0. FN: class 2 has nothing left: mean 1.
    r = tide(image([(A, 1), ([0, 0, 10, 9], 2)], [(A, 0.9, 1), ([0, 0, 10, 9.5], 0.8, 1)]))
    assert_breakdown(r, 0.5, {"Cls": 1}, Cls=0.5, FN=0.5)


def test_both_and_bkg_split_at_the_background_threshold():
    # A class-2 box overlapping only a class-1 object: Both above t_b, Bkg at or below it
    # (tidecv includes the ends). IoU 0.2 and exactly 0.1 (10 / 100).
    found = (A, 0.5, 1)
    assert tide(image([(A, 1)], [found, ([0, 0, 10, 2], 0.9, 2)])).counts["Both"] == 1
    assert tide(image([(A, 1)], [found, ([0, 0, 10, 1], 0.9, 2)])).counts["Bkg"] == 1
    # Moving the background threshold moves the split.
    r = tide(image([(A, 1)], [found, ([0, 0, 10, 2], 0.9, 2)]), iou_background=0.25)
    assert r.counts["Bkg"] == 1 and r.counts["Both"] == 0


def test_only_the_best_scored_error_on_an_object_is_fixed_into_a_tp():
    # A Cls error (0.9) and a Loc error (0.8) both stand for the one object. Fixed, the Cls
    # one finds it, and fixing the Loc one would make a duplicate: it is suppressed
    # (tidecv's BestGTMatch). Base: class 1's only detection is the Loc FP: AP 0.
    # Cls fixed: TP (0.9) then the Loc FP (0.8): AP 1. Loc fixed: suppressed, AP stays 0.
    r = tide(image([(A, 1)], [(IOU_08, 0.9, 2), (IOU_04, 0.8, 1)]))
    assert_breakdown(r, 0.0, {"Cls": 1, "Loc": 1}, Cls=1.0)


def test_a_cls_error_on_an_object_already_found_is_suppressed_when_fixed():
    # The object is found (0.5); a class-2 box at IoU 0.8 (0.9) would be a duplicate once
    # relabelled: the fix suppresses it. Class 2 has an object, found (0.7).
    # Base: class 1 AP 1; class 2 FP (0.9) then TP: AP 1/2; mean 0.75. Cls fixed: 1.
    r = tide(image([(A, 1)], [(A, 0.5, 1), (IOU_08, 0.9, 2)]), image([(FAR, 2)], [(FAR, 0.7, 2)]))
    assert_breakdown(r, 0.75, {"Cls": 1}, Cls=0.25, FP=0.25)


def test_iou_exactly_at_the_foreground_threshold_is_a_match():
    r = tide(image([(A, 1)], [([0, 0, 10, 5], 0.9, 1)]))  # IoU 50 / 100
    assert_breakdown(r, 1.0)
    # A second box at exactly 0.5 on the found object: tidecv's Loc range [t_b, t_f]
    # includes t_f and is tested first, so it is Loc, not Dupe (its fix: suppressed, as
    # the object is taken; AP 1 either way).
    r = tide(image([(A, 1)], [(A, 0.9, 1), ([0, 0, 10, 5], 0.8, 1)]))
    assert_breakdown(r, 1.0, {"Loc": 1})


# --------------------------------------------------------------------------- empty images


def test_images_without_objects_or_detections():
    # Image 0: found (0.8). Image 1: no object, one detection (0.9): Bkg. Image 2: nothing.
    # Image 3: an object, no detection: Miss.
    # Base: FP (0.9), TP (0.8) of 2 objects: precision 1/2 up to recall 1/2, AP 25.5/101.
    # Bkg fixed: 51/101. Miss fixed (1 object): precision 1/2 at recall 1: 0.5.
    base = 25.5 / 101
    r = tide(
        image([(A, 1)], [(A, 0.8, 1)]),
        image([], [(FAR, 0.9, 1)]),
        image(),
        image([(FAR, 1)]),
    )
    assert_breakdown(
        r,
        base,
        {"Bkg": 1, "Miss": 1},
        Bkg=51 / 101 - base,
        Miss=0.5 - base,
        FP=51 / 101 - base,
        FN=0.5 - base,
    )


def test_no_ground_truth_at_all_gives_coco_s_minus_one():
    r = tide(image([], [(FAR, 0.9, 1)]), image())
    assert r.ap50 == NO_GROUND_TRUTH == -1.0
    assert r.delta_ap == dict.fromkeys(ALL, 0.0)
    assert r.counts == dict.fromkeys(TIDE_ERROR_TYPES, 0) | {"Bkg": 1}
    assert tide().ap50 == NO_GROUND_TRUTH  # no image at all


def test_only_100_detections_per_image_and_class_count():
    # As COCO: the 101st detection of class 1 (the lowest score) is dropped, not a Bkg.
    dt = [(A, 0.99, 1)] + [([20 + i, 20, 25 + i, 25], 0.5 - i / 1000, 1) for i in range(100)]
    assert tide(image([(A, 1)], dt)).counts["Bkg"] == 99


# --------------------------------------------------------------------------- random data


def random_data(seed, n_images=60, n_classes=4):
    """Jittered, relabelled, duplicated and background detections; integer boxes and tied
    scores in half the images, images without objects or without detections, and a
    detected class (9) without objects."""
    rng = np.random.default_rng(seed)
    targets, predictions = [], []
    for i in range(n_images):
        gt = rng.uniform(0, 80, (int(rng.integers(0, 6)), 2))
        gt = np.concatenate([gt, gt + rng.uniform(4, 40, gt.shape)], axis=1)
        gt_label = rng.integers(1, n_classes + 1, len(gt))
        copies = rng.integers(0, 3, len(gt))  # 0: missed, 2: a duplicate
        dt = np.repeat(gt, copies, axis=0)
        dt = dt + rng.normal(0, rng.choice([1.0, 4.0, 10.0]), dt.shape)  # tight to loose
        dt_label = np.repeat(gt_label, copies)
        far = rng.uniform(0, 100, (int(rng.integers(0, 3)), 2))  # likely on background
        dt = np.concatenate([dt, np.concatenate([far, far + 8], axis=1)])
        dt_label = np.concatenate([dt_label, np.full(len(far), 9 if i % 7 == 0 else 1)])
        dt = np.concatenate([dt[:, :2], np.maximum(dt[:, :2], dt[:, 2:])], axis=1)
        relabel = rng.random(len(dt)) < 0.2
        dt_label = np.where(relabel, rng.integers(1, n_classes + 1, len(dt)), dt_label)
        score = rng.random(len(dt))
        if i % 2:
            gt, dt, score = np.round(gt), np.round(dt), np.round(score, 1)
        targets.append({"boxes": torch.tensor(gt), "labels": torch.tensor(gt_label)})
        predictions.append(
            {
                "boxes": torch.tensor(dt),
                "scores": torch.tensor(score, dtype=torch.float32),
                "labels": torch.tensor(dt_label),
            }
        )
    return targets, predictions


@pytest.mark.parametrize("seed", range(4))
def test_base_ap50_equals_coco_evaluate_and_fixes_never_hurt(seed):
    targets, predictions = random_data(seed)
    r = tide_errors(targets, predictions)
    assert r.ap50 == coco_evaluate(targets, predictions).summary()["AP50"]  # to the last bit
    assert min(r.delta_ap.values()) >= -1e-12  # an oracle fix never lowers AP
    assert max(r.delta_ap.values()) <= 1 - r.ap50 + 1e-12
    # Every detection is a TP or exactly one error.
    num_dt = sum(len(p["scores"]) for p in predictions)
    num_tp = num_dt - sum(r.counts[e] for e in TIDE_ERROR_TYPES if e != "Miss")
    num_gt = sum(len(t["labels"]) for t in targets)
    assert 0 <= num_tp <= num_gt and r.counts["Miss"] <= num_gt - num_tp


def test_result_does_not_depend_on_image_or_detection_order():
    targets, predictions = random_data(7)
    # Continuous scores only (ties are broken by order, as in COCO).
    predictions = [
        p | {"scores": p["scores"] + 1e-4 * torch.rand(len(p["scores"]))} for p in predictions
    ]
    r = tide_errors(targets, predictions)
    flip = [{k: v.flip(0) for k, v in p.items()} for p in predictions[::-1]]
    r2 = tide_errors(targets[::-1], flip)
    assert r2.counts == r.counts
    assert r2.ap50 == pytest.approx(r.ap50, abs=1e-12)
    assert r2.delta_ap == pytest.approx(r.delta_ap, abs=1e-12)


# --------------------------------------------------------------------------- bad input


def good():
    return image([(A, 1)], [(A, 0.9, 1)])


@pytest.mark.parametrize(
    "targets, predictions, kwargs, match",
    [
        ("no", [], {}, "targets must be a list of per-image dicts"),
        ([good()[0]], [], {}, "one dict per image"),
        ([{"boxes": torch.zeros(0, 4)}], [good()[1]], {}, r"targets\[0\] must be a dict with keys"),
        ([good()[0]], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}], {}, "scores"),
        (
            [{"boxes": torch.tensor([[5.0, 0, 1, 1]]), "labels": torch.tensor([1])}],
            [good()[1]],
            {},
            r"targets\[0\]\['boxes'\]\[0\].*x2 < x1",
        ),
        (
            [{"boxes": torch.zeros(1, 4), "labels": torch.tensor([1.0])}],
            [good()[1]],
            {},
            "integer tensor",
        ),
        (
            [good()[0]],
            [good()[1] | {"scores": torch.tensor([0.5, 0.4])}],
            {},
            r"scores'\] must have shape \[1\]",
        ),
        ([good()[0]], [good()[1] | {"scores": torch.tensor([float("nan")])}], {}, "finite"),
        ([good()[0]], [good()[1]], {"iou_background": 0.5}, "must be below iou_foreground"),
        ([good()[0]], [good()[1]], {"iou_foreground": 1.5}, r"in \[0, 1\]"),
        ([good()[0] | {"iscrowd": torch.tensor([1])}], [good()[1]], {}, "crowd"),
        (
            [good()[0] | {"image_id": 3}, good()[0] | {"image_id": 3}],
            [good()[1], good()[1]],
            {},
            "distinct 'image_id'",
        ),
    ],
)
def test_bad_input_raises_a_value_error_that_says_what_is_wrong(
    targets, predictions, kwargs, match
):
    with pytest.raises(ValueError, match=match):
        tide_errors(targets, predictions, **kwargs)
