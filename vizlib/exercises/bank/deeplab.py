"""Exercises of the chapter "DeepLab: atrous convolution, ASPP and CRFs" (lessons/deeplab):
the receptive field of a dilated stack, a dilated kernel as an ordinary one with holes, the
taps of an atrous convolution that land inside a small map, DeepLab's "poly" learning-rate
policy (which the chapter then trains with), and (optional) the fully connected CRF's
appearance kernel."""

from __future__ import annotations

from ..spec import EDGE_WEIGHT, Case, exercise, hidden

_NOT_THE_ANSWER = ("vizlib.exercises",)


# ---------------------------------------------------------------- references


def _receptive_field(dilations):
    from vizlib.receptive_field import Layer, receptive_field_table

    layers = [Layer("conv", 3, 1, d, dilation=d) for d in dilations]
    return receptive_field_table(layers)[-1].size[0]


def _dilated_kernel(weight, rate):
    """The kernel whose ordinary convolution equals the dilated one: read off by convolving
    a one-hot image with F.conv2d(dilation=rate) (a correlation, so flipped)."""
    import torch
    from torch.nn import functional as F

    out_c, in_c, k, _ = weight.shape
    span = rate * (k - 1) + 1
    result = torch.zeros(out_c, in_c, span, span)
    for c in range(in_c):
        impulse = torch.zeros(1, in_c, 2 * span - 1, 2 * span - 1)
        impulse[0, c, span - 1, span - 1] = 1.0
        response = F.conv2d(impulse, weight, dilation=rate)[0]  # [out, span, span]
        result[:, c] = response.flip(-1).flip(-2)
    return result


def _valid_taps(n, rate):
    """Convolve a map of ones with a 3x3 kernel of ones, zero-padded: each output counts the
    taps of that position that read the map rather than the padding."""
    import torch
    from torch.nn import functional as F

    ones = torch.ones(1, 1, n, n, dtype=torch.float64)
    counts = F.conv2d(
        ones, torch.ones(1, 1, 3, 3, dtype=torch.float64), padding=rate, dilation=rate
    )
    return float(counts.mean())


def _appearance_kernel(image, ta, tb):
    import torch

    from vizlib.nn.crf import crf_kernel

    kernel = crf_kernel(image, theta_alpha=ta, theta_beta=tb, w_appearance=1.0, w_smoothness=0.0)
    n = kernel.shape[0]
    return kernel + torch.eye(n)  # crf_kernel zeroes the diagonal; the kernel itself is 1 there


def _poly_factor(step, total, power):
    """torch's PolynomialLR after ``step`` scheduler steps, from a base rate of 1."""
    import torch

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=total, power=power)
    for _ in range(step):
        opt.step()
        sched.step()
    return float(opt.param_groups[0]["lr"])


@exercise(
    "deeplab.dilated_receptive_field",
    title="The receptive field of a dilated stack",
    function="dilated_receptive_field",
    points=2,
    hint="A 3x3 convolution with dilation d spans 2d + 1 pixels, so it widens the receptive "
    "field by 2d (with stride 1 everywhere, nothing multiplies the widening). Start "
    "from 1 pixel and add 2d for every layer.",
    forbidden=(
        "receptive_field_table",
        "empirical_receptive_field",
        "vizlib.receptive_field",
        "vizlib.widgets",
    )
    + _NOT_THE_ANSWER,
)
def _dilated_receptive_field_cases():

    reference = _receptive_field

    yield Case("one ordinary 3x3 convolution sees 3 pixels", ([1],), expected=3)
    yield Case("three ordinary ones: 1 + 2 * 3 = 7", ([1, 1, 1],), expected=7)
    yield Case(
        "dilations 1, 2, 4 (Yu & Koltun's context module): 15",
        ([1, 2, 4],),
        expected=15,
        hint="3 + 4 + 8 = 15: the field doubles with each layer, plus one",
    )
    for dilations in ([2, 2, 2], [1, 2, 4, 8, 16], [6], [12], [1, 1, 2, 2, 4, 4], [3, 7, 1, 5]):
        yield Case(
            f"dilations {dilations} agree with vizlib.receptive_field",
            (dilations,),
            expected=reference(dilations),
        )


