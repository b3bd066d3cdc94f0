"""U-Net, SegNet and DeepLab pieces the chapters check in front of the reader, and the
dense CRF of the DeepLab chapter (vizlib.nn.crf), against PyTorch and hand examples."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from vizlib.nn.crf import MAX_PIXELS, crf_kernel, dense_crf, mean_field
from vizlib.nn.segnet import SegNet
from vizlib.nn.unet import UNet, UNetUp
from vizlib.upsampling import max_pool_with_switches, max_unpool


def test_unet_up_step_is_transposed_conv_concat_then_convs():
    torch.manual_seed(0)
    step = UNetUp(16, 8, 8).eval()
    below, skip = torch.rand(2, 16, 5, 7), torch.rand(2, 8, 10, 14)
    with torch.no_grad():
        expected = step.conv(torch.cat([skip, step.up(below)], dim=1))
        torch.testing.assert_close(step(below, skip), expected)
    with pytest.raises(ValueError, match="same size"):
        step(below, torch.rand(2, 8, 9, 14))


def test_two_by_two_up_convolution_is_a_1x1_conv_and_pixel_shuffle():
    torch.manual_seed(0)
    up = nn.ConvTranspose2d(6, 3, 2, stride=2)
    x = torch.rand(2, 6, 4, 5)
    as_1x1 = up.weight.permute(1, 2, 3, 0).reshape(3 * 4, 6, 1, 1)
    with torch.no_grad():
        shuffled = F.pixel_shuffle(F.conv2d(x, as_1x1), 2) + up.bias[:, None, None]
        torch.testing.assert_close(shuffled, up(x))


def test_unet_encoder_levels_halve_and_decoder_mirrors():
    model = UNet(5, channels=(4, 8, 16)).eval()
    seen = []
    hooks = [
        m.register_forward_hook(lambda mod, i, o: seen.append(tuple(o.shape[1:])))
        for m in list(model.encoder) + list(model.decoder)
    ]
    with torch.no_grad():
        model(torch.rand(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    assert seen == [(4, 32, 32), (8, 16, 16), (16, 8, 8), (8, 16, 16), (4, 32, 32)]


def test_segnet_unpools_at_the_encoders_switches():
    # with identity-like stages the decoder's input before its convolutions is exactly the
    # unpooled map: check the library's unpooling against nn.MaxUnpool2d on real switches
    x = torch.randn(2, 3, 8, 10)
    pooled, switches = max_pool_with_switches(x, 2)
    ref, idx = F.max_pool2d(x, 2, return_indices=True)
    assert torch.equal(pooled, ref) and torch.equal(switches, idx)
    torch.testing.assert_close(
        max_unpool(pooled, switches, (8, 10)), nn.MaxUnpool2d(2)(ref, idx, output_size=(8, 10))
    )
    model = SegNet(4, channels=(4, 8)).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 13, 17)).shape == (1, 4, 13, 17)


# -- the dense CRF -----------------------------------------------------------------------


def _naive_kernel(image, ta, tb, tg, wa, ws):
    c, h, w = image.shape
    n = h * w
    k = torch.zeros(n, n)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            pi, pj = divmod(i, w), divmod(j, w)
            dp = (pi[0] - pj[0]) ** 2 + (pi[1] - pj[1]) ** 2
            dc = float(((image[:, pi[0], pi[1]] - image[:, pj[0], pj[1]]) ** 2).sum())
            k[i, j] = wa * math.exp(-dp / (2 * ta**2) - dc / (2 * tb**2)) + ws * math.exp(
                -dp / (2 * tg**2)
            )
    return k


def test_crf_kernel_equals_the_formula_pair_by_pair():
    image = torch.rand(3, 3, 4, generator=torch.Generator().manual_seed(0))
    args = {
        "theta_alpha": 2.0,
        "theta_beta": 0.3,
        "theta_gamma": 1.5,
        "w_appearance": 4.0,
        "w_smoothness": 3.0,
    }
    kernel = crf_kernel(image, **args)
    torch.testing.assert_close(
        kernel, _naive_kernel(image, 2.0, 0.3, 1.5, 4.0, 3.0), atol=1e-5, rtol=1e-5
    )
    assert torch.equal(kernel, kernel.T) and bool((kernel.diagonal() == 0).all())


def _naive_mean_field(unary, kernel, iterations):
    labels, n = unary.shape
    q = torch.softmax(-unary, dim=0)
    for _ in range(iterations):
        new = torch.empty_like(q)
        for i in range(n):
            energy = unary[:, i].clone()
            for lab in range(labels):
                # Potts: pay k(i, j) for every other pixel j's mass on a different label
                energy[lab] += sum(kernel[i, j] * (1 - q[lab, j]) for j in range(n))
            new[:, i] = torch.softmax(-energy, dim=0)
        q = new
    return q


def test_mean_field_equals_a_pixel_by_pixel_update():
    g = torch.Generator().manual_seed(0)
    unary = torch.rand(3, 6, generator=g) * 2
    kernel = torch.rand(6, 6, generator=g)
    kernel = (kernel + kernel.T) / 2
    kernel.fill_diagonal_(0)
    torch.testing.assert_close(mean_field(unary, kernel, 3), _naive_mean_field(unary, kernel, 3))
    torch.testing.assert_close(mean_field(unary, kernel, 0), torch.softmax(-unary, dim=0))


def test_dense_crf_snaps_noisy_labels_to_the_colour_edge():
    g = torch.Generator().manual_seed(0)
    image = torch.zeros(3, 24, 24)
    image[:, :, 12:] = 1.0
    truth = torch.zeros(24, 24, dtype=torch.long)
    truth[:, 12:] = 1
    p = torch.where(truth == 0, 0.7, 0.3)[None].repeat(2, 1, 1)
    p[1] = 1 - p[0]
    flip = torch.rand(24, 24, generator=g) < 0.2
    p[:, flip] = p[:, flip].flip(0)
    before = (p.argmax(0) == truth).float().mean()
    q = dense_crf(p, image)
    assert before < 0.85
    assert (q.argmax(0) == truth).float().mean() == 1.0
    torch.testing.assert_close(q.sum(0), torch.ones(24, 24))


@pytest.mark.parametrize(
    ("call", "word"),
    [
        (lambda: dense_crf(torch.rand(2, 4, 4), torch.rand(3, 4, 4)), "probabilities"),
        (lambda: dense_crf(torch.full((2, 4, 4), 0.5), torch.rand(3, 5, 4)), "same height"),
        (lambda: dense_crf(torch.full((2, 4, 4), 0.5), torch.rand(4, 4)), "image"),
        (lambda: crf_kernel(torch.rand(3, 4, 4), theta_alpha=0), "theta_alpha"),
        (lambda: crf_kernel(torch.rand(3, 4, 4), w_smoothness=-1), "w_smoothness"),
        (lambda: crf_kernel(torch.rand(1, 97, 97)), str(MAX_PIXELS)),
        (lambda: mean_field(torch.rand(2, 5), torch.rand(4, 4)), "kernel"),
        (lambda: mean_field(torch.rand(2, 5), torch.rand(5, 5), iterations=-1), "iterations"),
    ],
)
def test_crf_bad_input_raises_value_error(call, word):
    with pytest.raises(ValueError, match=word):
        call()
