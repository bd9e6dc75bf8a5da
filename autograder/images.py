"""Image grids for feedback pages: what a test shows a student (reconstructions, adversarial
examples, segmentations, samples, colourisations), saved as PNG by the trusted test process."""

from __future__ import annotations

from pathlib import Path

import torch


def image_grid(images: torch.Tensor, nrow: int = 8, pad: int = 1, scale: int = 4) -> torch.Tensor:
    """(N, H, W) or (N, C, H, W) images in [0, 1] (C = 1 or 3) -> one (H', W', C) uint8 grid,
    each pixel repeated ``scale`` times so that 8x8 digits are visible."""
    images = images.detach().float().cpu()
    if images.dim() == 3:
        images = images[:, None]
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected (N, H, W) or (N, 1|3, H, W) images, got shape {tuple(images.shape)}")
    images = images.clamp(0, 1).repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    n, c, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    grid = torch.ones(c, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        top, left = pad + (i // nrow) * (h + pad), pad + (i % nrow) * (w + pad)
        grid[:, top:top + h, left:left + w] = images[i]
    grid = grid.expand(3, -1, -1) if c == 1 else grid
    return (grid.permute(1, 2, 0) * 255).round().to(torch.uint8)


def save_png(path: Path, images: torch.Tensor, nrow: int = 8) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_grid(images, nrow=nrow).numpy()).save(path)
    return path


MAX_FIGURE_SIDE = 1200


def save_figure_png(path: Path, image) -> Path | None:
    """Save an (H, W, 3) uint8 image (a student's matplotlib figure, sent by value) as it is; None
    for anything else (the worker is untrusted: no other shape, dtype or size is written)."""
    import numpy as np
    from PIL import Image

    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
            and 0 < image.shape[0] <= MAX_FIGURE_SIDE and 0 < image.shape[1] <= MAX_FIGURE_SIDE):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path