@exercise(
    "deeplab.dilate_kernel",
    title="A dilated kernel is a kernel with holes",
    function="dilate_kernel",
    points=3,
    hint="A k x k kernel at rate r becomes a (r(k - 1) + 1) x (r(k - 1) + 1) kernel of zeros "
    "with the original weights at every r-th row and column: out[..., ::r, ::r] = weight.",
    forbidden=("conv2d", "Conv2d", "vizlib.nn") + _NOT_THE_ANSWER,
)
def _dilate_kernel_cases():
    import torch

    reference = _dilated_kernel

    one = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    yield Case("rate 1 changes nothing", (one, 1), expected=one)
    yield Case(
        "rate 2: a 5 x 5 kernel with the 9 weights on every other row and column",
        (one, 2),
        expected=reference(one, 2),
        hint="out[0, 0] is [[1, 0, 2, 0, 3], [0, 0, 0, 0, 0], [4, 0, 5, 0, 6], ...]",
    )
    g = torch.Generator().manual_seed(0)
    for shape, rate in [((4, 2, 3, 3), 3), ((1, 3, 3, 3), 6), ((2, 2, 5, 5), 2), ((3, 1, 1, 1), 4)]:
        weight = torch.randn(*shape, generator=g)
        yield Case(
            f"a random {tuple(shape)} kernel at rate {rate} agrees with F.conv2d(dilation={rate})",
            (weight, rate),
            expected=reference(weight, rate),
        )


@exercise(
    "deeplab.valid_taps",
    title="How many taps of an atrous 3x3 land inside the map?",
    function="valid_taps",
    points=3,
    hint="Along one axis, a tap at offset o in {-r, 0, r} of position x (0 <= x < n) is inside "
    "when 0 <= x + o < n. Count the (position, offset) pairs inside for one axis, divide "
    "by n; the 2D average is that number squared (the axes are independent).",
    forbidden=("conv2d", "Conv2d", "conv1d", "Conv1d", "vizlib.nn", "vizlib.receptive_field")
    + _NOT_THE_ANSWER,
)
def _valid_taps_cases():

    reference = _valid_taps

    yield Case("a 1 x 1 map: only the centre tap, whatever the rate", (1, 6), expected=1.0)
    yield Case("rate 1 on a 3 x 3 map: (7/3)^2 taps on average", (3, 1), expected=(7 / 3) ** 2)
    yield Case(
        "a rate as large as the map: every outer tap falls in the padding",
        (8, 8),
        expected=1.0,
        hint="with r >= n, x + r >= n and x - r < 0 for every x",
    )
    for n, rate in [(8, 2), (8, 4), (8, 6), (33, 6), (33, 12), (33, 18), (65, 24), (16, 1)]:
        yield Case(
            f"a {n} x {n} map at rate {rate} agrees with a convolution of ones",
            (n, rate),
            expected=reference(n, rate),
        )


@exercise(
    "deeplab.appearance_kernel",
    title="(Optional) The CRF's appearance kernel",
    function="appearance_kernel",
    points=1,
    hint="exp(-|p_i - p_j|^2 / (2 theta_alpha^2) - |I_i - I_j|^2 / (2 theta_beta^2)) for every "
    "pair: build the [N, 2] positions (row, col) in row-major order and the [N, C] colours, "
    "then the [N, N] squared distances by broadcasting ([N, 1, d] - [1, N, d]).",
    forbidden=("crf_kernel", "dense_crf", "vizlib.nn", "cdist") + _NOT_THE_ANSWER,
)
def _appearance_kernel_cases():
    import torch

    reference = _appearance_kernel

    two = torch.tensor([[[0.0, 1.0]]])  # [1, 1, 2]: two pixels side by side, colours 0 and 1
    yield Case(
        "two pixels one apart, colours 0 and 1, thetas 1 and 1: exp(-1/2 - 1/2) off the diagonal",
        (two, 1.0, 1.0),
        expected=torch.tensor([[1.0, torch.e**-1], [torch.e**-1, 1.0]]),
        hint="each pixel with itself: distance 0, kernel 1",
    )
    g = torch.Generator().manual_seed(0)
    for (c, h, w), ta, tb in [((3, 4, 5), 2.0, 0.3), ((1, 6, 6), 8.0, 0.1), ((3, 8, 8), 3.0, 1.0)]:
        image = torch.rand(c, h, w, generator=g)
        yield Case(
            f"a random {c} x {h} x {w} image, theta_alpha {ta}, theta_beta {tb} agrees with "
            "vizlib.nn.crf",
            (image, ta, tb),
            expected=reference(image, ta, tb),
        )


