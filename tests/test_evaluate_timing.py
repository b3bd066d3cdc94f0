"""vizlib.evaluate.inference_ms: per image, in eval mode (mode restored), warm-up not
timed, models without parameters, and bad input."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from vizlib.evaluate import batch_inference_ms, inference_ms


class _Sleeper(nn.Module):
    """Sleeps ``seconds`` per forward call, whatever the batch size."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.weight = nn.Parameter(torch.zeros(()))
        self.calls = 0
        self.modes = []

    def forward(self, x):
        self.calls += 1
        self.modes.append(self.training)
        time.sleep(self.seconds)
        return x * self.weight


def test_inference_ms_is_per_image_and_in_eval_mode():
    model = _Sleeper(0.04).train()
    ms = inference_ms(model, torch.rand(8, 3, 8, 8), repeats=3)
    assert model.calls == 4  # one warm-up, three timed
    assert model.modes == [False] * 4 and model.training  # timed in eval mode, mode restored
    assert 5 <= ms < 20  # 40 ms a call over 8 images: 5 ms per image (plus overhead)


def test_inference_ms_works_for_a_model_without_parameters():
    assert inference_ms(nn.Identity(), torch.rand(2, 3, 4, 4)) >= 0


@pytest.mark.parametrize(
    "model, images, repeats, word",
    [
        ("model", torch.rand(1, 3, 8, 8), 1, "model"),
        (nn.Identity(), torch.rand(3, 8, 8), 1, "images"),
        (nn.Identity(), torch.zeros(1, 3, 8, 8, dtype=torch.long), 1, "images"),
        (nn.Identity(), torch.rand(0, 3, 8, 8), 1, "images"),
        (nn.Identity(), torch.rand(1, 3, 8, 8), 0, "repeats"),
    ],
)
def test_inference_ms_bad_input(model, images, repeats, word):
    with pytest.raises(ValueError, match=word):
        inference_ms(model, images, repeats=repeats)


class _ListModel(nn.Module):
    """Takes a list of images of any sizes, as torchvision's detectors do."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.seen = []

    def forward(self, images):
        self.seen.append([tuple(im.shape) for im in images])
        time.sleep(0.02)
        return [{"boxes": torch.zeros(0, 4)} for _ in images]


def test_inference_ms_takes_a_list_of_images_of_any_size():
    model = _ListModel()
    ms = inference_ms(model, [torch.rand(3, 8, 8), torch.rand(3, 6, 10)], repeats=2)
    assert model.seen == [[(3, 8, 8), (3, 6, 10)]] * 3  # the list as given, warm-up + 2 timed
    assert 10 <= ms < 40  # 20 ms a call over 2 images: 10 ms per image (plus overhead)


@pytest.mark.parametrize(
    "images, word",
    [
        ([], "images"),
        ([torch.rand(3, 8, 8), torch.rand(8, 8)], r"images\[1\]"),
        ([torch.zeros(3, 8, 8, dtype=torch.long)], r"images\[0\]"),
        ([torch.rand(3, 8, 8), "x"], r"images\[1\]"),
    ],
)
def test_inference_ms_bad_list(images, word):
    with pytest.raises(ValueError, match=word):
        inference_ms(_ListModel(), images)


def test_batch_inference_ms_fills_each_batch_from_the_images_in_turn():
    model = _ListModel()
    images = [torch.rand(3, 8, 8), torch.rand(3, 6, 10)]
    ms = batch_inference_ms(model, images, batch_sizes=(1, 4), images_per_size=4)
    assert set(ms) == {1, 4}
    # batch 1: warm-up + 4 timed passes of one image; batch 4: warm-up + 1 pass, images reused
    assert model.seen[:5] == [[(3, 8, 8)]] * 5
    assert model.seen[5:] == [[(3, 8, 8), (3, 6, 10), (3, 8, 8), (3, 6, 10)]] * 2
    assert 15 <= ms[1] < 60 and 3 <= ms[4] < 20  # 20 ms a call: per image, 20 vs 5 ms


@pytest.mark.parametrize(
    "images, batch_sizes, word",
    [
        ([], (1,), "images"),
        (torch.rand(2, 3, 8, 8), (1,), "images"),
        ([torch.rand(3, 8, 8)], (), "batch_sizes"),
        ([torch.rand(3, 8, 8)], (1, 0), r"batch_sizes\[1\]"),
        ([torch.rand(3, 8, 8)], "32", "batch_sizes"),
    ],
)
def test_batch_inference_ms_bad_input(images, batch_sizes, word):
    with pytest.raises(ValueError, match=word):
        batch_inference_ms(_ListModel(), images, batch_sizes=batch_sizes)
