"""The localisation chapter's data (vizlib.data.localisation): one thing per scene, one
class's keypoints, as tensors; PASCAL VOC fails offline with a message."""

from __future__ import annotations

import pytest
import torch

from vizlib.data import DataNotFoundError
from vizlib.data.localisation import TensorSamples, keypoint_data, localisation_data
from vizlib.data.scenes import KEYPOINT_NAMES, SceneConfig, make_scene


def test_localisation_data_is_one_thing_per_scene_and_deterministic():
    data = localisation_data(train_images=6, val_images=4, seed=3)
    assert len(data.train) == 6 and len(data.val) == 4 and data.source == "scenes"
    assert data.class_names[0] == "background" and len(data.class_names) == 6
    image, target = data.train[2]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert target["label"].dtype == torch.int64 and 1 <= int(target["label"]) <= 5
    # the box is the generator's (the tight box of the visible mask) of that very scene
    scene = make_scene(4, 2, SceneConfig(), num_objects=1)
    assert len(scene.labels) == 1
    assert torch.equal(target["box"], torch.from_numpy(scene.boxes[0]).float())
    assert int(target["label"]) == int(scene.labels[0])
    again = localisation_data(train_images=6, val_images=4, seed=3)
    assert torch.equal(again.train.images, data.train.images)
    assert not torch.equal(data.train.images[:4], data.val.images), "train and validation differ"
    batch = next(iter(torch.utils.data.DataLoader(data.train, batch_size=4)))
    assert batch[0].shape == (4, 3, 64, 64) and batch[1]["box"].shape == (4, 4)


def test_keypoint_data_holds_one_class_and_its_keypoints():
    data = keypoint_data("star", train_images=5, val_images=3, seed=0)
    assert data.keypoint_names == KEYPOINT_NAMES["star"] and len(data.keypoint_names) == 6
    image, target = data.train[0]
    assert target["keypoints"].shape == (6, 3) and target["box"].shape == (4,)
    kp = data.train.fields["keypoints"]  # [N, 6, 3]
    boxes = data.train.fields["box"]
    inside = kp[..., 2] > 0
    # labelled keypoints lie in their thing's box (a point sits inside its tip)
    x, y = kp[..., 0], kp[..., 1]
    in_box = (
        (x >= boxes[:, None, 0] - 1)
        & (x <= boxes[:, None, 2] + 1)
        & (y >= boxes[:, None, 1] - 1)
        & (y <= boxes[:, None, 3] + 1)
    )
    assert bool(in_box[inside].all())
    # the ring starts at the topmost tip
    for i in range(len(kp)):
        if bool(inside[i].all()):
            assert float(kp[i, 1, 1]) <= float(kp[i, 2:, 1].min()) + 1e-4
    rect = keypoint_data("rectangle", train_images=2, val_images=1)
    assert rect.train.fields["keypoints"].shape == (2, 5, 3)


def test_data_rejects_bad_arguments_and_voc_fails_offline_with_a_message(tmp_path):
    with pytest.raises(ValueError, match="source"):
        localisation_data("coco")
    with pytest.raises(ValueError, match="train_images"):
        localisation_data(train_images=0)
    with pytest.raises(ValueError, match="download"):
        localisation_data(download="yes")
    with pytest.raises(ValueError, match="thing"):
        keypoint_data("person")
    with pytest.raises(DataNotFoundError, match="download=True"):
        localisation_data("voc", root=tmp_path, train_images=4, val_images=4)
    with pytest.raises(ValueError, match="box"):
        TensorSamples(torch.rand(3, 3, 8, 8), box=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="images"):
        TensorSamples(torch.rand(3, 8, 8), box=torch.zeros(3, 4))


def test_tensor_samples_subset_and_repr():
    data = TensorSamples(torch.rand(5, 3, 8, 8), label=torch.arange(5), box=torch.rand(5, 4))
    part = data.subset([4, 1])
    assert len(part) == 2 and part.fields["label"].tolist() == [4, 1]
    assert torch.equal(part.images[0], data.images[4])
    assert "5 images" in repr(data)