@exercise(
    "deeplab.poly_factor",
    title="DeepLab's poly learning-rate policy",
    function="poly_factor",
    points=2,
    hint="The fraction of the run done before this step is step / total_steps (0 at the first "
    "step); the factor is what is left of the run, 1 - that fraction, raised to the power. "
    "Once the run is over (step >= total_steps) nothing is left: 0, never a negative number "
    "raised to 0.9 (Python gives a complex number for that).",
    forbidden=("lr_factor", "PolynomialLR", "lr_scheduler", "vizlib.train") + _NOT_THE_ANSWER,
)
def _poly_factor_cases():

    reference = _poly_factor

    yield Case(
        "the first step (step 0) trains at the full base rate",
        (0, 100),
        expected=1.0,
        hint="nothing of the run is done yet at step 0: the factor is 1",
    )
    yield Case("power 1 is a straight line: half-way, half the rate", (50, 100, 1.0), expected=0.5)
    yield Case(
        "half-way with DeepLab's power 0.9: 0.5^0.9, a little above half",
        (50, 100),
        expected=0.5**0.9,
        hint="the power has a default: def poly_factor(step, total_steps, power=0.9)",
    )
    yield Case(
        "the last step of 100 (step 99) still moves the weights a little",
        (99, 100),
        expected=0.01**0.9,
    )
    yield Case("after the last step the rate is 0", (100, 100), expected=0.0, weight=EDGE_WEIGHT)
    yield Case(
        "a step past the end (a run made longer) gives 0, not a complex number",
        (120, 100),
        expected=0.0,
        hint="clamp the fraction done at 1: (1 - 1.2) ** 0.9 is complex in Python",
        weight=EDGE_WEIGHT,
    )
    for step, total, power in [
        (7, 37, 0.9),
        (30, 37, 0.9),
        (1, 3000, 0.9),
        (2999, 3000, 0.9),
        (250, 300, 2.0),
    ]:
        yield Case(
            f"step {step} of {total}, power {power}, agrees with torch's PolynomialLR",
            (step, total, power),
            expected=reference(step, total, power),
            atol=1e-7,
            rtol=1e-6,
        )


# ---------------------------------------------------------------- hidden cases
# Drawn at grading time from the instructor's secret (vizlib.exercises.spec.hidden): the
# same kinds of input as the random public cases, unknown without the secret.


def _draw(g, low: int, high: int) -> int:
    """A whole number in [low, high]."""
    import torch

    return int(torch.randint(low, high + 1, (1,), generator=g))


@hidden("deeplab.dilated_receptive_field")
def _dilated_receptive_field_hidden(g):
    for k in range(3):
        dilations = [_draw(g, 1, 12) for _ in range(_draw(g, 1, 7))]
        yield Case(
            f"random dilations ({k + 1})", (dilations,), expected=_receptive_field(dilations)
        )


@hidden("deeplab.dilate_kernel")
def _dilate_kernel_hidden(g):
    import torch

    for k in range(3):
        size = (1, 3, 5)[_draw(g, 0, 2)]
        shape = (_draw(g, 1, 4), _draw(g, 1, 3), size, size)
        weight, rate = torch.randn(*shape, generator=g), _draw(g, 1, 5)
        yield Case(
            f"a random kernel ({k + 1})", (weight, rate), expected=_dilated_kernel(weight, rate)
        )


@hidden("deeplab.valid_taps")
def _valid_taps_hidden(g):
    for k in range(3):
        n, rate = _draw(g, 2, 70), _draw(g, 1, 30)
        yield Case(f"a random map and rate ({k + 1})", (n, rate), expected=_valid_taps(n, rate))


@hidden("deeplab.appearance_kernel")
def _appearance_kernel_hidden(g):
    import torch

    for k in range(2):
        shape = (_draw(g, 1, 3), _draw(g, 2, 7), _draw(g, 2, 7))
        image = torch.rand(*shape, generator=g)
        ta, tb = (
            0.5 + 8 * float(torch.rand(1, generator=g)),
            0.05 + float(torch.rand(1, generator=g)),
        )
        yield Case(
            f"a random image ({k + 1})",
            (image, ta, tb),
            expected=_appearance_kernel(image, ta, tb),
        )


@hidden("deeplab.poly_factor")
def _poly_factor_hidden(g):
    import torch

    for k in range(3):
        total = _draw(g, 5, 400)
        step = _draw(g, 1, total - 1)
        power = round(0.5 + 2.5 * float(torch.rand(1, generator=g)), 2)
        yield Case(
            f"a random step and power ({k + 1})",
            (step, total, power),
            expected=_poly_factor(step, total, power),
            atol=1e-7,
            rtol=1e-6,
        )
