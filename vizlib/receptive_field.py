"""Receptive fields of convolutional networks: computed from the layer table, and measured.

The receptive field of a unit is the region of the input it can see. For a stack of
convolutions and poolings it follows from three numbers per layer, computed recursively
from the input (Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural
Networks", Distill 2019, https://distill.pub/2019/computing-receptive-fields/):

* ``size`` r: how many input pixels one unit spans,
* ``jump`` j: the distance in input pixels between two neighbouring units,
* ``start``: the input coordinate of the centre of the first unit (pixel centres are at
  integer coordinates 0, 1, 2, ...; it is negative when the padding pushes it out).

With the effective kernel ``k_eff = dilation * (kernel - 1) + 1``::

    r_out     = r_in + (k_eff - 1) * j_in
    j_out     = j_in * stride
    start_out = start_in + ((k_eff - 1) / 2 - padding) * j_in

starting from ``r = 1, j = 1, start = 0`` at the input. Unit ``i`` of a layer is centred
on input coordinate ``start + i * jump`` and sees rows ``start + i * jump - (r - 1) / 2``
to ``start + i * jump + (r - 1) / 2``. The size is the *extent*: with dilation, or a
stride larger than the kernel, some pixels inside it are never read (holes). Near the
border part of that window is padding, of the input or of a layer in between, and holds
no pixel: :func:`receptive_field_of_unit` cuts it away (to nothing, for a unit that
reads only padding).

:func:`empirical_receptive_field` measures it instead: backpropagate from one output
unit and see which input pixels get a nonzero gradient. The tests prove both agree.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import check_choice, check_int_pair, check_positive_int
from .conv_algebra import conv_output_size

__all__ = [
    "KINDS",
    "EmpiricalRF",
    "Layer",
    "RFRow",
    "empirical_receptive_field",
    "layers_from_model",
    "receptive_field_of_unit",
    "receptive_field_table",
]

KINDS = ("conv", "pool")


@dataclass(frozen=True)
class Layer:
    """The geometry of one convolution or pooling layer (what a receptive field depends on).

    Each of ``kernel, stride, padding, dilation`` is an int or a pair ``(height, width)``;
    they are stored as pairs. Channels, weights and activations do not matter here.

    Args:
        kind (str): ``'conv'`` or ``'pool'`` (max or average: the same geometry).
        kernel (int or (int, int)): >= 1.
        stride (int or (int, int)): >= 1.
        padding (int or (int, int)): zeros added on each side, >= 0.
        dilation (int or (int, int)): >= 1.
        ceil_mode (bool): pooling's ``ceil_mode``; changes only the output size.
        name (str): a label for tables and figures.
    """

    kind: str
    kernel: int | tuple[int, int]
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    dilation: int | tuple[int, int] = 1
    ceil_mode: bool = False
    name: str = ""

    def __post_init__(self):
        check_choice("kind", self.kind, KINDS)
        # frozen dataclass: normalise through object.__setattr__
        object.__setattr__(self, "kernel", check_int_pair("kernel", self.kernel))
        object.__setattr__(self, "stride", check_int_pair("stride", self.stride))
        object.__setattr__(
            self, "padding", check_int_pair("padding", self.padding, allow_zero=True)
        )
        object.__setattr__(self, "dilation", check_int_pair("dilation", self.dilation))
        if not isinstance(self.ceil_mode, bool):
            raise ValueError(f"ceil_mode must be a bool, got {self.ceil_mode!r}")

    @property
    def effective_kernel(self) -> tuple[int, int]:
        """``dilation * (kernel - 1) + 1`` per axis: the span of the dilated kernel."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation, strict=True))


@dataclass(frozen=True)
class RFRow:
    """One row of :func:`receptive_field_table`: the geometry *after* ``layer``.

    Attributes:
        layer (Layer): the layer.
        size ((int, int)): receptive field size r (height, width) in input pixels.
        jump ((int, int)): distance in input pixels between neighbouring units.
        start ((float, float)): input coordinate (row, col) of the centre of unit (0, 0).
        output_hw ((int, int) or None): the layer's output size, when the table was
            given an input size.
    """

    layer: Layer
    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    output_hw: tuple[int, int] | None = None


