"""Practical 3: Image segmentation with a U-Net, from CPU to GPU.

Compact version: the blocks are nn.Sequential subclasses, the metrics come from one confusion
matrix (torch.bincount), the weight map is computed with tensor ops (no scipy), and training
uses a DataLoader (pinned memory on a GPU).
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from assignments.segmentation.data import NUM_CLASSES, load_split


# ---------------------------------------------------------------------------------------------
# 1. U-Net
# ---------------------------------------------------------------------------------------------
class DoubleConv(nn.Sequential):
    """(3x3 conv, padding 1, BatchNorm, ReLU) x 2: keeps H and W."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )


class Down(nn.Sequential):
    """MaxPool2d(2) then DoubleConv: halves H and W."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))


class Up(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """x (B, in_channels, h, w) and skip (B, in_channels // 2, 2h, 2w) -> (B, out_channels, 2h, 2w)."""
        return self.conv(torch.cat((skip, self.up(x)), dim=1))


class UNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, base_channels: int = 16, depth: int = 3):
        super().__init__()
        self.depth = depth
        widths = [base_channels * 2 ** k for k in range(depth + 1)]  # base, 2 base, ..., 2^depth base
        self.stem = DoubleConv(in_channels, base_channels)
        self.encoder = nn.ModuleList(Down(c_in, c_out) for c_in, c_out in zip(widths[:-1], widths[1:]))
        self.decoder = nn.ModuleList(Up(c_in, c_out) for c_in, c_out in zip(widths[:0:-1], widths[-2::-1]))
        self.head = nn.Conv2d(base_channels, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> logits (B, num_classes, H, W); H and W divisible by 2 ** depth."""
        stride = 1 << self.depth
        if x.shape[-2] % stride or x.shape[-1] % stride:
            raise ValueError(f"H and W must be divisible by 2 ** depth = {stride}; got {tuple(x.shape[-2:])}")
        features = [self.stem(x)]
        for down in self.encoder:
            features.append(down(features[-1]))
        y = features.pop()
        for up in self.decoder:
            y = up(y, features.pop())
        return self.head(y)


# ---------------------------------------------------------------------------------------------
# 2. Losses
# ---------------------------------------------------------------------------------------------
def _pixel_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log softmax(logits)[target] for every pixel, (B, H, W)."""
    return -torch.gather(F.log_softmax(logits, dim=1), 1, target.long()[:, None])[:, 0]


def cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over all B * H * W pixels of -log softmax(logits)[target] (softmax over the classes)."""
    return _pixel_nll(logits, target).mean()


def dice_coefficient(probs: torch.Tensor, target_onehot: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Soft Dice per class, shape (C,): (2 sum y y_hat + eps) / (sum y + sum y_hat + eps), sums over
    the batch and the pixels; probs and target_onehot are (B, C, H, W)."""
    y_hat = probs.transpose(0, 1).flatten(1)  # (C, B*H*W)
    y = target_onehot.transpose(0, 1).flatten(1).to(probs.dtype)
    return (2 * (y * y_hat).sum(1) + eps) / (y.sum(1) + y_hat.sum(1) + eps)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """1 - the mean over the classes of dice_coefficient(softmax(logits), one-hot target)."""
    num_classes = logits.shape[1]
    onehot = F.one_hot(target.long(), num_classes).movedim(-1, 1).to(logits.dtype)
    return 1 - dice_coefficient(logits.softmax(dim=1), onehot, eps).mean()


def unet_weight_map(instances: torch.Tensor, w0: float = 10.0, sigma: float = 5.0) -> torch.Tensor:
    """The U-Net weight map of each scene, (B, H, W) float32 on the instances' device.

    instances: (B, H, W) ints, 0 on the background, one id per object. On background pixels
    w = 1 + w0 * exp(-(d1 + d2)^2 / (2 sigma^2)), with d1 and d2 the Euclidean distances to the
    nearest pixel of the nearest and of the second nearest object; w = 1 elsewhere, and everywhere
    in a scene with fewer than two objects.
    """
    batch, height, width = instances.shape
    rows, cols = torch.meshgrid(torch.arange(height, device=instances.device),
                                torch.arange(width, device=instances.device), indexing="ij")
    coords = torch.stack((rows, cols), dim=-1).reshape(-1, 2).to(torch.float64)  # (H*W, 2)
    out = torch.ones(batch, height * width, dtype=torch.float64, device=instances.device)
    for b, scene in enumerate(instances.reshape(batch, -1)):
        ids = scene.unique()
        ids = ids[ids != 0]
        if len(ids) < 2:
            continue
        # exact Euclidean distance of every pixel to the nearest pixel of each object: (K, H*W)
        dist = torch.stack([
            torch.cdist(coords, coords[scene == k], compute_mode="donot_use_mm_for_euclid_dist").amin(dim=1)
            for k in ids
        ])
        d1, d2 = dist.topk(2, dim=0, largest=False).values  # nearest and second-nearest object
        w = 1 + w0 * torch.exp(-(d1 + d2) ** 2 / (2 * sigma ** 2))
        out[b] = torch.where(scene == 0, w, torch.ones_like(w))
    return out.reshape(batch, height, width).float()


def shape_aware_loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over all B * H * W pixels of weights * (-log softmax(logits)[target]); weights is (B, H, W)."""
    return (weights.to(logits) * _pixel_nll(logits, target)).mean()


# ---------------------------------------------------------------------------------------------
# 3. Metrics (global aggregation: one confusion matrix over every pixel of the batch)
# ---------------------------------------------------------------------------------------------
def _confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) counts, rows = target class, columns = predicted class."""
    target = target.to(pred.device).reshape(-1).long()
    index = target * num_classes + pred.reshape(-1).long()
    return torch.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes).double()


