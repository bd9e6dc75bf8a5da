"""The fixed classifier the practical attacks, and its pinned weights.

``DigitsClassifier`` is a small CNN for 8x8 digits. Its weights (``classifier_digits.pt``) are
produced by ``python -m assignments.adversarial.train_classifier`` (deterministic: fixed seed,
one thread, deterministic algorithms) and pinned by SHA-256 below: ``load_classifier`` refuses a
file that is not exactly the committed one, and loads it with ``weights_only=True`` (tensors
only, nothing executed). Clean test accuracy: see ``CLEAN_TEST_ACCURACY``.

The dropout layers are deliberate: in train mode the network is random, so an attack that
forgets ``model.eval()`` computes other gradients than the grader's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

WEIGHTS = Path(__file__).with_name("classifier_digits.pt")
WEIGHTS_SHA256 = "f655075785aef22cc0e3cffc6a5c9be09349ad4779229f01b900514e331b3f81"
CLEAN_TEST_ACCURACY = 0.9933  # 295 of the 297 test digits (train_classifier prints it)


class DigitsClassifier(nn.Module):
    """(B, 1, 8, 8) images in [0, 1] -> (B, 10) logits."""

    def __init__(self, dropout: float = 0.25):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 32 x 4 x 4
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(64, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_classifier(device: str | torch.device = "cpu", path: Path = WEIGHTS) -> DigitsClassifier:
    """The pinned, pretrained classifier, in eval mode, on ``device``."""
    if path == WEIGHTS and sha256(path) != WEIGHTS_SHA256:
        raise RuntimeError(
            f"{path} is not the pinned classifier (SHA-256 {sha256(path)}, expected {WEIGHTS_SHA256}). "
            "Restore it from the repository, or regenerate it with "
            "`python -m assignments.adversarial.train_classifier`."
        )
    model = DigitsClassifier()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(device).eval()



class BorderBlindClassifier(nn.Module):
    """The classifier shown only the inner 6 x 6 pixels (the border is multiplied by 0), so the
    gradient of its loss with respect to a border pixel is exactly zero: an attack must leave those
    pixels as they are (sign(0) = 0 in FGSM and L-inf PGD, a zero component of an L2 step)."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier
        mask = torch.zeros(1, 1, 8, 8)
        mask[..., 1:-1, 1:-1] = 1.0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x * self.mask)


def load_border_blind_classifier(device: str | torch.device = "cpu") -> BorderBlindClassifier:
    """``load_classifier`` behind a mask that hides the image border, in eval mode, on ``device``."""
    return BorderBlindClassifier(load_classifier("cpu")).to(device).eval()
