"""A fully connected CRF over a small image, by mean-field inference (Krähenbühl & Koltun,
"Efficient Inference in Fully Connected CRFs with Gaussian Edge Potentials", NeurIPS
2011), the post-processing of DeepLab v1 and v2 (Chen et al., TPAMI 2017).

The network's softmax gives each pixel ``i`` a distribution over labels; its *unary*
energy is ``U_i(l) = -log P_i(l)``. The CRF adds a *pairwise* energy for every pair of
pixels ``(i, j)`` that take different labels (the Potts model), weighted by how alike
the two pixels are:

* an *appearance* (bilateral) kernel ``w_a exp(-|p_i - p_j|^2 / 2 theta_a^2
  - |I_i - I_j|^2 / 2 theta_b^2)``: nearby pixels of similar colour should agree, so
  labels snap to colour edges;
* a *smoothness* kernel ``w_s exp(-|p_i - p_j|^2 / 2 theta_g^2)``: removes isolated pixels.

Mean-field inference approximates the most likely labelling by a factorised
distribution ``Q``, updated in parallel (the paper's Algorithm 1)::

    Q_i(l) ∝ exp(-U_i(l) - sum_{l' != l} sum_{j != i} k(i, j) Q_j(l'))

The paper makes the sum over ``j`` fast with a permutohedral lattice (approximate
Gaussian filtering). This module computes it *exactly*, with the dense ``N x N`` kernel
matrix (``N = H * W``): readable, and cheap enough for the book's 64 x 64 scenes, not for
large images (``MAX_PIXELS``).
"""

from __future__ import annotations

import torch

from .._checks import check_number, check_positive_int

__all__ = ["MAX_PIXELS", "crf_kernel", "mean_field", "dense_crf"]

MAX_PIXELS = 96 * 96  # the dense kernel holds MAX_PIXELS**2 floats (340 MB at 96 x 96)


def _check_image(image) -> torch.Tensor:
    """One float image ``[C, H, W]`` small enough for the dense kernel (specific to this
    module: the kernel stores ``(H * W)**2`` numbers, see :data:`MAX_PIXELS`)."""
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or not image.is_floating_point():
        raise ValueError(
            f"image must be a float tensor [C, H, W], got {getattr(image, 'shape', type(image))}"
        )
    h, w = image.shape[-2:]
    if h * w > MAX_PIXELS:
        raise ValueError(
            f"image has {h} x {w} = {h * w} pixels; the dense kernel allows at most "
            f"{MAX_PIXELS} (it stores N x N numbers)"
        )
    if not torch.isfinite(image).all():
        raise ValueError("image must be finite")
    return image


def crf_kernel(
    image: torch.Tensor,
    *,
    theta_alpha: float = 8.0,
    theta_beta: float = 0.1,
    theta_gamma: float = 1.0,
    w_appearance: float = 4.0,
    w_smoothness: float = 3.0,
) -> torch.Tensor:
    """The pairwise kernel ``k(i, j)`` between every two pixels, zero on the diagonal.

    Args:
        image (Tensor[C, H, W]): float colours (in [0, 1] for the default ``theta_beta``).
        theta_alpha (float): spatial reach of the appearance kernel, in pixels.
        theta_beta (float): colour reach of the appearance kernel, in colour units.
        theta_gamma (float): spatial reach of the smoothness kernel, in pixels.
        w_appearance, w_smoothness (float): the kernels' weights (>= 0).

    Returns:
        Tensor[N, N]: ``k[i, j]`` for pixels in row-major order (``N = H * W``), float32.
    """
    image = _check_image(image)
    theta_alpha = check_number("theta_alpha", theta_alpha, low=0, strict=True)
    theta_beta = check_number("theta_beta", theta_beta, low=0, strict=True)
    theta_gamma = check_number("theta_gamma", theta_gamma, low=0, strict=True)
    w_appearance = check_number("w_appearance", w_appearance, low=0)
    w_smoothness = check_number("w_smoothness", w_smoothness, low=0)
    c, h, w_ = image.shape
    rows, cols = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w_, dtype=torch.float32), indexing="ij"
    )
    positions = torch.stack([rows.flatten(), cols.flatten()], dim=1)  # [N, 2]
    colours = image.detach().float().reshape(c, -1).T.cpu()  # [N, C]
    d_pos = torch.cdist(positions, positions).square()  # [N, N]
    d_col = torch.cdist(colours, colours).square()  # [N, N]
    kernel = w_appearance * torch.exp(-d_pos / (2 * theta_alpha**2) - d_col / (2 * theta_beta**2))
    kernel += w_smoothness * torch.exp(-d_pos / (2 * theta_gamma**2))
    kernel.fill_diagonal_(0.0)  # a pixel sends no message to itself
    return kernel


