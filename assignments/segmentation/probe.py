"""A probe model for testing ``train_unet``'s bookkeeping (which loss, which weights, which order).

``RecordingSegmenter`` is a per-pixel linear classifier (one 1x1 convolution, no BatchNorm), so the
logits of an image depend on that image alone and a mean loss over the data set does not depend
on how the images were split into batches. In train mode it records the id each input image
carries in its first pixel (``pixel = id / ID_SCALE``): the order in which training saw them.
"""

from __future__ import annotations

import torch
from torch import nn

ID_SCALE = 100.0


def tag_images(images: torch.Tensor) -> torch.Tensor:
    """A copy of ``images`` (N, C, H, W) whose first pixel holds each image's index / ID_SCALE."""
    tagged = images.clone()
    tagged[:, 0, 0, 0] = torch.arange(len(images), dtype=images.dtype) / ID_SCALE
    return tagged


class RecordingSegmenter(nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 3):
        super().__init__()
        self.head = nn.Conv2d(in_channels, num_classes, kernel_size=1)
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.seen.extend(round(value * ID_SCALE) for value in x[:, 0, 0, 0].tolist())
        return self.head(x)

    def seen_ids(self) -> list[int]:
        """The ids of the images the model was given in train mode, in order."""
        return list(self.seen)
