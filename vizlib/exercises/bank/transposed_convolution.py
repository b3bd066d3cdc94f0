"""Exercises of the page "Transposed convolution" (book/transposed_convolution): the overlap
pattern behind the checkerboard artifact.

Expected values come from hand-computed cases and from ``nn.ConvTranspose1d`` with all-ones
weights on an all-ones input: each output is then the number of stamps that reach it (the
``overlap`` of ``vizlib.conv_algebra.conv_transpose_by_stamping_1d``)."""

from __future__ import annotations

from ..spec import Case, exercise, hidden

_NOT_THE_ANSWER = ("vizlib.exercises",)


def _torch_counts(n: int, k: int, s: int, p: int):
    """Stamps per output position, from nn.ConvTranspose1d with every weight and input 1."""
    import torch

    layer = torch.nn.ConvTranspose1d(1, 1, k, stride=s, padding=p, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        return layer(torch.ones(1, 1, n))[0, 0].round().long()


@exercise(
    "transposed_convolution.stamp_counts",
    title="How many stamps land on each output pixel?",
    function="stamp_counts",
    points=3,
    hint="Input i stamps the kernel onto the positions i * stride + t, t = 0 .. k - 1, of the "
    "uncropped output, which has (n - 1) * stride + k positions. Count the stamps at each "
    "position (a loop over the n inputs adding 1 to a slice is fine), then drop `padding` "
    "positions from each end.",
    forbidden=(
        "conv_transpose_by_stamping_1d",
        "conv_transpose_by_stamping_2d",
        "conv_transpose_matrix_1d",
        "conv_transpose_matrix_2d",
        "conv_matrix_1d",
        "ConvTranspose1d",
        "ConvTranspose2d",
        "conv_transpose1d",
        "conv_transpose2d",
        "vizlib.conv_algebra",
        "vizlib.upsampling",
    )
    + _NOT_THE_ANSWER,
)
def _stamp_counts_cases():
    import torch

    def counts(*values):
        return torch.tensor(values, dtype=torch.int64)

    yield Case(
        "stride 1, kernel 3, 4 inputs: 1 2 3 3 2 1 (a ramp at the ends only)",
        (4, 3, 1, 0),
        expected=counts(1, 2, 3, 3, 2, 1),
        hint="the uncropped output has (n - 1) * stride + kernel_size positions",
    )
    yield Case(
        "kernel 3, stride 2: 1 1 2 1 2 1 2 1 1, the checkerboard's uneven overlap",
        (4, 3, 2, 0),
        expected=counts(1, 1, 2, 1, 2, 1, 2, 1, 1),
        hint="input i covers positions 2i, 2i + 1, 2i + 2: neighbouring stamps share one",
    )
    yield Case(
        "kernel 4, stride 2, padding 1: 2 stamps on every inner pixel (even overlap)",
        (4, 4, 2, 1),
        expected=counts(1, 2, 2, 2, 2, 2, 2, 1),
        hint="padding removes positions from both ends of the output",
    )
    yield Case(
        "kernel 2, stride 2: no overlap at all (U-Net's up-convolution)",
        (3, 2, 2, 0),
        expected=counts(1, 1, 1, 1, 1, 1),
    )
    yield Case(
        "kernel 1, stride 3: holes that no input reaches count 0",
        (3, 1, 3, 0),
        expected=counts(1, 0, 0, 1, 0, 0, 1),
        hint="positions between the stamps exist in the output but receive nothing",
    )
    yield Case(
        "kernel 3, stride 2, padding 1 on 3 inputs: 1 2 1 2 1",
        (3, 3, 2, 1),
        expected=counts(1, 2, 1, 2, 1),
    )
    yield Case("one input: a single stamp", (1, 5, 4, 0), expected=counts(1, 1, 1, 1, 1))
    for n, k, s, p in ((7, 5, 3, 0), (6, 3, 2, 1), (5, 7, 2, 3), (9, 16, 8, 4), (4, 4, 4, 0)):
        yield Case(
            f"n={n}, kernel {k}, stride {s}, padding {p}: agrees with nn.ConvTranspose1d "
            "with all-ones weights",
            (n, k, s, p),
            expected=_torch_counts(n, k, s, p),
        )


# ---------------------------------------------------------------- hidden cases
# Drawn at grading time from the instructor's secret (vizlib.exercises.spec.hidden): the
# same kinds of input as the random public cases, unknown without the secret.


@hidden("transposed_convolution.stamp_counts")
def _stamp_counts_hidden(g):
    import torch

    found = 0
    while found < 4:
        n, k, s = (int(torch.randint(1, high, (1,), generator=g)) for high in (12, 10, 6))
        p = int(torch.randint(0, k, (1,), generator=g))
        if (n - 1) * s + k - 2 * p < 1:
            continue
        found += 1
        yield Case(f"random sizes ({found})", (n, k, s, p), expected=_torch_counts(n, k, s, p))
