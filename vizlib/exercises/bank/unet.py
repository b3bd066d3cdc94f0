"""Exercises of the chapter "U-Net: skip connections at every scale" (lessons/unet): the
output size of the original (unpadded) U-Net, the centre crop that fits its skips, and
SegNet's max-unpooling."""

from __future__ import annotations

from ..spec import Case, exercise

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
    "unet.valid_output_size", title="The output size of the original U-Net",
    function="valid_output_size", points=2,
    hint="Follow one side length down and back up: each unpadded 3x3 convolution removes 2 "
         "pixels, each pool halves, the bottom has two convolutions, each 2x2 up-convolution "
         "doubles, and every decoder level has two more convolutions. The 1x1 classifier "
         "keeps the size.",
    forbidden=("Conv2d", "conv2d", "ConvTranspose2d", "vizlib.nn") + _NOT_THE_ANSWER,
)
def _valid_output_size_cases():
    yield Case("the paper's tile: 572 pixels in, 388 out (depth 4)", (572, 4), expected=388,
               hint="572 -> 568 -> 284 -> 280 -> 140 -> 136 -> 68 -> 64 -> 32 -> 28 (bottom), "
                    "then 56 -> 52, 104 -> 100, 200 -> 196, 392 -> 388")
    yield Case("depth 1: 20 -> 16 -> 8 (pool) -> 4 (bottom) -> 8 (up) -> 4", (20, 1),
               expected=_valid_unet_output_size(20, 1))
    for n, depth in [(188, 3), (92, 2), (252, 4), (1052, 4), (60, 2)]:
        yield Case(f"{n} pixels, depth {depth}: as a stack of torch layers gives", (n, depth),
                   expected=_valid_unet_output_size(n, depth))


@exercise(
    "unet.center_crop", title="Crop a skip to the decoder's size", function="center_crop",
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
    for shape, (h, w) in [((2, 8, 64, 64), (56, 56)), ((3, 136, 136), (104, 104)),
                          ((1, 4, 10, 14), (6, 8)), ((5, 9), (1, 3))]:
        t = torch.rand(*shape, generator=g)
        yield Case(f"{tuple(shape)} to {h} x {w} agrees with torchvision's center_crop",
                   (t, h, w), expected=TF.center_crop(t, [h, w]))


@exercise(
    "unet.unpool", title="SegNet's max-unpooling", function="unpool", points=3,
    hint="Make a zero tensor of the output's size with the last two dimensions flattened "
         "([..., H * W]); each pooled value goes to the flat position its switch names "
         "(Tensor.scatter_ along the last dimension, or index_put_); reshape to [..., H, W].",
    forbidden=("max_unpool2d", "MaxUnpool2d", "max_unpool", "vizlib.upsampling", "vizlib.nn")
    + _NOT_THE_ANSWER,
)
def _unpool_cases():
    import torch
    from torch.nn import functional as F

    x = torch.tensor([[[[1.0, 5.0, 2.0, 0.0],
                        [3.0, 4.0, 8.0, 1.0],
                        [0.0, 2.0, 1.0, 1.0],
                        [6.0, 1.0, 0.0, 3.0]]]])
    pooled, switches = F.max_pool2d(x, 2, return_indices=True)
    yield Case("a 4 x 4 example: 5, 8, 6 and 3 go back where they were", (pooled, switches, (4, 4)),
               expected=F.max_unpool2d(pooled, switches, 2, output_size=(4, 4)),
               hint="the switches are flat indices row * W + col of the 4 x 4 plane: 1, 6, 12, 15")
    g = torch.Generator().manual_seed(0)
    for shape in [(2, 3, 8, 8), (1, 16, 6, 10), (4, 7, 7)]:
        x = torch.randn(*shape, generator=g)
        pooled, switches = F.max_pool2d(x, 2, return_indices=True)
        size = tuple(x.shape[-2:])
        yield Case(f"a random {tuple(shape)} map agrees with F.max_unpool2d",
                   (pooled, switches, size),
                   expected=F.max_unpool2d(pooled, switches, 2, output_size=size))
