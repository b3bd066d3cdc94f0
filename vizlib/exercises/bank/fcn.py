"""Exercises of the chapter "From sliding windows to fully convolutional networks"
(lessons/fcn): the size of a transposed convolution's output, the bilinear kernel that
FCN starts its upsampling from, the class-wise weight of that upsampling (the two feed a
short training run in the chapter), and mIoU from a confusion matrix."""

from __future__ import annotations

from ..spec import Case, exercise, hidden

_NOT_THE_ANSWER = ("vizlib.exercises",)


@exercise(
    "fcn.transposed_output_size",
    title="Output size of a transposed convolution",
    function="transposed_output_size",
    points=2,
    hint="A transposed convolution stamps a kernel every `stride` output pixels: n inputs "
    "cover (n - 1) * stride + kernel_size pixels; then `padding` is cropped from each "
    "side and `output_padding` added on one side.",
    forbidden=(
        "conv_transpose_output_size",
        "ConvTranspose1d",
        "ConvTranspose2d",
        "conv_transpose1d",
        "conv_transpose2d",
        "vizlib.conv_algebra",
    )
    + _NOT_THE_ANSWER,
)
def _transposed_output_size_cases():
    import torch

    def torch_size(n, k, s, p, op=0):
        layer = torch.nn.ConvTranspose1d(1, 1, k, stride=s, padding=p, output_padding=op)
        return int(layer(torch.zeros(1, 1, n)).shape[-1])

    yield Case(
        "stride 1, no padding: n + k - 1 (2 inputs, kernel 3 -> 4)", (2, 3, 1, 0), expected=4
    )
    yield Case(
        "the lecture's 3x3, stride 2, pad 1 on a 2x2 input gives 3 (not 4)",
        (2, 3, 2, 1),
        expected=3,
        hint="(2 - 1) * 2 + 3 = 5 pixels stamped, minus 1 cropped on each side",
    )
    yield Case(
        "... and output_padding=1 restores the 4 of an exact 2x upsampling",
        (2, 3, 2, 1, 1),
        expected=4,
    )
    yield Case("kernel 4, stride 2, pad 1 doubles any size (7 -> 14)", (7, 4, 2, 1), expected=14)
    yield Case("FCN-32s: kernel 64, stride 32, pad 16 takes 2 to 64", (2, 64, 32, 16), expected=64)
    for n, k, s, p, op in [(5, 3, 3, 0, 0), (9, 16, 8, 4, 0), (1, 5, 2, 2, 1), (13, 2, 2, 0, 1)]:
        yield Case(
            f"n={n}, kernel={k}, stride={s}, padding={p}, output_padding={op} agrees "
            "with nn.ConvTranspose1d",
            (n, k, s, p, op),
            expected=torch_size(n, k, s, p, op),
        )


@exercise(
    "fcn.bilinear_kernel",
    title="The bilinear upsampling kernel",
    function="my_bilinear_kernel",
    points=3,
    hint="The kernel has size K = 2 * factor - factor % 2. Along one axis it is a tent, "
    "1 - |i - centre| / factor for i = 0 .. K - 1, centred at factor - 1 when K is odd "
    "and at factor - 0.5 when K is even; the 2D kernel is the outer product of the tent "
    "with itself.",
    forbidden=(
        "bilinear_kernel",
        "bilinear_upsampling_weights",
        "bilinear_conv_transpose",
        "vizlib.upsampling",
        "vizlib.nn",
    )
    + _NOT_THE_ANSWER,
)
def _bilinear_kernel_cases():
    import torch

    from vizlib.upsampling import bilinear_kernel

    tent2 = torch.tensor([0.25, 0.75, 0.75, 0.25])
    yield Case(
        "factor 1 is the identity: [[1.]]",
        (1,),
        expected=torch.ones(1, 1),
        hint="K = 2 * 1 - 1 = 1: a single tap of weight 1",
    )
    yield Case(
        "factor 2: the outer product of the tent [1/4, 3/4, 3/4, 1/4]",
        (2,),
        expected=torch.outer(tent2, tent2),
        hint="K = 4 is even, so the centre falls between taps 1 and 2, at 1.5",
    )
    tent3 = torch.tensor([1 / 3, 2 / 3, 1.0, 2 / 3, 1 / 3])
    yield Case(
        "factor 3: a 5x5 kernel, tent [1/3, 2/3, 1, 2/3, 1/3]",
        (3,),
        expected=torch.outer(tent3, tent3),
    )
    for factor in (4, 8, 32):
        yield Case(
            f"factor {factor}: the {2 * factor} x {2 * factor} kernel of FCN's upsampling",
            (factor,),
            expected=bilinear_kernel(factor),
        )


