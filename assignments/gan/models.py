"""The fixed networks of the GAN practical.

* ``Generator``: the architecture every student uses (the final project's template MLP, scaled to
  the 8x8 digits): latent 100 -> 128 -> 256 -> 64, LeakyReLU(0.2), tanh output in [-1, 1]. A
  submitted ``generator.pt`` must be a state dict of exactly this module.
* ``Discriminator``: a baseline discriminator (or WGAN critic) that returns one **logit** per
  sample, shape (B,). Students may use it or their own.
* ``QuadraticCritic`` and ``LinearCritic``: critics whose input gradient is known in closed form,
  for checking a gradient penalty by hand.
* ``FeatureNet`` and ``load_feature_net``: the small digit classifier whose 64-d penultimate
  layer is the feature space of the reference precision/recall. Its weights
  (``features_digits.pt``) come from ``python -m assignments.gan.train_features`` (deterministic)
  and are pinned by SHA-256: the loader refuses any other file and reads it with
  ``weights_only=True`` (tensors only, nothing executed).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

LATENT_DIM = 100
DATA_DIM = 64
FEATURE_DIM = 64

FEATURE_WEIGHTS = Path(__file__).with_name("features_digits.pt")
FEATURE_WEIGHTS_SHA256 = "bd15756eef7cd958dfe795023d94f64d1a2e4cdd4ae24d1d817bf558e7e82005"
FEATURE_TEST_ACCURACY = 0.9832  # 292 of the 297 test digits (train_features prints it)


class Generator(nn.Module):
    """(B, 100) latent codes -> (B, 64) samples in [-1, 1]. The fixed architecture."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(LATENT_DIM, 128),
            nn.LeakyReLU(0.2),
            nn.Linear(128, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, DATA_DIM),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """(B, 64) samples -> (B,) logits: D(x) = sigmoid(logit) is the probability that x is real.
    A baseline; without its dropout (``dropout=0``) it also serves as a WGAN critic."""

    def __init__(self, dropout: float = 0.3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(DATA_DIM, 256),
            nn.LeakyReLU(0.2),
            nn.Dropout(dropout),
            nn.Linear(256, 128),
            nn.LeakyReLU(0.2),
            nn.Dropout(dropout),
            nn.Linear(128, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class QuadraticCritic(nn.Module):
    """C(x) = ||x||^2 / 2 per sample: its input gradient is x itself, so the gradient penalty
    can be computed by hand (||grad C(x_hat)|| = ||x_hat||)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x ** 2).flatten(1).sum(dim=1)


class LinearCritic(nn.Module):
    """C(x) = <w, x> per sample: its input gradient is w everywhere, whatever the interpolation,
    so the penalty is weight * (||w|| - 1)^2."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w


class LatentProbe(nn.Module):
    """A stand-in generator for checking samplers: G(z) = scale * z ** power, elementwise, so the
    samples show the latent codes (power 1) or their squares (power 2). ``scale`` (1) is a
    parameter, so that ``next(probe.parameters()).device`` works as for a real generator."""

    def __init__(self, power: int = 1):
        super().__init__()
        self.power = power
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.scale * z ** self.power


class ToyGenerator(nn.Module):
    """A toy generator whose samples depend on the first two latent coordinates only: a plane in
    R^64, G(z) = z[:, :2] @ A + b with fixed A (orthonormal rows) and b. In two dimensions the
    most likely codes are near the origin, so truncation trades recall for precision as in the
    slides. (In the 100-d latent space itself ||z|| is about 10: the origin is far from where
    codes usually fall, and an MLP generator trained on them may do worse there.)"""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        basis, _ = torch.linalg.qr(torch.randn(DATA_DIM, 2, generator=g))
        self.weight = nn.Parameter(basis.T.contiguous())  # (2, 64)
        self.bias = nn.Parameter(0.5 * torch.randn(DATA_DIM, generator=g))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, :2] @ self.weight + self.bias


class FeatureNet(nn.Module):
    """A digit classifier on (B, 64) inputs in [-1, 1]; ``features`` is its 64-d penultimate
    layer (before the ReLU), the space in which the reference metric compares samples."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(DATA_DIM, 256), nn.ReLU(), nn.Linear(256, FEATURE_DIM))
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(FEATURE_DIM, 10))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_feature_net(device: str | torch.device = "cpu", path: Path = FEATURE_WEIGHTS) -> FeatureNet:
    """The pinned feature network, in eval mode, on ``device``."""
    if path == FEATURE_WEIGHTS and sha256(path) != FEATURE_WEIGHTS_SHA256:
        raise RuntimeError(
            f"{path} is not the pinned feature network (SHA-256 {sha256(path)}, expected "
            f"{FEATURE_WEIGHTS_SHA256}). Restore it from the repository, or regenerate it with "
            "`python -m assignments.gan.train_features`."
        )
    model = FeatureNet()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(device).eval()
