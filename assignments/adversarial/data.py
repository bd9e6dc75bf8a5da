"""Images for the adversarial-attacks practical: the scikit-learn digits as (N, 1, 8, 8) tensors.

The split is the autoencoder practical's (the same fixed permutation, 1500 train / 297 test), so
students meet the same images again; pixels are in [0, 1], the range the attacks must stay in.
Self-contained on purpose: each assignment ships only its own course folder.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits

IMAGE_SHAPE = (1, 8, 8)
TEST_SIZE = 297


def load_digit_images() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)``: float32 images (N, 1, 8, 8) in [0, 1], int64 labels."""
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32).view(-1, *IMAGE_SHAPE)
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.from_numpy(np.random.RandomState(0).permutation(len(x)))
    train, test = order[:-TEST_SIZE], order[-TEST_SIZE:]
    return x[train], y[train], x[test], y[test]