def _check_layers(layers) -> list[Layer]:
    """A sequence of this module's :class:`Layer` records."""
    layers = list(layers)
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise ValueError(f"layers[{i}] must be a Layer, got {type(layer).__name__}")
    return layers


def receptive_field_table(layers, input_hw=None) -> list[RFRow]:
    """Receptive field size, jump and start after each layer (Araujo et al., Distill 2019).

    The input itself (not a row) has ``size 1, jump 1, start 0``.

    Args:
        layers (sequence of Layer): from the input to the output.
        input_hw (int or (int, int), optional): input height and width; when given, each
            row also holds the layer's output size (and a layer whose kernel does not fit
            raises ``ValueError``).

    Returns:
        list[RFRow]: one row per layer.

    Example:
        Three 3x3 stride-1 convolutions: sizes 3, 5, 7 (the ``1 + 2L`` rule).
    """
    layers = _check_layers(layers)
    hw = None if input_hw is None else check_int_pair("input_hw", input_hw)
    size, jump, start = [1, 1], [1, 1], [0.0, 0.0]
    rows = []
    for layer in layers:
        for axis in (0, 1):  # the two axes are independent
            k_eff = layer.effective_kernel[axis]
            pad = layer.padding[axis]
            # start uses the jump *before* the layer, so update it before the jump
            size[axis] = size[axis] + (k_eff - 1) * jump[axis]
            start[axis] = start[axis] + ((k_eff - 1) / 2 - pad) * jump[axis]
            jump[axis] = jump[axis] * layer.stride[axis]
        if hw is not None:
            hw = tuple(
                conv_output_size(
                    hw[a],
                    layer.kernel[a],
                    layer.stride[a],
                    layer.padding[a],
                    layer.dilation[a],
                    ceil_mode=layer.ceil_mode,
                )
                for a in (0, 1)
            )
        rows.append(RFRow(layer, tuple(size), tuple(jump), tuple(start), hw))
    return rows


def _seen_interval(layers: list[Layer], grids: list[int], axis: int, index: int):
    """First and last input pixel that unit ``index`` of the last layer reads, or None.

    Walks back one layer at a time: the units of layer l's input that the current
    interval reads are ``[first * stride - padding, last * stride - padding + k_eff - 1]``,
    cut to the units that exist (``0 .. grids[l] - 1``): a window that reaches into a
    layer's padding reads nothing there. None when nothing is left (only padding).

    Args:
        layers (list[Layer]): input to output.
        grids (list[int]): the size along ``axis`` of each layer's input grid.
        axis (int): 0 for rows, 1 for columns.
        index (int): the unit's index along ``axis`` in the last layer's output.
    """
    first = last = index
    for layer, n_in in zip(reversed(layers), reversed(grids), strict=True):
        reach = layer.effective_kernel[axis] - 1
        first = first * layer.stride[axis] - layer.padding[axis]
        last = last * layer.stride[axis] - layer.padding[axis] + reach
        first, last = max(first, 0), min(last, n_in - 1)
        if first > last:
            return None
    return first, last


