"""Data for the autoencoder practical (course code: students may import it).

The grader uses scikit-learn's digits (8x8 images), which ship with scikit-learn: nothing is
downloaded. MNIST is supported when its files are already on disk.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

N_DIGITS = 1797  # images in scikit-learn's digits
TEST_SIZE = 297  # so 1500 training images
OOD_KINDS = ("noise", "inverted", "shuffled")
# How far jitter_digits moves a digit at most: rotation (degrees), scale (relative), shift
# (fraction of the image's half-width, i.e. 0.08 * 4 = 0.32 pixel).
MAX_ROTATION_DEGREES = 12.0
MAX_SCALE_CHANGE = 0.1
MAX_SHIFT = 0.08


def load_digits_split(test_size: int = TEST_SIZE, seed: int = 0, return_labels: bool = False):
    """scikit-learn digits as (N, 64) float32 tensors in [0, 1]: ``(x_train, x_test)``.

    Pixels (0..16) are divided by 16. The images are shuffled by the fixed permutation
    ``np.random.RandomState(seed).permutation(1797)``; the last ``test_size`` (297) are the test
    set, the first 1500 the training set, so everyone trains and tests on the same images.
    With ``return_labels=True`` returns ``(x_train, x_test, y_train, y_test)`` (int64 labels).
    """
    if not 0 < test_size < N_DIGITS:
        raise ValueError(f"test_size must be between 1 and {N_DIGITS - 1}, got {test_size}")
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.from_numpy(np.random.RandomState(seed).permutation(N_DIGITS))
    train, test = order[:-test_size], order[-test_size:]
    if return_labels:
        return x[train], x[test], y[train], y[test]
    return x[train], x[test]


def load_digits_labels(test_size: int = TEST_SIZE, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The labels ``(y_train, y_test)`` of ``load_digits_split`` (same arguments, same order)."""
    _, _, y_train, y_test = load_digits_split(test_size, seed, return_labels=True)
    return y_train, y_test


def load_mnist(root: str | Path, train: bool = True, limit: int | None = None) -> torch.Tensor:
    """MNIST images as (N, 784) float32 tensors in [0, 1], from files already under ``root``.

    Never downloads. torchvision expects the four files (``train-images-idx3-ubyte`` and
    friends, gzipped or not) in ``root/MNIST/raw/``. ``limit`` keeps the first ``limit`` images.
    """
    where = Path(root) / "MNIST" / "raw"
    try:
        from torchvision.datasets import MNIST
    except ImportError:
        raise ImportError(
            f"load_mnist needs torchvision (pip install torchvision), and the MNIST files in {where}/"
        ) from None
    try:
        dataset = MNIST(str(root), train=train, download=False)
    except RuntimeError as exc:  # torchvision's "Dataset not found"
        raise FileNotFoundError(
            f"MNIST files not found: put train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            f"t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (or their .gz) in {where}/. "
            "This course never downloads at run time."
        ) from exc
    images = dataset.data if limit is None else dataset.data[:limit]
    return images.reshape(len(images), -1).float() / 255.0


def pca_baseline_mse(x_train: torch.Tensor, x_test: torch.Tensor, k: int) -> float:
    """Per-pixel test MSE of the best rank-``k`` linear reconstruction (PCA fitted on train).

    PCA is the optimal *linear* autoencoder with a ``k``-dimensional code: the test images are
    centred with the training mean and projected on the first ``k`` principal directions.
    ``k = 0`` reconstructs every image as the mean training image.
    """
    x_train, x_test = x_train.double().cpu(), x_test.double().cpu()
    mean = x_train.mean(dim=0)
    residual = x_test - mean
    if k > 0:
        _, _, vh = torch.linalg.svd(x_train - mean, full_matrices=False)
        components = vh[:k]  # (k, D): orthonormal rows
        residual = residual - residual @ components.T @ components
    return float((residual ** 2).mean())


def jitter_digits(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Copies of the (N, 64) digits ``x``, each rotated, scaled and shifted a little: new handwriting.

    Each image is upsampled to 32x32 (bilinear), moved by its own random affine map (rotation up
    to 12 degrees either way, scale within 10%, shift up to a third of a pixel) and averaged back
    to 8x8, so the copies are also slightly smoother than the originals. Values stay in [0, 1].
    Deterministic given ``seed``; different seeds give different copies.

    The hidden tests train and evaluate on such copies, drawn with a seed only the grader knows:
    a submission can import the digits, but not the images it is evaluated on. You may use this
    function to augment your own training data.
    """
    if x.dim() != 2 or x.shape[1] != 64:
        raise ValueError(f"expected digits of shape (N, 64), got {tuple(x.shape)}")
    generator = torch.Generator().manual_seed(seed)
    n = len(x)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(MAX_ROTATION_DEGREES)
    scale = 1 + (torch.rand(n, generator=generator) * 2 - 1) * MAX_SCALE_CHANGE
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * MAX_SHIFT
    # theta maps output coordinates to input coordinates (affine_grid's convention), in [-1, 1].
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = angle.cos() / scale, -angle.sin() / scale
    theta[:, 1, 0], theta[:, 1, 1] = angle.sin() / scale, angle.cos() / scale
    theta[:, :, 2] = shift
    images = F.interpolate(x.detach().float().cpu().view(n, 1, 8, 8), size=32, mode="bilinear", align_corners=False)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    moved = F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")
    return F.adaptive_avg_pool2d(moved, 8).view(n, 64).clamp(0, 1).to(x.device)


def ood_inputs(n: int, kind: str, seed: int = 0) -> torch.Tensor:
    """``n`` out-of-distribution inputs, (n, 64) float32 in [0, 1], for anomaly detection.

    ``kind``: ``"noise"`` (uniform random pixels), ``"inverted"`` (1 - test digits) or
    ``"shuffled"`` (test digits whose pixels are all permuted by one fixed permutation).
    Deterministic given ``seed``.
    """
    if kind not in OOD_KINDS:
        raise ValueError(f"unknown kind {kind!r}: use one of {', '.join(OOD_KINDS)}")
    generator = torch.Generator().manual_seed(seed)
    if kind == "noise":
        return torch.rand(n, 64, generator=generator)
    _, x_test = load_digits_split()
    # n test digits: each once before any repeats.
    picked = torch.cat([torch.randperm(len(x_test), generator=generator) for _ in range(-(-n // len(x_test)))])
    digits = x_test[picked[:n]]
    if kind == "inverted":
        return 1.0 - digits
    return digits[:, torch.randperm(64, generator=generator)]
