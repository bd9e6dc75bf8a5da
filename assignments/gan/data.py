"""Data for the GAN practical: the scikit-learn digits as flat vectors in [-1, 1].

Each 8x8 image (pixel values 0..16) becomes 64 values ``pixel / 8 - 1`` in [-1, 1], the range of
the generator's tanh output. The split is the other digit practicals' (the same fixed
permutation, 1500 train / 297 test). Self-contained on purpose: each assignment ships only its
own course folder. Nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits

DATA_DIM = 64
IMAGE_SHAPE = (8, 8)
TEST_SIZE = 297


def load_digits_pm1() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)``: float32 (N, 64) in [-1, 1] and int64 labels (N,)."""
    digits = load_digits()
    x = torch.tensor(digits.data / 8.0 - 1.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.from_numpy(np.random.RandomState(0).permutation(len(x)))
    train, test = order[:-TEST_SIZE], order[-TEST_SIZE:]
    return x[train], y[train], x[test], y[test]


def to_images(x: torch.Tensor) -> torch.Tensor:
    """(N, 64) samples in [-1, 1] -> (N, 8, 8) images in [0, 1], for plotting."""
    return ((x.detach().cpu().float() + 1) / 2).clamp(0, 1).view(-1, *IMAGE_SHAPE)