def receptive_field_of_unit(layers, unit, input_hw) -> torch.Tensor:
    """The input box seen by one unit of the last layer, clipped to the image.

    Away from the borders this is the unit's whole window, ``size`` pixels centred on
    ``start + unit * jump`` (see the module docstring). Near a border part of the window
    lies in the padding, which holds no input pixel, so the box is cut: not only at the
    image but at every layer's padding, walking back from the unit (a window that ends in
    an intermediate layer's padding reads no pixel through it). A unit that reads
    padding only (e.g. a corner unit of a 1x1 convolution with padding 3) sees no input
    pixel at all: its box has zero area (``x1 == x2`` or ``y1 == y2``), placed where its
    window starts, clamped to the image (as :func:`torchvision.ops.clip_boxes_to_image`
    places a box outside the image), and :func:`empirical_receptive_field` gives it an
    empty mask. The box is the *extent*: with dilation, or a stride larger than the
    kernel, pixels inside it may not be read.

    Args:
        layers (sequence of Layer): from the input to the output, at least one.
        unit ((int, int)): (row, col) index of the unit in the last layer's output grid.
        input_hw (int or (int, int)): input height and width.

    Returns:
        Tensor[4] float32: the box ``(x1, y1, x2, y2)`` in absolute pixels (xyxy, as
        torchvision), pixel edges: pixel ``(row, col)`` covers ``[col, col + 1) x
        [row, row + 1)``, so the box spans columns ``x1 .. x2 - 1``. Always
        ``0 <= x1 <= x2 <= W`` and ``0 <= y1 <= y2 <= H``; zero area when the unit sees
        only padding.

    Raises:
        ValueError: if ``unit`` is outside the output grid.
    """
    layers = _check_layers(layers)
    if not layers:
        raise ValueError("layers must hold at least one Layer")
    hw = check_int_pair("input_hw", input_hw)
    if not isinstance(unit, (tuple, list)) or len(unit) != 2:
        raise ValueError(f"unit must be a pair (row, col), got {unit!r}")
    rows = receptive_field_table(layers, hw)
    last = rows[-1]
    edges = []
    for axis in (0, 1):
        index = check_positive_int(f"unit[{axis}]", unit[axis], allow_zero=True)
        if index >= last.output_hw[axis]:
            raise ValueError(
                f"unit[{axis}] = {index} is outside the output grid of size "
                f"{last.output_hw} (height, width)"
            )
        grids = [hw[axis]] + [row.output_hw[axis] for row in rows[:-1]]  # each layer's input
        seen = _seen_interval(layers, grids, axis, index)
        if seen is None:
            # centre - half is an integer: both are sums of multiples of the jumps
            start = last.start[axis] + index * last.jump[axis] - (last.size[axis] - 1) / 2
            edge = min(max(int(round(start)), 0), hw[axis])
            edges.append((edge, edge))
        else:
            edges.append((seen[0], seen[1] + 1))  # pixel edges
    (y1, y2), (x1, x2) = edges
    return torch.tensor([x1, y1, x2, y2], dtype=torch.float32)


# ----------------------------------------------------------------------------------------
# from a model


# modules that act on each pixel separately: they do not change the geometry
_POINTWISE = (
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Softplus,
    nn.Dropout,
    nn.Dropout2d,
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LocalResponseNorm,
)