def iou_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """IoU of each class over the whole batch, shape (num_classes,) float; NaN for a class absent from both."""
    cm = _confusion(pred, target, num_classes)
    tp = cm.diagonal()
    return (tp / (cm.sum(0) + cm.sum(1) - tp)).float()


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean of iou_per_class over the classes that are present (0-d tensor)."""
    return iou_per_class(pred, target, num_classes).nanmean()


def dice_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Dice score of each class over the whole batch, shape (num_classes,) float; NaN for a class absent from both."""
    cm = _confusion(pred, target, num_classes)
    return (2 * cm.diagonal() / (cm.sum(0) + cm.sum(1))).float()


def mean_dice(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean of dice_per_class over the classes that are present (0-d tensor)."""
    return dice_per_class(pred, target, num_classes).nanmean()


# ---------------------------------------------------------------------------------------------
# 4. Training on any device
# ---------------------------------------------------------------------------------------------
def train_unet(model: nn.Module, images: torch.Tensor, masks: torch.Tensor, *, loss: str = "ce",
               weights: torch.Tensor | None = None, epochs: int = 8, batch_size: int = 32, lr: float = 3e-3,
               device="cpu") -> list[float]:
    """Train with Adam on shuffled mini-batches of (images, masks[, weights]); return the mean loss of each epoch."""
    losses = {
        "ce": lambda z, y, w: cross_entropy_loss(z, y),
        "dice": lambda z, y, w: dice_loss(z, y),
        "shape_aware": lambda z, y, w: shape_aware_loss(z, y, w),
    }
    if loss not in losses:
        raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(losses)}")
    if loss == "shape_aware" and weights is None:
        raise ValueError("the shape-aware loss needs `weights`, the weight map of every image (N, H, W)")
    criterion = losses[loss]

    device = torch.device(device)
    model.to(device)
    tensors = (images, masks) if weights is None else (images, masks, weights)
    loader = DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=True,
                        pin_memory=device.type == "cuda")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    history = []
    for _ in range(epochs):
        model.train()
        total, seen = 0.0, 0
        for batch in loader:
            x, y, *w = (t.to(device, non_blocking=True) for t in batch)
            value = criterion(model(x), y, w[0] if w else None)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            total += value.item() * len(x)
            seen += len(x)
        history.append(total / seen)
    model.eval()
    return history


if __name__ == "__main__":
    import time

    from assignments.segmentation.data import CLASSES

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    (x_train, y_train, inst_train), (x_test, y_test, _) = load_split()
    w_train = unet_weight_map(inst_train)
    for loss in ("ce", "dice", "shape_aware"):
        torch.manual_seed(0)
        model = UNet(1, NUM_CLASSES)
        start = time.perf_counter()
        history = train_unet(model, x_train, y_train, loss=loss, weights=w_train, epochs=6, batch_size=16,
                             lr=1e-3, device=device)
        with torch.no_grad():
            pred = model(x_test.to(device)).argmax(dim=1).cpu()
        per_class = iou_per_class(pred, y_test, NUM_CLASSES)
        print(f"{loss:>11} ({time.perf_counter() - start:.1f} s on {device}): loss {history[0]:.3f} -> "
              f"{history[-1]:.3f}, mIoU {mean_iou(pred, y_test, NUM_CLASSES):.3f} "
              f"({', '.join(f'{c} {v:.3f}' for c, v in zip(CLASSES, per_class))}), "
              f"mean Dice {mean_dice(pred, y_test, NUM_CLASSES):.3f}")
