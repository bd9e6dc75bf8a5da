# %% [markdown]
# # Practical 3: Image segmentation with a U-Net, from CPU to GPU
#
# Semantic segmentation gives every pixel a class. Our images are scenes of handwritten digits
# on a textured background; each pixel is *background*, part of a *zero* or part of a *one*.
#
# You will (1) build a U-Net from its blocks, (2) write the three losses of the course
# (cross-entropy, Dice, and the shape-aware loss with the U-Net paper's weight map), (3) measure
# segmentations with the IoU and the Dice score, and (4) train on whatever device you are given:
# the same code must run on a laptop CPU and on a GPU. The handout (README.md) lists every
# function the grader calls and how it is graded.
#
# Keep experiments (plots, long trainings) in cells tagged `skip`, or under
# `if __name__ == "__main__":` in the script: the grader imports this file.

# %%
import torch
import torch.nn.functional as F
from torch import nn

from assignments.segmentation.data import NUM_CLASSES, load_split

# %% [markdown]
# ## 1. The U-Net
#
# A U-Net is an encoder-decoder. The encoder halves the resolution `depth` times (2x2 max
# pooling) while doubling the channels; the decoder doubles it back (a transposed convolution)
# and, at each scale, **concatenates** the encoder's feature map of the same resolution (the skip
# connection) before convolving. The bottleneck sees the whole digit, the skip connections bring
# back the fine detail the pooling threw away.
#
# * `DoubleConv(in_channels, out_channels)`: (3x3 convolution with padding 1, `BatchNorm2d`,
#   ReLU) twice. It keeps the height and width.
# * `Down(in_channels, out_channels)`: `MaxPool2d(2)` then `DoubleConv`: half the height and width.
# * `Up(in_channels, out_channels)`: `forward(x, skip)` upsamples `x` (in_channels channels) with
#   `ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)`, concatenates
#   `[skip, upsampled]` on the channel dimension (skip has in_channels // 2 channels and twice
#   the height and width of `x`), then applies `DoubleConv(in_channels, out_channels)`.
# * `UNet(in_channels, num_classes, base_channels=16, depth=3)`: a `DoubleConv` to
#   `base_channels`, `depth` `Down`s (channels base, 2 base, 4 base, ...), `depth` `Up`s back to
#   `base_channels`, and a 1x1 convolution to `num_classes` **logits** (no softmax: the losses
#   take logits). Input (B, in_channels, H, W), output (B, num_classes, H, W). H and W must be
#   divisible by 2 ** depth: raise a `ValueError` otherwise.


# %%
class DoubleConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, out_channels, H, W)."""
        raise NotImplementedError("not implemented yet: replace this line with your code")


class Down(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, out_channels, H / 2, W / 2)."""
        raise NotImplementedError("not implemented yet: replace this line with your code")


class Up(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """x (B, in_channels, h, w) and skip (B, in_channels // 2, 2h, 2w) -> (B, out_channels, 2h, 2w)."""
        raise NotImplementedError("not implemented yet: replace this line with your code")


class UNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, base_channels: int = 16, depth: int = 3):
        super().__init__()
        self.depth = depth
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> logits (B, num_classes, H, W); H and W divisible by 2 ** depth."""
        raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 2. Three losses
#
# The network outputs logits z of shape (B, C, H, W); the target is a mask of class ids
# (B, H, W). The predicted probabilities are y_hat = softmax(z) over the **class** dimension
# (dimension 1), and y is the one-hot target. With N = B * H * W pixels:
#
# * **cross-entropy**: L = -(1/N) sum_i sum_c y_ic log y_hat_ic. Use `log_softmax` (stable),
#   not `log(softmax(...))`.
# * **Dice**: for each class c, D_c = (2 sum_i y_ic y_hat_ic + eps) / (sum_i y_ic + sum_i y_hat_ic + eps),
#   the sums running over the whole batch and all pixels; L = 1 - mean_c D_c. The small eps
#   (1e-7) keeps it defined when a class is absent: a class absent from both the target and the
#   prediction counts as a perfect match (D_c = 1), absent from one only as D_c ~ 0.
# * **shape-aware**: the cross-entropy with a weight w(x) per pixel,
#   L = -(1/N) sum_i w_i sum_c y_ic log y_hat_ic, where w is the U-Net paper's weight map:
#   w(x) = 1 + w0 exp(-(d1(x) + d2(x))^2 / (2 sigma^2)) on background pixels, with d1 and d2 the
#   distances to the nearest and the second nearest object (w = 1 on object pixels, and
#   everywhere in a scene with fewer than two objects). Pixels squeezed between two digits weigh
#   up to 1 + w0: the network must learn to separate touching objects. (We do not rebalance
#   classes: the paper's w_c is 1.)
#
# All of them are 0-d tensors, differentiable with respect to the logits, computed in the
# logits' dtype and on their device.


# %%
def cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over all B * H * W pixels of -log softmax(logits)[target] (softmax over the classes)."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def dice_coefficient(probs: torch.Tensor, target_onehot: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Soft Dice per class, shape (C,): (2 sum y y_hat + eps) / (sum y + sum y_hat + eps), sums over
    the batch and the pixels; probs and target_onehot are (B, C, H, W)."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """1 - the mean over the classes of dice_coefficient(softmax(logits), one-hot target)."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def unet_weight_map(instances: torch.Tensor, w0: float = 10.0, sigma: float = 5.0) -> torch.Tensor:
    """The U-Net weight map of each scene, (B, H, W) float32 on the instances' device.

    instances: (B, H, W) ints, 0 on the background, one id per object. On background pixels
    w = 1 + w0 * exp(-(d1 + d2)^2 / (2 sigma^2)), with d1 and d2 the Euclidean distances to the
    nearest pixel of the nearest and of the second nearest object; w = 1 elsewhere, and everywhere
    in a scene with fewer than two objects.
    """
    raise NotImplementedError("not implemented yet: replace this line with your code")


