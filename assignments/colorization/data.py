"""Colour crops for the colorization practical, from the two photographs scikit-learn ships.

``china.jpg`` and ``flower.jpg`` (427x640) are shrunk 2 times by average pooling (to 213x320)
and tiled into non-overlapping 32x32 crops (6 x 10 per image). Every sixth tile is held out
(never seen in training): 100 training and 20 held-out crops, always the same, values in [0, 1],
shape (N, 3, 32, 32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.datasets import load_sample_images

CROP = 32
SHRINK = 2
HELD_OUT_EVERY = 6


def load_crops() -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, held_out)``: 100 and 20 colour crops (N, 3, 32, 32) in [0, 1]."""
    photos = [torch.tensor(array, dtype=torch.float32).permute(2, 0, 1) / 255.0 for array in load_sample_images().images]
    return tile_crops([F.avg_pool2d(photo[None], SHRINK)[0] for photo in photos])


def tile_crops(photos: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Tile (3, H, W) photos into non-overlapping CROP x CROP crops, row by row, and hold out every
    HELD_OUT_EVERY-th tile: ``(train, held_out)``."""
    tiles = []
    for image in photos:
        _, height, width = image.shape
        for top in range(0, height - CROP + 1, CROP):
            for left in range(0, width - CROP + 1, CROP):
                tiles.append(image[:, top:top + CROP, left:left + CROP])
    held_out = [i % HELD_OUT_EVERY == HELD_OUT_EVERY // 2 for i in range(len(tiles))]
    return (torch.stack([t for t, h in zip(tiles, held_out) if not h]),
            torch.stack([t for t, h in zip(tiles, held_out) if h]))


def to_gray(images: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB -> (..., H, W) luminance (ITU-R 601 weights)."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype, device=images.device)
    return (images * weights.view(3, 1, 1)).sum(dim=-3)