def mean_field(unary: torch.Tensor, kernel: torch.Tensor, iterations: int = 5) -> torch.Tensor:
    """Mean-field inference with the Potts compatibility (Krähenbühl & Koltun, Algorithm 1).

    Args:
        unary (Tensor[L, N]): the unary energy ``-log P`` of each label at each pixel.
        kernel (Tensor[N, N]): ``k(i, j)``, zero on the diagonal (:func:`crf_kernel`).
        iterations (int): parallel updates (the paper: about 5 to 10 converge).

    Returns:
        Tensor[L, N]: ``Q``, a distribution over labels at each pixel.
    """
    if not isinstance(unary, torch.Tensor) or unary.dim() != 2 or not unary.is_floating_point():
        raise ValueError(
            f"unary must be a float tensor [L, N], got {getattr(unary, 'shape', type(unary))}"
        )
    n = unary.shape[1]
    if not isinstance(kernel, torch.Tensor) or kernel.shape != (n, n):
        raise ValueError(
            f"kernel must be a tensor [N, N] = [{n}, {n}], got {getattr(kernel, 'shape', type(kernel))}"
        )
    iterations = check_positive_int("iterations", iterations, allow_zero=True)
    unary = unary.float()
    q = torch.softmax(-unary, dim=0)  # [L, N]: initialise with the unary alone
    for _ in range(iterations):
        message = q @ kernel.T  # [L, N]: sum_j k(i, j) Q_j(l), for every label l and pixel i
        # Potts: a label pays for the neighbours' mass on *other* labels
        pairwise = message.sum(dim=0, keepdim=True) - message  # [L, N]
        q = torch.softmax(-unary - pairwise, dim=0)
    return q


def dense_crf(
    probabilities: torch.Tensor, image: torch.Tensor, *, iterations: int = 5, **kernel_args
) -> torch.Tensor:
    """Refine one image's class probabilities with a fully connected CRF.

    Args:
        probabilities (Tensor[L, H, W]): the network's softmax (each pixel sums to 1).
        image (Tensor[C, H, W]): the image, float (colours in [0, 1] for the defaults).
        iterations (int): mean-field updates.
        **kernel_args: ``theta_alpha``, ``theta_beta``, ``theta_gamma``,
            ``w_appearance``, ``w_smoothness`` (see :func:`crf_kernel`).

    Returns:
        Tensor[L, H, W]: the refined distribution ``Q`` (its argmax is the CRF's labelling).
    """
    if (
        not isinstance(probabilities, torch.Tensor)
        or probabilities.dim() != 3
        or not probabilities.is_floating_point()
    ):
        raise ValueError(
            "probabilities must be a float tensor [L, H, W], got "
            f"{getattr(probabilities, 'shape', type(probabilities))}"
        )
    image = _check_image(image)
    if probabilities.shape[-2:] != image.shape[-2:]:
        raise ValueError(
            f"probabilities {tuple(probabilities.shape)} and image {tuple(image.shape)} "
            "must have the same height and width"
        )
    if (probabilities < 0).any() or not torch.allclose(
        probabilities.sum(0), torch.ones(()), atol=1e-3
    ):
        raise ValueError(
            "probabilities must be >= 0 and sum to 1 over the labels at every pixel (a softmax)"
        )
    labels, h, w = probabilities.shape
    unary = (
        -probabilities.detach().float().cpu().reshape(labels, -1).clamp_min(1e-8).log()
    )  # [L, N]
    q = mean_field(unary, crf_kernel(image, **kernel_args), iterations)
    return q.reshape(labels, h, w).to(probabilities.device)
