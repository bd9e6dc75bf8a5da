"""Images for the adversarial-attacks practical: the scikit-learn digits as (N, 1, 8, 8) tensors.

The split is the autoencoder practical's (same permutation, 1500 train / 297 test), so students
meet the same images again; pixels are in [0, 1], the range the attacks must stay in.
"""

from __future__ import annotations

import torch

from assignments.autoencoder.data import load_digits_split

IMAGE_SHAPE = (1, 8, 8)


def load_digit_images() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)``: float32 images (N, 1, 8, 8) in [0, 1], int64 labels."""
    x_train, x_test, y_train, y_test = load_digits_split(return_labels=True)
    return x_train.view(-1, *IMAGE_SHAPE), y_train, x_test.view(-1, *IMAGE_SHAPE), y_test
