"""Exercises of the chapter "U-Net: skip connections at every scale" (lessons/unet): the
output size of the original (unpadded) U-Net, the centre crop that fits its skips,
SegNet's max-unpooling, and the class weights of median frequency balancing (which the
chapter then trains a U-Net with)."""

from __future__ import annotations

from ..spec import Case, exercise, hidden

_NOT_THE_ANSWER = ("vizlib.exercises",)


def _valid_unet_output_size(n: int, depth: int) -> int:
    """Run a one-channel U-Net of unpadded convolutions (the paper's) on an n x n input."""
    import torch
    from torch import nn

    conv = nn.Conv2d(1, 1, 3)  # valid: no padding, removes 2 pixels
    up = nn.ConvTranspose2d(1, 1, 2, stride=2)
    pool = nn.MaxPool2d(2)
    x = torch.zeros(1, 1, n, n)
    with torch.no_grad():
        for _ in range(depth):
            x = conv(conv(x))
            x = pool(x)
        x = conv(conv(x))  # the bottom
        for _ in range(depth):
            x = conv(conv(up(x)))  # the skip is cropped to x's size: it does not change it
        x = nn.Conv2d(1, 1, 1)(x)
    return int(x.shape[-1])


@exercise(
    "unet.valid_output_size",
    title="The output size of the original U-Net",
    function="valid_output_size",
    points=2,
    hint="Follow one side length down and back up: each unpadded 3x3 convolution removes 2 "
    "pixels, each pool halves, the bottom has two convolutions, each 2x2 up-convolution "
    "doubles, and every decoder level has two more convolutions. The 1x1 classifier "
    "keeps the size.",
    forbidden=("Conv2d", "conv2d", "ConvTranspose2d", "vizlib.nn") + _NOT_THE_ANSWER,
)
def _valid_output_size_cases():
    yield Case(
        "the paper's tile: 572 pixels in, 388 out (depth 4)",
        (572, 4),
        expected=388,
        hint="572 -> 568 -> 284 -> 280 -> 140 -> 136 -> 68 -> 64 -> 32 -> 28 (bottom), "
        "then 56 -> 52, 104 -> 100, 200 -> 196, 392 -> 388",
    )
    yield Case(
        "depth 1: 20 -> 16 -> 8 (pool) -> 4 (bottom) -> 8 (up) -> 4",
        (20, 1),
        expected=_valid_unet_output_size(20, 1),
    )
    for n, depth in [(188, 3), (92, 2), (252, 4), (1052, 4), (60, 2)]:
        yield Case(
            f"{n} pixels, depth {depth}: as a stack of torch layers gives",
            (n, depth),
            expected=_valid_unet_output_size(n, depth),
        )


@exercise(
    "unet.center_crop",
    title="Crop a skip to the decoder's size",
    function="center_crop",
    points=2,
    hint="Take rows top .. top + height, with top = (H - height) // 2, and the same for the "
    "columns; slice the last two dimensions so that any leading dimensions are kept.",
    forbidden=("center_crop", "CenterCrop", "crop", "vizlib.nn", "torchvision") + _NOT_THE_ANSWER,
)
def _center_crop_cases():
    import torch
    from torchvision.transforms.v2 import functional as TF

    g = torch.Generator().manual_seed(0)
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    yield Case("6 x 6 to 2 x 2 keeps the middle four", (x, 2, 2), expected=x[..., 2:4, 2:4])
    yield Case("the same size is the identity", (x, 6, 6), expected=x)
    for shape, (h, w) in [
        ((2, 8, 64, 64), (56, 56)),
        ((3, 136, 136), (104, 104)),
        ((1, 4, 10, 14), (6, 8)),
        ((5, 9), (1, 3)),
    ]:
        t = torch.rand(*shape, generator=g)
        yield Case(
            f"{tuple(shape)} to {h} x {w} agrees with torchvision's center_crop",
            (t, h, w),
            expected=TF.center_crop(t, [h, w]),
        )