def _conv_padding(name: str, module: nn.Conv2d) -> tuple[int, int]:
    if module.padding == "valid":
        return (0, 0)
    if module.padding == "same":
        pads = []
        for k, d in zip(module.kernel_size, module.dilation, strict=True):
            if (d * (k - 1)) % 2:
                raise ValueError(
                    f"model[{name!r}] = {module} uses padding='same' with an even effective "
                    "kernel, which pads unequally on the two sides; give the padding explicitly"
                )
            pads.append(d * (k - 1) // 2)
        return tuple(pads)
    return tuple(module.padding)


def _residual_block_types() -> tuple[type, ...]:
    """torchvision's ResNet blocks; imported on first need, the rest needs no torchvision."""
    from torchvision.models.resnet import BasicBlock, Bottleneck

    return (BasicBlock, Bottleneck)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _layers_of(name: str, module: nn.Module):
    """Yield the Layers of ``module`` (at path ``name`` in the model), input to output."""
    if isinstance(module, nn.Sequential):
        for child_name, child in module.named_children():
            yield from _layers_of(_join(name, child_name), child)
    elif isinstance(module, nn.Conv2d):
        yield Layer(
            "conv",
            tuple(module.kernel_size),
            tuple(module.stride),
            _conv_padding(name, module),
            tuple(module.dilation),
            name=name,
        )
    elif isinstance(module, nn.MaxPool2d):
        yield Layer(
            "pool",
            module.kernel_size,
            module.stride,
            module.padding,
            module.dilation,
            ceil_mode=bool(module.ceil_mode),
            name=name,
        )
    elif isinstance(module, nn.AvgPool2d):
        yield Layer(
            "pool",
            module.kernel_size,
            module.stride,
            module.padding,
            1,
            ceil_mode=bool(module.ceil_mode),
            name=name,
        )
    elif isinstance(module, _POINTWISE):
        return
    elif isinstance(module, _residual_block_types()):
        yield from _residual_block(name, module)
    else:
        raise ValueError(
            f"model[{name!r}] is a {type(module).__name__}, whose receptive-field geometry is "
            "unknown; expected Conv2d, MaxPool2d, AvgPool2d, a pointwise module, an "
            "nn.Sequential of them or torchvision's BasicBlock/Bottleneck. For another block, "
            "list the layers of its longest path (the one whose window holds the others') as "
            "an nn.Sequential or as Layer objects"
        )


def _window(layers: list[Layer]) -> list[tuple[int, float, float]]:
    """Per axis: (jump, first, last) input offsets seen by unit 0; the identity for no layer."""
    if not layers:
        return [(1, 0.0, 0.0)] * 2
    last = receptive_field_table(layers)[-1]
    return [
        (
            last.jump[a],
            last.start[a] - (last.size[a] - 1) / 2,
            last.start[a] + (last.size[a] - 1) / 2,
        )
        for a in (0, 1)
    ]


def _residual_block(name: str, block: nn.Module) -> list[Layer]:
    """The main path of a torchvision BasicBlock or Bottleneck, once its shortcut is checked.

    A residual block adds two paths: the main one (conv1, conv2 and, in a Bottleneck,
    conv3) and the shortcut (the identity, or ``downsample``: a strided 1x1 convolution and
    a BatchNorm). Its unit sees the union of what the two paths see. Both paths step by the
    same jump (their outputs are added pixel by pixel) and the shortcut's window lies
    inside the main path's, so the union is the main path's window: the block's receptive
    field is that of its longest path, and the shortcut changes neither size nor jump.
    """
    main = [
        layer
        for child_name, child in block.named_children()
        if child_name != "downsample"
        for layer in _layers_of(_join(name, child_name), child)
    ]
    shortcut = block.downsample
    short = [] if shortcut is None else list(_layers_of(_join(name, "downsample"), shortcut))
    for (j_main, lo_main, hi_main), (j_short, lo_short, hi_short) in zip(
        _window(main), _window(short), strict=True
    ):
        if j_main != j_short or lo_short < lo_main or hi_short > hi_main:
            raise ValueError(
                f"model[{name!r}] is a residual block whose shortcut does not lie inside its "
                f"main path (jumps {j_short} and {j_main}, windows [{lo_short}, {hi_short}] and "
                f"[{lo_main}, {hi_main}]); list the layers of its longest path yourself"
            )
    return main


def layers_from_model(model: nn.Sequential) -> list[Layer]:
    """The geometry of an ``nn.Sequential``'s Conv2d, MaxPool2d and AvgPool2d layers.

    Nested ``nn.Sequential`` blocks are walked in order. Pointwise modules (activations,
    dropout, normalisation) are skipped: they do not move or widen the receptive field.
    (Normalisation with statistics over the image, such as GroupNorm or BatchNorm in
    training mode, strictly makes every output depend on every pixel; the geometric
    receptive field ignores that, as is customary.)

    torchvision's residual blocks (``BasicBlock``, ``Bottleneck``, also once made atrous
    by :func:`vizlib.nn.dilate_resnet_layer`) give the layers of their main path: the
    shortcut's window lies inside it, so the block sees what its longest path sees. A
    ResNet's trunk up to ``layerK`` is thus
    ``layers_from_model(nn.Sequential(*list(resnet.children())[:4 + K]))``.

    Args:
        model (nn.Sequential): the network.

    Returns:
        list[Layer]: named after the module's path in ``model`` (``'features.0'``,
        ``'4.0.conv1'``).

    Raises:
        ValueError: if ``model`` is not an ``nn.Sequential``, or holds a module whose
            geometry is unknown here (for example ``nn.ConvTranspose2d``, adaptive
            pooling, a custom block); the message says what to do instead.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError(
            f"model must be an nn.Sequential, got {type(model).__name__}; for a network whose "
            "children run in order, such as a torchvision ResNet, pass the part you mean, e.g. "
            "nn.Sequential(*list(resnet.children())[:-2]) (without the global pooling and the "
            "classifier)"
        )
    return list(_layers_of("", model))


# ----------------------------------------------------------------------------------------
# measured


class EmpiricalRF(NamedTuple):
    """Result of :func:`empirical_receptive_field`.

    Attributes:
        mask (Tensor[H, W] bool): input pixels whose gradient is nonzero.
        gradient (Tensor[H, W] float): absolute gradient, summed over input channels.
    """

    mask: torch.Tensor
    gradient: torch.Tensor


class _WindowSum(nn.Module):
    """Sums each pooling window: a max pool whose gradient reaches every pixel it reads.

    A max pool sends its gradient only to the winner of each window, which would hide the
    other pixels of the receptive field; a sum over the same windows sees them all.
    """

    def __init__(self, pool: nn.MaxPool2d | nn.AvgPool2d):
        super().__init__()
        layer = layers_from_model(nn.Sequential(pool))[0]
        self.kernel, self.stride = layer.kernel, layer.stride
        self.padding, self.dilation, self.ceil_mode = layer.padding, layer.dilation, layer.ceil_mode

    def forward(self, x):
        h, w = x.shape[-2:]
        extra = [0, 0]  # ceil_mode: pad the far side so the last window exists
        if self.ceil_mode:
            for a, n in enumerate((h, w)):
                out = conv_output_size(
                    n,
                    self.kernel[a],
                    self.stride[a],
                    self.padding[a],
                    self.dilation[a],
                    ceil_mode=True,
                )
                span = (out - 1) * self.stride[a] + self.dilation[a] * (self.kernel[a] - 1) + 1
                extra[a] = max(span - (n + 2 * self.padding[a]), 0)
        ph, pw = self.padding
        x = F.pad(x, (pw, pw + extra[1], ph, ph + extra[0]))
        channels = x.shape[1]
        ones = torch.ones(channels, 1, *self.kernel, dtype=x.dtype, device=x.device)
        return F.conv2d(x, ones, stride=self.stride, dilation=self.dilation, groups=channels)


def _make_positive(model: nn.Module) -> nn.Module:
    """Positive constant weights, zero biases, no pixel-mixing statistics, max -> sum."""
    if isinstance(model, (nn.MaxPool2d, nn.AvgPool2d)):  # the model is a single pool
        return _WindowSum(model)
    for name, child in list(model.named_children()):
        if isinstance(child, (nn.MaxPool2d, nn.AvgPool2d)):
            setattr(model, name, _WindowSum(child))
        elif isinstance(
            child,
            (
                nn.GroupNorm,
                nn.LayerNorm,
                nn.modules.instancenorm._InstanceNorm,
                nn.LocalResponseNorm,
            ),
        ):
            setattr(model, name, nn.Identity())  # their statistics can cancel gradients
        else:
            _make_positive(child)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_parameters()  # eval mode: an identity
            elif isinstance(getattr(module, "weight", None), torch.Tensor):
                fan_in = module.weight[0].numel() or 1
                module.weight.fill_(1.0 / fan_in)  # keeps activations near 1, no overflow
                if isinstance(getattr(module, "bias", None), torch.Tensor):
                    module.bias.zero_()
    return model


def _output_tensor(out, key) -> torch.Tensor:
    """The model's output tensor: itself, or the ``key`` entry of a dict output."""
    if isinstance(out, Mapping):
        if key not in out:
            raise ValueError(
                f"the model returns a dict with keys {list(out)}, which has no output_key = "
                f"{key!r}; pass output_key= the key of the output to measure"
            )
        out = out[key]
    if not isinstance(out, torch.Tensor):
        raise ValueError(
            "model must return a Tensor[1, C, H, W] or a dict of them (as torchvision's "
            f"segmentation models: {{'out': ...}}), got {type(out).__name__}"
        )
    return out


def empirical_receptive_field(
    model: nn.Module,
    input_shape,
    unit,
    positive_weights: bool = True,
    channel: int | None = None,
    seed: int = 0,
    output_key="out",
) -> EmpiricalRF:
    """Which input pixels one output unit depends on, measured by backpropagation.

    Runs ``model`` on one input of ``input_shape``, backpropagates from output unit
    ``unit`` (summed over channels, or one ``channel``) and marks the input pixels whose
    gradient is nonzero. The caller's model is never changed: the work is done on a deep
    copy, in eval mode.

    With ``positive_weights=True`` (the default) the copy gets positive constant weights
    and zero biases, its max/avg pools become window sums, normalisation layers with
    image statistics become identities, it runs in float64 on an input of ones: every
    path then carries a positive gradient, so no cancellation (nor a max pool's single
    winner, nor a dead ReLU) hides a pixel, and the mask is the geometric receptive field.
    With ``False`` the model is used as is on a seeded random input: the pixels that
    *this* model's unit actually depends on, which can be fewer.

    A model that returns a dict of outputs, as torchvision's segmentation models do
    (``{"out": ..., "aux": ...}``), is measured on its ``output_key`` entry: ``"out"``
    by default, the main head (``"aux"`` is the auxiliary classifier on ``layer3``).

    Args:
        model (nn.Module): maps ``Tensor[1, C, H, W]`` to ``Tensor[1, C', H', W']``, or
            to a dict holding one under ``output_key``.
        input_shape ((int, int, int)): ``(C, H, W)``.
        unit ((int, int)): (row, col) of the output unit.
        positive_weights (bool): see above.
        channel (int, optional): backpropagate from this output channel only.
        seed (int): seed of the random input (``positive_weights=False``).
        output_key (str): which entry of a dict output to measure; ignored when the
            model returns a tensor.

    Returns:
        EmpiricalRF: ``mask`` (Tensor[H, W] bool) and ``gradient`` (Tensor[H, W]), on
        the CPU.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch nn.Module, got {type(model).__name__}")
    if not isinstance(input_shape, (tuple, list, torch.Size)) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    c, h, w = (check_positive_int(f"input_shape[{i}]", v) for i, v in enumerate(input_shape))
    if not isinstance(unit, (tuple, list)) or len(unit) != 2:
        raise ValueError(f"unit must be a pair (row, col), got {unit!r}")
    row, col = (check_positive_int(f"unit[{i}]", v, allow_zero=True) for i, v in enumerate(unit))

    net = copy.deepcopy(model).eval()
    first = next(iter(net.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    if positive_weights:
        net = _make_positive(net).double()
        x = torch.ones(1, c, h, w, dtype=torch.float64, device=device)
    else:
        dtype = first.dtype if first is not None else torch.float32
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(1, c, h, w, generator=gen, dtype=dtype).to(device)
    for p in net.parameters():
        p.requires_grad_(False)  # only the input's gradient is wanted
    x.requires_grad_(True)

    out = _output_tensor(net(x), output_key)
    if out.dim() != 4:
        raise ValueError(f"model must return [1, C, H, W], got shape {tuple(out.shape)}")
    if row >= out.shape[2] or col >= out.shape[3]:
        raise ValueError(f"unit = {(row, col)} is outside the output grid {tuple(out.shape[2:])}")
    if channel is None:
        target = out[0, :, row, col].sum()
    else:
        channel = check_positive_int("channel", channel, allow_zero=True)
        if channel >= out.shape[1]:
            raise ValueError(f"channel = {channel} but the output has {out.shape[1]} channels")
        target = out[0, channel, row, col]
    (grad,) = torch.autograd.grad(target, x)
    gradient = grad[0].abs().sum(0).detach().cpu()  # [H, W]
    return EmpiricalRF(gradient != 0, gradient)