@exercise(
    "fcn.upsampling_weights",
    title="One kernel per class: the weight of FCN's upsampling",
    function="my_upsampling_weights",
    points=2,
    hint="nn.ConvTranspose2d's weight is [in_channels, out_channels, K, K]: weight[i, o] is the "
    "kernel that input map i stamps into output map o. Each class map is upsampled on its "
    "own: weight[c, c] is the kernel for every c, and weight[i, o] is zero when i != o "
    "(torch.eye(channels) broadcast against the kernel builds it).",
    forbidden=(
        "bilinear_upsampling_weights",
        "bilinear_conv_transpose",
        "vizlib.upsampling",
        "vizlib.nn",
    )
    + _NOT_THE_ANSWER,
)
def _upsampling_weights_cases():
    import torch

    from vizlib.upsampling import bilinear_kernel, bilinear_upsampling_weights

    def diagonal(kernel, channels):
        weight = torch.zeros(channels, channels, *kernel.shape)
        for c in range(channels):
            weight[c, c] = kernel
        return weight

    g = torch.Generator().manual_seed(0)
    k3 = torch.rand(3, 3, generator=g)
    yield Case(
        "one channel: the kernel itself, as a [1, 1, K, K] weight", (k3, 1), expected=k3[None, None]
    )
    yield Case(
        "2 channels, a 3x3 kernel: [2, 2, 3, 3], the kernel at [0, 0] and [1, 1], zeros at "
        "[0, 1] and [1, 0]",
        (k3, 2),
        expected=diagonal(k3, 2),
        hint="weight[0, 1] is what channel 0 stamps into channel 1: it must be zero, or the "
        "scores of one class leak into another's map",
    )
    yield Case(
        "3 channels: each upsampled on its own, none mixed into another",
        (k3, 3),
        expected=diagonal(k3, 3),
    )
    k4 = torch.rand(4, 4, generator=g)
    yield Case("an even 4x4 kernel, 5 channels", (k4, 5), expected=diagonal(k4, 5))
    yield Case(
        "the scenes' 9 classes, the bilinear kernel of factor 2: vizlib's FCN starts its 2x "
        "upsamplings with this",
        (bilinear_kernel(2), 9),
        expected=bilinear_upsampling_weights(9, 2),
    )
    yield Case(
        "PASCAL VOC's 21 classes, factor 8 (FCN-8s's last upsampling)",
        (bilinear_kernel(8), 21),
        expected=bilinear_upsampling_weights(21, 8),
    )


@exercise(
    "fcn.mean_iou",
    title="mIoU from a confusion matrix",
    function="mean_iou",
    points=3,
    hint="For class c: TP = cm[c, c]; the union is (row c) + (column c) - TP, i.e. every "
    "pixel that is c in the truth or in the prediction. IoU = TP / union. Leave out the "
    "classes whose union is 0 (absent from truth and prediction), then average.",
    forbidden=(
        "mean_iou",
        "per_class_iou",
        "jaccard_index",
        "vizlib.metrics",
        "torchmetrics",
        "sklearn",
    )
    + _NOT_THE_ANSWER,
)
def _mean_iou_cases():
    import torch

    from vizlib.metrics import mean_iou

    yield Case(
        "a perfect prediction: every IoU is 1", (torch.tensor([[5, 0], [0, 3]]),), expected=1.0
    )
    yield Case(
        "[[2, 1], [1, 2]]: each class 2 / (2 + 1 + 1) = 0.5",
        (torch.tensor([[2, 1], [1, 2]]),),
        expected=0.5,
        hint="the union of class 0 is row 0 + column 0 - cm[0, 0] = 3 + 3 - 2",
    )
    cm = torch.tensor([[4, 0, 0], [2, 6, 0], [0, 0, 0]])
    yield Case(
        "a class absent from truth and prediction is left out (not counted as 0)",
        (cm,),
        expected=(4 / 6 + 6 / 8) / 2,
        hint="its union is 0: skip it, do not divide by 0",
    )
    cm = torch.tensor([[5, 3], [0, 0]])
    yield Case(
        "a class predicted but never true has IoU 0 and counts", (cm,), expected=(5 / 8 + 0) / 2
    )
    g = torch.Generator().manual_seed(0)
    cm = torch.randint(0, 50, (9, 9), generator=g)
    yield Case(
        "a random 9-class matrix agrees with vizlib.metrics.mean_iou", (cm,), expected=mean_iou(cm)
    )
    yield Case("float counts work too", (cm.double(),), expected=mean_iou(cm))


# ---------------------------------------------------------------- hidden cases
# Drawn at grading time from the instructor's secret (vizlib.exercises.spec.hidden): the
# same kinds of input as the random public cases, unknown without the secret.


def _draw(g, low: int, high: int) -> int:
    """A whole number in [low, high]."""
    import torch

    return int(torch.randint(low, high + 1, (1,), generator=g))


@hidden("fcn.transposed_output_size")
def _transposed_output_size_hidden(g):
    import torch

    found = 0
    while found < 4:
        n, k, s = _draw(g, 1, 20), _draw(g, 1, 12), _draw(g, 1, 6)
        p, op = _draw(g, 0, k - 1), _draw(g, 0, s - 1)
        size = (n - 1) * s - 2 * p + k + op
        if size < 1:
            continue
        layer = torch.nn.ConvTranspose1d(1, 1, k, stride=s, padding=p, output_padding=op)
        found += 1
        yield Case(
            f"random sizes ({found})",
            (n, k, s, p, op),
            expected=int(layer(torch.zeros(1, 1, n)).shape[-1]),
        )


@hidden("fcn.bilinear_kernel")
def _bilinear_kernel_hidden(g):
    from vizlib.upsampling import bilinear_kernel

    for k, factor in enumerate(sorted({_draw(g, 5, 40) for _ in range(3)})):
        yield Case(f"a random factor ({k + 1})", (factor,), expected=bilinear_kernel(factor))


@hidden("fcn.upsampling_weights")
def _upsampling_weights_hidden(g):
    import torch

    for k in range(3):
        size, channels = _draw(g, 1, 7), _draw(g, 2, 12)
        kernel = torch.rand(size, size, generator=g)
        weight = torch.zeros(channels, channels, size, size)
        weight[torch.arange(channels), torch.arange(channels)] = kernel
        yield Case(f"a random kernel and channels ({k + 1})", (kernel, channels), expected=weight)


@hidden("fcn.mean_iou")
def _mean_iou_hidden(g):
    import torch

    from vizlib.metrics import mean_iou

    for k in range(3):
        classes = _draw(g, 2, 25)
        cm = torch.randint(0, 60, (classes, classes), generator=g)
        cm[torch.rand(classes, generator=g) < 0.2] = 0  # some classes never true
        yield Case(f"a random confusion matrix ({k + 1})", (cm,), expected=mean_iou(cm))