def shape_aware_loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over all B * H * W pixels of weights * (-log softmax(logits)[target]); weights is (B, H, W)."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 3. Measuring a segmentation
#
# The metrics compare predicted class ids `pred` (B, H, W), the argmax of the logits over the
# classes, with the target (B, H, W). For each class c, count over **all the pixels of all the
# images** (the whole batch is one big image; torchmetrics calls this "global" aggregation):
#
# * IoU_c = |pred = c and target = c| / |pred = c or target = c|;
# * Dice_c = 2 |pred = c and target = c| / (|pred = c| + |target = c|).
#
# A class absent from both has no score: its entry is NaN, and the means (`mean_iou`,
# `mean_dice`) average over the classes that have one (`torch.nanmean`). The background class
# is included.


# %%
def iou_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """IoU of each class over the whole batch, shape (num_classes,) float; NaN for a class absent from both."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean of iou_per_class over the classes that are present (0-d tensor)."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def dice_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Dice score of each class over the whole batch, shape (num_classes,) float; NaN for a class absent from both."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def mean_dice(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean of dice_per_class over the classes that are present (0-d tensor)."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 4. Training, on any device
#
# The theme of this practical: the same code trains on a CPU and on a GPU. Never write
# `.cuda()`: take a `device` argument and use `.to(device)`. As in the course, only the forward
# and backward passes run on the device: the data set stays on the CPU and each mini-batch is
# moved to the device when it is used (a `DataLoader` with `pin_memory=True` makes those copies
# faster on a GPU).
#
# `train_unet` moves the model to `device`, then trains it with Adam on shuffled mini-batches for
# `epochs` epochs with the chosen loss: `"ce"`, `"dice"` or `"shape_aware"` (which needs the
# `weights` of every image, (N, H, W), shuffled together with the images). It returns the mean
# training loss of each epoch (weight each batch by its size) and leaves the model in eval mode,
# on `device`. Do not seed inside: the grader seeds torch.


# %%
def train_unet(model: nn.Module, images: torch.Tensor, masks: torch.Tensor, *, loss: str = "ce",
               weights: torch.Tensor | None = None, epochs: int = 8, batch_size: int = 32, lr: float = 3e-3,
               device="cpu") -> list[float]:
    """Train with Adam on shuffled mini-batches of (images, masks[, weights]); return the mean loss of each epoch."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## Try it
#
# Train a small U-Net with each loss and compare the held-out scores. On a GPU, pass
# `device="cuda"` and try larger scenes (`size=64`) and more digits (`digits=(0, 1, 7)`, with
# `UNet(1, 4)`). This cell is tagged `skip` and sits under `if __name__ == "__main__":`, so the
# grader never runs it.

# %% tags=["skip"]
if __name__ == "__main__":
    import time

    from assignments.segmentation.data import CLASSES

    device = "cuda" if torch.cuda.is_available() else "cpu"
    (x_train, y_train, inst_train), (x_test, y_test, _) = load_split()
    w_train = unet_weight_map(inst_train)
    for loss in ("ce", "dice", "shape_aware"):
        torch.manual_seed(0)
        model = UNet(1, NUM_CLASSES, base_channels=16, depth=3)
        start = time.perf_counter()
        losses = train_unet(model, x_train, y_train, loss=loss, weights=w_train, epochs=6, device=device)
        with torch.no_grad():
            pred = model(x_test.to(device)).argmax(dim=1).cpu()
        ious = ", ".join(f"{name} {v:.3f}" for name, v in zip(CLASSES, iou_per_class(pred, y_test, NUM_CLASSES)))
        print(f"{loss:>11}: {time.perf_counter() - start:.1f} s on {device}, loss {losses[0]:.3f} -> {losses[-1]:.3f}; "
              f"held-out mIoU {mean_iou(pred, y_test, NUM_CLASSES):.3f} ({ious}), "
              f"mean Dice {mean_dice(pred, y_test, NUM_CLASSES):.3f}")
