"""The scene generator: determinism, consistency of its annotations, label scheme."""

import numpy as np
import pytest

from vizlib.data import (
    IGNORE_INDEX,
    KEYPOINT_NAMES,
    NUM_KEYPOINTS,
    NUM_THINGS,
    PALETTE,
    STUFF_IDS,
    THING_CLASSES,
    SceneConfig,
    canonical_keypoint_order,
    make_scene,
    things_only_semantic,
)

SMALL = SceneConfig(image_size=48)


def _same(a, b):
    for name in ("image", "semantic", "instances", "labels", "boxes", "masks", "keypoints"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_same_seed_and_index_give_the_same_scene():
    _same(make_scene(3, 7, SMALL), make_scene(3, 7, SMALL))


def test_scene_does_not_depend_on_what_was_generated_before():
    alone = make_scene(5, 4, SMALL)
    in_stream = [make_scene(5, i, SMALL) for i in range(6)][4]
    _same(alone, in_stream)


def test_a_pinned_scene_never_changes():
    # Guards against accidental changes to the generator (which would silently change
    # every chapter's data and stored results). Update deliberately if the generator
    # is changed on purpose.
    s = make_scene(0, 0, SceneConfig())
    assert s.image.shape == (64, 64, 3) and s.image.dtype == np.uint8
    # labels and boxes exactly; the pixel sum loosely, since numpy's float32 sin/cos may
    # differ in the last bit between CPUs
    assert (s.labels.tolist(), s.boxes.tolist()) == ([4], [[38.0, 0.0, 60.0, 18.0]])
    assert abs(int(s.image.astype(np.int64).sum()) - 923635) < 200


def test_different_indices_and_seeds_differ():
    a, b, c = make_scene(0, 0, SMALL), make_scene(0, 1, SMALL), make_scene(1, 0, SMALL)
    assert not np.array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)


def test_annotations_agree_with_each_other():
    for scene in (make_scene(11, i, SMALL) for i in range(25)):
        n = scene.num_objects
        h = w = SMALL.image_size
        assert scene.masks.shape == (n, h, w) and scene.masks.dtype == bool
        assert scene.boxes.shape == (n, 4) and scene.labels.shape == (n,)
        assert scene.keypoints.shape == (n, NUM_KEYPOINTS, 3)
        assert set(np.unique(scene.semantic)) <= set(range(1, NUM_THINGS + 1)) | set(STUFF_IDS)
        for i in range(n):
            mask = scene.masks[i]
            assert mask.sum() >= SMALL.min_area
            np.testing.assert_array_equal(mask, scene.instances == i + 1)
            assert (scene.semantic[mask] == scene.labels[i]).all()
            ys, xs = np.nonzero(mask)
            assert scene.boxes[i].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            names = KEYPOINT_NAMES[THING_CLASSES[scene.labels[i] - 1]]
            vis = scene.keypoints[i, :, 2]
            assert (vis[len(names) :] == 0).all(), "padding slots must have visibility 0"
            # a visible keypoint lies in (or within 2 pixels of: a star's tip is thinner
            # than a pixel) its own mask
            for x, y, v in scene.keypoints[i]:
                if v == 2:
                    r0, c0 = max(0, int(y) - 2), max(0, int(x) - 2)
                    assert mask[r0 : int(y) + 3, c0 : int(x) + 3].any()
        # stuff fills everything that no thing covers
        assert ((scene.instances == 0) == np.isin(scene.semantic, STUFF_IDS)).all()


def test_some_scenes_are_empty_and_others_hold_several_things():
    counts = [make_scene(2, i, SMALL).num_objects for i in range(60)]
    assert 0 in counts and max(counts) >= 3
    empty = next(s for s in (make_scene(2, i, SMALL) for i in range(60)) if s.num_objects == 0)
    assert empty.boxes.shape == (0, 4) and empty.masks.shape == (0, 48, 48)
    assert empty.keypoints.shape == (0, NUM_KEYPOINTS, 3)


def test_every_class_appears_and_occlusion_happens():
    scenes = [make_scene(4, i, SMALL) for i in range(80)]
    labels = np.concatenate([s.labels for s in scenes])
    assert set(labels.tolist()) == set(range(1, NUM_THINGS + 1))
    vis = np.concatenate([s.keypoints[..., 2].ravel() for s in scenes])
    assert {0, 1, 2} <= set(vis.tolist()), "keypoints hidden (1) and outside (0) both occur"
    stuff = set(np.concatenate([s.stuff_ids for s in scenes]).tolist())
    assert stuff == set(STUFF_IDS)


def test_image_size_is_a_setting():
    s = make_scene(0, 1, SceneConfig(image_size=128))
    assert s.image.shape == (128, 128, 3) and s.semantic.shape == (128, 128)


def test_forced_single_object():
    for i in range(10):
        assert make_scene(0, i, SMALL, num_objects=1).num_objects == 1


def test_things_only_semantic_is_voc_style():
    s = make_scene(0, 2, SMALL)
    t = things_only_semantic(s.semantic)
    assert set(np.unique(t)) <= set(range(NUM_THINGS + 1))
    assert ((t == 0) == (s.instances == 0)).all()
    assert IGNORE_INDEX == 255 and PALETTE.shape == (1 + NUM_THINGS + len(STUFF_IDS), 3)


def test_canonical_order_is_topmost_then_clockwise_and_undoes_a_mirror():
    # a square's centre and corners, given in a scrambled order
    kp = np.array([[[10, 10, 2], [15, 15, 2], [5, 5, 2], [5, 15, 2], [15, 5, 2], [0, 0, 0]]], float)
    out = canonical_keypoint_order(kp)
    assert out[0, :5, :2].tolist() == [[10, 10], [5, 5], [15, 5], [15, 15], [5, 15]]
    assert kp[0, 1, 0] == 15, "input unchanged"
    # mirror x -> 20 - x: the ring must be re-sorted to the same rule
    mirrored = kp.copy()
    mirrored[0, :5, 0] = 20 - mirrored[0, :5, 0]
    assert canonical_keypoint_order(mirrored)[0, :5, :2].tolist() == out[0, :5, :2].tolist()


@pytest.mark.parametrize(
    "bad",
    [dict(image_size=8), dict(min_objects=3, max_objects=2), dict(p_empty=1.5), dict(min_size=0.0)],
)
def test_bad_config_raises(bad):
    with pytest.raises(ValueError):
        SceneConfig(**bad)


def test_bad_seed_raises():
    with pytest.raises(ValueError, match="seed"):
        make_scene(-1, 0)
    with pytest.raises(ValueError, match="config"):
        make_scene(0, 0, config={"image_size": 64})
