"""Scenes of handwritten digits for the segmentation practical (course code: students may import it).

Each scene is a small grayscale canvas with a smooth random texture (light blobs plus pixel noise)
on which 1 to ``max_objects`` digits from scikit-learn's 8x8 digits are pasted, enlarged to 12x12
and with a random contrast. Every pixel gets a class (``masks``: 0 = background, k = the k-th digit
of ``digits``) and, for the U-Net weight map, the object it belongs to (``instances``: 0 =
background, 1..K = the digits of that scene). A digit's pixels are those where its enlarged image
is above 0.5: faint ink on a bright blob of texture makes plain thresholding fail.

Nothing is downloaded (the digits ship with scikit-learn) and everything is deterministic given
the seed. Training scenes use 80% of the scikit-learn images of each digit and held-out scenes the
other 20%: a held-out scene only shows handwriting the model has never seen.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

DIGITS = (0, 1)  # the grader's scenes: background, zeros and ones
CLASSES = ("background", "zero", "one")
NUM_CLASSES = len(CLASSES)
SIZE = 32
DIGIT_SIDE = 12  # 8x8 digits are enlarged to 12x12 on the canvas
HELD_OUT_SHARE = 0.2
GAP = 2  # pixels between the boxes of two digits


@lru_cache(maxsize=1)
def _sklearn_digits():
    return load_digits()


def digit_images(digit: int, split: str = "train") -> torch.Tensor:
    """The scikit-learn images of one digit for ``split`` ("train": 80%, "test": 20%), (n, 8, 8) in [0, 1]."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    data = _sklearn_digits()
    indices = np.flatnonzero(data.target == digit)
    indices = indices[np.random.RandomState(digit).permutation(len(indices))]
    n_test = int(round(HELD_OUT_SHARE * len(indices)))
    chosen = indices[n_test:] if split == "train" else indices[:n_test]
    return torch.tensor(data.images[chosen] / 16.0, dtype=torch.float32)


def _texture(rng: np.random.RandomState, size: int) -> torch.Tensor:
    blobs = torch.tensor(rng.rand(1, 1, 4, 4), dtype=torch.float32)
    smooth = F.interpolate(blobs, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    noise = torch.tensor(rng.randn(size, size), dtype=torch.float32)
    return 0.35 * smooth + 0.05 * noise


def make_scenes(n: int, *, size: int = SIZE, digits: tuple[int, ...] = DIGITS, max_objects: int = 3,
                split: str = "train", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` scenes: ``(images, masks, instances)``.

    images: (n, 1, size, size) float32 in [0, 1]; masks: (n, size, size) int64 class ids in
    0..len(digits) (0 = background, k = ``digits[k - 1]``); instances: (n, size, size) int64, 0 on
    the background and 1..K on the K digits of each scene (numbered in the order they were pasted).
    Digit boxes never overlap and are at least 2 pixels apart.
    """
    if size < DIGIT_SIDE + 2:
        raise ValueError(f"size must be at least {DIGIT_SIDE + 2}, got {size}")
    rng = np.random.RandomState(seed)
    pools = [digit_images(d, split) for d in digits]
    images = torch.zeros(n, 1, size, size)
    masks = torch.zeros(n, size, size, dtype=torch.int64)
    instances = torch.zeros(n, size, size, dtype=torch.int64)
    for i in range(n):
        canvas = _texture(rng, size)
        boxes: list[tuple[int, int]] = []
        for _ in range(rng.randint(1, max_objects + 1)):
            for _attempt in range(100):
                top, left = (int(v) for v in rng.randint(0, size - DIGIT_SIDE + 1, size=2))
                if all(top + DIGIT_SIDE + GAP <= t or t + DIGIT_SIDE + GAP <= top or
                       left + DIGIT_SIDE + GAP <= l or l + DIGIT_SIDE + GAP <= left for t, l in boxes):
                    break
            else:
                continue  # no room left on this canvas
            boxes.append((top, left))
            label = rng.randint(len(digits))
            pool = pools[label]
            digit = pool[rng.randint(len(pool))][None, None]
            digit = F.interpolate(digit, size=(DIGIT_SIDE, DIGIT_SIDE), mode="bilinear", align_corners=False)[0, 0]
            contrast = 0.6 + 0.4 * rng.rand()
            window = (slice(top, top + DIGIT_SIDE), slice(left, left + DIGIT_SIDE))
            canvas[window] = torch.maximum(canvas[window], contrast * digit)
            ink = digit > 0.5
            masks[i][window][ink] = label + 1
            instances[i][window][ink] = len(boxes)
        images[i, 0] = canvas.clamp(0.0, 1.0)
    return images, masks, instances


def load_split(n_train: int = 400, n_test: int = 200, **options) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """``(train, test)``, each ``(images, masks, instances)`` from ``make_scenes``: training scenes
    (seed 0) from the training digits, held-out scenes (seed 1) from the held-out digits.
    ``options`` (size, digits, max_objects) go to ``make_scenes``."""
    train = make_scenes(n_train, split="train", seed=0, **options)
    test = make_scenes(n_test, split="test", seed=1, **options)
    return train, test


def fine_detail_task(n: int, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random binary images (n, 1, size, size) and their own pixels as a 2-class mask (n, size, size).

    Segmenting them means copying every pixel: only the full-resolution path of a U-Net (its
    skip connections) can carry that much fine detail; a bottleneck cannot.
    """
    generator = torch.Generator().manual_seed(seed)
    images = (torch.rand(n, 1, size, size, generator=generator) > 0.5).float()
    return images, images[:, 0].long()


def fit_full_batch(model: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor, steps: int = 40,
                   lr: float = 1e-2) -> float:
    """The grader's fixed probe: ``steps`` Adam steps of pixel-wise cross-entropy on the whole
    batch (so a test of the architecture does not depend on the student's own training code).
    Leaves the model in eval mode and returns the last loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = F.cross_entropy(model(images), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return loss.item()
