# %% [markdown]
# # Practical 3: Image segmentation with a U-Net, from CPU to GPU
#
# (1) a U-Net built from its blocks, (2) cross-entropy, Dice and shape-aware losses, (3) IoU and
# Dice metrics with global aggregation, (4) a training loop that runs on any device.
#
# Experiments live under `if __name__ == "__main__":` so the grader can import this file.

# %%
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from assignments.segmentation.data import NUM_CLASSES, load_split


# %% [markdown]
# ## 1. The U-Net


# %%
class DoubleConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, out_channels, H, W)."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return x


class Down(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, out_channels, H / 2, W / 2)."""
        return self.conv(self.pool(x))


class Up(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """x (B, in_channels, h, w) and skip (B, in_channels // 2, 2h, 2w) -> (B, out_channels, 2h, 2w)."""
        upsampled = self.up(x)
        x = torch.cat([skip, upsampled], dim=1)  # the skip connection
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, base_channels: int = 16, depth: int = 3):
        super().__init__()
        self.depth = depth
        self.inc = DoubleConv(in_channels, base_channels)
        self.downs = nn.ModuleList()
        channels = base_channels
        for _ in range(depth):
            self.downs.append(Down(channels, 2 * channels))
            channels *= 2
        self.ups = nn.ModuleList()
        for _ in range(depth):
            self.ups.append(Up(channels, channels // 2))
            channels //= 2
        self.outc = nn.Conv2d(base_channels, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> logits (B, num_classes, H, W); H and W divisible by 2 ** depth."""
        height, width = x.shape[-2:]
        factor = 2 ** self.depth
        if height % factor != 0 or width % factor != 0:
            raise ValueError(f"UNet of depth {self.depth} needs H and W divisible by {factor}, "
                             f"got {height}x{width}")
        x = self.inc(x)
        skips = []
        for down in self.downs:
            skips.append(x)
            x = down(x)
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)


# %% [markdown]
# ## 2. Three losses


# %%
def cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over all B * H * W pixels of -log softmax(logits)[target] (softmax over the classes)."""
    log_probs = F.log_softmax(logits, dim=1)
    picked = log_probs.gather(1, target.long().unsqueeze(1)).squeeze(1)  # (B, H, W)
    return -picked.mean()


def dice_coefficient(probs: torch.Tensor, target_onehot: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Soft Dice per class, shape (C,): (2 sum y y_hat + eps) / (sum y + sum y_hat + eps), sums over
    the batch and the pixels; probs and target_onehot are (B, C, H, W)."""
    target_onehot = target_onehot.to(probs.dtype)
    dims = [d for d in range(probs.dim()) if d != 1]  # everything but the classes
    intersection = (probs * target_onehot).sum(dim=dims)
    total = target_onehot.sum(dim=dims) + probs.sum(dim=dims)
    return (2 * intersection + eps) / (total + eps)


def _one_hot(target: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, H, W) class ids -> (B, C, H, W) one-hot."""
    return F.one_hot(target.long(), num_classes).permute(0, 3, 1, 2).to(dtype)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """1 - the mean over the classes of dice_coefficient(softmax(logits), one-hot target)."""
    probs = F.softmax(logits, dim=1)
    onehot = _one_hot(target, logits.shape[1], logits.dtype)
    return 1 - dice_coefficient(probs, onehot, eps).mean()


def unet_weight_map(instances: torch.Tensor, w0: float = 10.0, sigma: float = 5.0) -> torch.Tensor:
    """The U-Net weight map of each scene, (B, H, W) float32 on the instances' device.

    instances: (B, H, W) ints, 0 on the background, one id per object. On background pixels
    w = 1 + w0 * exp(-(d1 + d2)^2 / (2 sigma^2)), with d1 and d2 the Euclidean distances to the
    nearest pixel of the nearest and of the second nearest object; w = 1 elsewhere, and everywhere
    in a scene with fewer than two objects.
    """
    scenes = instances.detach().cpu().numpy()
    weights = np.ones(scenes.shape, dtype=np.float32)
    for b, scene in enumerate(scenes):
        ids = [i for i in np.unique(scene) if i != 0]
        if len(ids) < 2:
            continue
        # distance of every pixel to the nearest pixel of each object: EDT of "not this object"
        distances = np.stack([ndimage.distance_transform_edt(scene != i) for i in ids])  # (K, H, W)
        distances.sort(axis=0)
        d1, d2 = distances[0], distances[1]
        w = 1.0 + w0 * np.exp(-((d1 + d2) ** 2) / (2.0 * sigma ** 2))
        background = scene == 0
        weights[b][background] = w[background]
    return torch.from_numpy(weights).to(instances.device)


def shape_aware_loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over all B * H * W pixels of weights * (-log softmax(logits)[target]); weights is (B, H, W)."""
    log_probs = F.log_softmax(logits, dim=1)
    nll = -log_probs.gather(1, target.long().unsqueeze(1)).squeeze(1)  # (B, H, W)
    weights = weights.to(device=logits.device, dtype=logits.dtype)
    return (weights * nll).mean()


# %% [markdown]
# ## 3. Measuring a segmentation (global aggregation: the batch is one big image)


# %%
def _counts(pred: torch.Tensor, target: torch.Tensor, num_classes: int):
    """Per class: |pred = c and target = c|, |pred = c|, |target = c| over all pixels of all images."""
    pred = pred.reshape(-1)
    target = target.reshape(-1).to(pred.device)
    intersection, predicted, actual = [], [], []
    for c in range(num_classes):
        p = pred == c
        t = target == c
        intersection.append((p & t).sum())
        predicted.append(p.sum())
        actual.append(t.sum())
    # float64 counts: exact for any realistic number of pixels
    return (torch.stack(intersection).double(), torch.stack(predicted).double(), torch.stack(actual).double())


def iou_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """IoU of each class over the whole batch, shape (num_classes,) float; NaN for a class absent from both."""
    intersection, predicted, actual = _counts(pred, target, num_classes)
    union = predicted + actual - intersection
    return (intersection / union).float()  # 0 / 0 = NaN for a class absent from both


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean of iou_per_class over the classes that are present (0-d tensor)."""
    return torch.nanmean(iou_per_class(pred, target, num_classes))


def dice_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Dice score of each class over the whole batch, shape (num_classes,) float; NaN for a class absent from both."""
    intersection, predicted, actual = _counts(pred, target, num_classes)
    return (2 * intersection / (predicted + actual)).float()


def mean_dice(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean of dice_per_class over the classes that are present (0-d tensor)."""
    return torch.nanmean(dice_per_class(pred, target, num_classes))


# %% [markdown]
# ## 4. Training, on any device


# %%
def train_unet(model: nn.Module, images: torch.Tensor, masks: torch.Tensor, *, loss: str = "ce",
               weights: torch.Tensor | None = None, epochs: int = 8, batch_size: int = 32, lr: float = 3e-3,
               device="cpu") -> list[float]:
    """Train with Adam on shuffled mini-batches of (images, masks[, weights]); return the mean loss of each epoch."""
    if loss not in ("ce", "dice", "shape_aware"):
        raise ValueError(f"loss must be 'ce', 'dice' or 'shape_aware', got {loss!r}")
    if loss == "shape_aware" and weights is None:
        raise ValueError("loss='shape_aware' needs the weight map of every image (weights)")

    device = torch.device(device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n = images.shape[0]

    epoch_losses = []
    for epoch in range(epochs):
        model.train()
        permutation = torch.randperm(n)  # the data set stays on the CPU
        running_loss = 0.0
        for start in range(0, n, batch_size):
            indices = permutation[start:start + batch_size]
            x = images[indices].to(device)
            y = masks[indices].to(device)

            logits = model(x)
            if loss == "ce":
                batch_loss = cross_entropy_loss(logits, y)
            elif loss == "dice":
                batch_loss = dice_loss(logits, y)
            else:
                w = weights[indices].to(device)
                batch_loss = shape_aware_loss(logits, y, w)

            optimizer.zero_grad()
            batch_loss.backward()
            optimizer.step()

            running_loss += batch_loss.item() * len(indices)
        epoch_losses.append(running_loss / n)

    model.eval()
    return epoch_losses


# %% [markdown]
# ## Try it (not run by the grader)

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
        losses = train_unet(model, x_train, y_train, loss=loss, weights=w_train, epochs=6, batch_size=16,
                            lr=1e-3, device=device)
        with torch.no_grad():
            pred = model(x_test.to(device)).argmax(dim=1).cpu()
        ious = ", ".join(f"{name} {v:.3f}" for name, v in zip(CLASSES, iou_per_class(pred, y_test, NUM_CLASSES)))
        print(f"{loss:>11}: {time.perf_counter() - start:.1f} s on {device}, loss {losses[0]:.3f} -> {losses[-1]:.3f}; "
              f"held-out mIoU {mean_iou(pred, y_test, NUM_CLASSES):.3f} ({ious}), "
              f"mean Dice {mean_dice(pred, y_test, NUM_CLASSES):.3f}")