@exercise(
    "unet.unpool",
    title="SegNet's max-unpooling",
    function="unpool",
    points=3,
    hint="Make a zero tensor of the output's size with the last two dimensions flattened "
    "([..., H * W]); each pooled value goes to the flat position its switch names "
    "(Tensor.scatter_ along the last dimension, or index_put_); reshape to [..., H, W].",
    forbidden=("max_unpool2d", "MaxUnpool2d", "max_unpool", "vizlib.upsampling", "vizlib.nn")
    + _NOT_THE_ANSWER,
)
def _unpool_cases():
    import torch
    from torch.nn import functional as F

    x = torch.tensor(
        [[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 8.0, 1.0], [0.0, 2.0, 1.0, 1.0], [6.0, 1.0, 0.0, 3.0]]]]
    )
    pooled, switches = F.max_pool2d(x, 2, return_indices=True)
    yield Case(
        "a 4 x 4 example: 5, 8, 6 and 3 go back where they were",
        (pooled, switches, (4, 4)),
        expected=F.max_unpool2d(pooled, switches, 2, output_size=(4, 4)),
        hint="the switches are flat indices row * W + col of the 4 x 4 plane: 1, 6, 12, 15",
    )
    g = torch.Generator().manual_seed(0)
    for shape in [(2, 3, 8, 8), (1, 16, 6, 10), (4, 7, 7)]:
        x = torch.randn(*shape, generator=g)
        pooled, switches = F.max_pool2d(x, 2, return_indices=True)
        size = tuple(x.shape[-2:])
        yield Case(
            f"a random {tuple(shape)} map agrees with F.max_unpool2d",
            (pooled, switches, size),
            expected=F.max_unpool2d(pooled, switches, 2, output_size=size),
        )


@exercise(
    "unet.class_weights",
    title="Class weights by median frequency balancing",
    function="balanced_class_weights",
    points=3,
    hint="For every class add up two counts over the images: its own pixels, and the labelled "
    "pixels of each image in which it appears (an image counts once per class it holds). "
    "Their ratio is the class's frequency; the median is over the classes that appear "
    "(torch.quantile(freq, 0.5) or numpy.median average the two middle values; "
    "Tensor.median does not). Leave pixels equal to ignore_index out of every count.",
    forbidden=("median_frequency_weights", "vizlib.losses") + _NOT_THE_ANSWER,
)
def _class_weights_cases():
    import torch

    from vizlib.losses import median_frequency_weights

    a = torch.zeros(4, 4, dtype=torch.long)
    a[0] = 1  # 12 pixels of class 0, 4 of class 1
    b = torch.zeros(4, 4, dtype=torch.long)
    b[2:] = 2  # 8 pixels of class 0, 8 of class 2
    yield Case(
        "two 4 x 4 images, classes 0, 1, 2 and an absent class 3",
        (torch.stack([a, b]), 4, None),
        expected=torch.tensor([0.8, 2.0, 1.0, 0.0]),
        hint="class 1 is 4 of the 16 pixels of the one image it is in (1/4), class 2 is 8 "
        "of 16 (1/2), class 0 is 20 of 32 (5/8); the median frequency is 1/2, and "
        "class 3 appears nowhere, so it weighs 0",
    )
    yield Case(
        "an even number of classes: the median averages the two middle frequencies",
        (torch.tensor([[[0, 0, 0, 0, 0, 1, 1, 1, 2, 3]]]), 4, None),
        expected=torch.tensor([0.4, 2 / 3, 2.0, 2.0]),
        hint="frequencies 0.5, 0.3, 0.1, 0.1: the median is (0.3 + 0.1) / 2 = 0.2",
    )
    yield Case(
        "ignored pixels (255) count for no class and in no image's size",
        (torch.tensor([[[0, 1, 255], [1, 1, 255]]]), 2, 255),
        expected=torch.tensor([2.0, 2 / 3]),
        hint="the image has 4 labelled pixels: class 0 is 1/4 of them, class 1 is 3/4",
    )
    g = torch.Generator().manual_seed(0)
    for n, shape, classes, ignore in [
        (3, (8, 8), 5, None),
        (6, (5, 7), 9, 255),
        (10, (16, 16), 4, 255),
        (2, (6, 6), 7, None),
    ]:
        masks = torch.randint(0, classes, (n, *shape), generator=g)
        masks[torch.rand(masks.shape, generator=g) < 0.5] = 0  # a common class, like the stuff
        if ignore is not None:
            masks[torch.rand(masks.shape, generator=g) < 0.2] = ignore
        yield Case(
            f"{n} random {shape[0]} x {shape[1]} masks, {classes} classes"
            + (f", ignore_index {ignore}" if ignore is not None else ""),
            (masks, classes, ignore),
            # vizlib's version, checked against the definition image by image in tests/test_losses.py
            expected=median_frequency_weights(masks, classes, ignore),
        )


