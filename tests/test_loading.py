"""vizlib.data.train_loader: argument checks, worker sizing, and batches equal to the
DataLoader the chapters build by hand (with and without a worker)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler

from vizlib.data import SceneConfig, SegmentationScenes, collate_segmentation, loading, train_loader


@pytest.fixture(scope="module")
def scenes():
    return SegmentationScenes(12, seed=3, config=SceneConfig(image_size=32))


def chapter_loader(dataset, batch_size, seed):
    """The loader the chapters build today (e.g. the FCN chapter's)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        collate_fn=collate_segmentation,
        generator=torch.Generator().manual_seed(seed),
    )


def epochs(loader, count=2):
    return [batch for _ in range(count) for batch in loader]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for (images_a, masks_a), (images_b, masks_b) in zip(a, b, strict=True):
        assert torch.equal(images_a, images_b)
        assert torch.equal(masks_a, masks_b)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(dataset=object()), "map-style"),
        (dict(dataset=[]), "0 images"),
        (dict(batch_size=13), "at least batch_size = 13"),
        (dict(batch_size=0), "batch_size must be >= 1"),
        (dict(batch_size=2.0), "batch_size must be an int"),
        (dict(shuffle=1), "shuffle must be True or False"),
        (dict(drop_last=None), "drop_last must be True or False"),
        (dict(collate_fn="stack"), "collate_fn must be callable"),
        (dict(seed=-1), r"seed must be an int in \[0, 2\*\*32\)"),
        (dict(seed=2**32), "seed must be an int"),
        (dict(seed=True), "seed must be an int"),
        (dict(workers=-1), 'workers must be an int >= 0 or "auto"'),
        (dict(workers="all"), 'workers must be an int >= 0 or "auto"'),
        (dict(workers=1.5), 'workers must be an int >= 0 or "auto"'),
        (dict(workers=True), 'workers must be an int >= 0 or "auto"'),
        (dict(device="gpu"), "device must be"),
        (dict(device=0), "device must be"),
    ],
)
def test_bad_arguments_raise(scenes, changes, message):
    kwargs = dict(dataset=scenes, batch_size=4, workers=0, device="cpu") | changes
    with pytest.raises(ValueError, match=message):
        train_loader(**kwargs)


def test_without_drop_last_a_small_data_set_is_one_batch(scenes):
    loader = train_loader(scenes, 13, drop_last=False, workers=0, device="cpu")
    assert len(loader) == 1


def test_auto_is_no_worker_on_a_cpu(scenes, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for device in (None, "cpu", torch.device("cpu")):
        loader = train_loader(scenes, 4, device=device)
        assert (loader.num_workers, loader.pin_memory, loader.persistent_workers) == (
            0,
            False,
            False,
        )


@pytest.mark.parametrize(
    "cores, processes, expected",
    [(16, None, 8), (64, None, 8), (4, None, 3), (1, None, 0), (8, "2", 3), (8, "bad", 7)],
)
def test_auto_sizes_the_workers_on_cuda(scenes, monkeypatch, cores, processes, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a faked GPU machine
    monkeypatch.setattr(
        loading.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False
    )
    if processes is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", processes)
    loader = train_loader(scenes, 4)  # device None: vizlib.device() says cuda
    assert loader.num_workers == expected
    assert loader.pin_memory is True
    assert loader.persistent_workers is (expected > 0)


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_an_int_is_taken_as_is(scenes):
    loader = train_loader(scenes, 4, workers=3, device="cpu")
    assert (loader.num_workers, loader.persistent_workers, loader.pin_memory) == (3, True, False)


def test_a_plain_loader_that_fit_can_shard(scenes):
    shuffled = train_loader(scenes, 4, workers=0, device="cpu")
    ordered = train_loader(scenes, 4, shuffle=False, drop_last=False, workers=0, device="cpu")
    assert type(shuffled) is DataLoader
    assert isinstance(shuffled.sampler, RandomSampler) and shuffled.drop_last
    assert isinstance(ordered.sampler, SequentialSampler) and not ordered.drop_last
    assert (shuffled.dataset, shuffled.batch_size) == (scenes, 4)
    assert isinstance(shuffled.generator, torch.Generator)


def test_no_worker_gives_the_chapters_batches(scenes):
    ours = epochs(
        train_loader(scenes, 4, collate_fn=collate_segmentation, seed=5, workers=0, device="cpu")
    )
    assert_same_batches(ours, epochs(chapter_loader(scenes, 4, seed=5)))
    other = epochs(chapter_loader(scenes, 4, seed=6))
    assert not all(
        torch.equal(a[0], b[0]) for a, b in zip(ours, other, strict=True)
    )  # the seed matters


def test_one_worker_gives_the_same_images_as_none(scenes):
    kwargs = dict(collate_fn=collate_segmentation, seed=5, device="cpu")
    alone = train_loader(scenes, 4, workers=0, **kwargs)
    with_worker = train_loader(scenes, 4, workers=1, **kwargs)
    a, b = epochs(alone, 1), epochs(with_worker, 1)
    key = lambda batches: sorted(image.sum().item() for images, _ in batches for image in images)  # noqa: E731
    assert len(a) == len(b) == 3
    assert key(a) == key(b)
    assert_same_batches(a, b)  # the order too: both draw it from the same generator


class RandomDraws(torch.utils.data.Dataset):
    """Item i: (i, a NumPy draw, a Python draw, a torch draw) made in the worker."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        import random

        return torch.tensor([index, np.random.random(), random.random(), torch.rand(()).item()])


def test_workers_repeat_their_random_draws_for_a_seed():
    def draws(seed):
        return torch.cat(list(train_loader(RandomDraws(), 4, seed=seed, workers=2, device="cpu")))

    first, again, other = draws(1), draws(1), draws(2)
    assert torch.equal(first, again)
    for column in (1, 2, 3):  # NumPy, random, torch: each differs between workers and seeds
        assert len(set(first[:, column].tolist())) == len(first)
        assert not torch.equal(first[:, column], other[:, column])