# ---------------------------------------------------------------- hidden cases
# Drawn at grading time from the instructor's secret (vizlib.exercises.spec.hidden): the
# same kinds of input as the random public cases, unknown without the secret.


def _draw(g, low: int, high: int) -> int:
    """A whole number in [low, high]."""
    import torch

    return int(torch.randint(low, high + 1, (1,), generator=g))


def _tiles_evenly(n: int, depth: int) -> bool:
    """Whether every pool of a depth-``depth`` unpadded U-Net meets an even size."""
    for _ in range(depth):
        n -= 4
        if n < 2 or n % 2:
            return False
        n //= 2
    return n > 4


@hidden("unet.valid_output_size")
def _valid_output_size_hidden(g):
    found = 0
    while found < 3:
        depth = _draw(g, 1, 4)
        n = _draw(g, 30, 700)
        if not _tiles_evenly(n, depth):
            continue
        try:
            size = _valid_unet_output_size(n, depth)
        except RuntimeError:  # too small for the decoder's convolutions
            continue
        found += 1
        yield Case(f"a random tile ({found})", (n, depth), expected=size)


@hidden("unet.center_crop")
def _center_crop_hidden(g):
    import torch
    from torchvision.transforms.v2 import functional as TF

    for k in range(3):
        lead = [_draw(g, 1, 4) for _ in range(k)]
        h, w = _draw(g, 1, 20), _draw(g, 1, 20)
        t = torch.rand(*lead, h + 2 * _draw(g, 0, 8), w + 2 * _draw(g, 0, 8), generator=g)
        yield Case(f"a random map ({k + 1})", (t, h, w), expected=TF.center_crop(t, [h, w]))


@hidden("unet.unpool")
def _unpool_hidden(g):
    import torch
    from torch.nn import functional as F

    for k in range(3):
        shape = [_draw(g, 1, 4), _draw(g, 1, 6), _draw(g, 2, 12), _draw(g, 2, 12)][k == 2 :]
        x = torch.randn(*shape, generator=g)
        pooled, switches = F.max_pool2d(x, 2, return_indices=True)
        size = tuple(x.shape[-2:])
        yield Case(
            f"a random map ({k + 1})",
            (pooled, switches, size),
            expected=F.max_unpool2d(pooled, switches, 2, output_size=size),
        )


@hidden("unet.class_weights")
def _class_weights_hidden(g):
    import torch

    from vizlib.losses import median_frequency_weights

    for k, ignore in enumerate((None, 255, 255)):
        classes = _draw(g, 3, 10)
        masks = torch.randint(
            0, classes, (_draw(g, 2, 8), _draw(g, 4, 12), _draw(g, 4, 12)), generator=g
        )
        masks[torch.rand(masks.shape, generator=g) < 0.4] = 0
        if ignore is not None:
            masks[torch.rand(masks.shape, generator=g) < 0.15] = ignore
        yield Case(
            f"random masks ({k + 1})",
            (masks, classes, ignore),
            expected=median_frequency_weights(masks, classes, ignore),
        )
