"""Course side of the colorization practical: the critic (discriminator) everyone uses, and the
simple baselines a trained colorizer must beat."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Critic(nn.Module):
    """WGAN critic on (B, 3, H, W) colour images in [0, 1] -> (B,) scores. No batch norm: the
    gradient penalty needs each sample's score to depend on that sample only."""

    def __init__(self, base: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, base, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(base, 2 * base, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * base, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(dim=(1, 2, 3))


def flat_gray_baseline(lineart: torch.Tensor) -> torch.Tensor:
    """Every pixel mid-gray: what a colorizer that learned nothing might output. (B, 3, H, W)."""
    return torch.full((lineart.shape[0], 3, *lineart.shape[-2:]), 0.5, device=lineart.device)


def hint_propagation_baseline(hints: torch.Tensor, size: tuple[int, int], radius: int = 5) -> torch.Tensor:
    """Spread the hint colours to full resolution without learning: a normalised box blur of the
    strokes (colours weighted by the mask), mid-gray where no stroke is near. (B, 3, H, W)."""
    colours, mask = hints[:, :3] * hints[:, 3:], hints[:, 3:]
    colours = F.interpolate(colours, size=size, mode="nearest")
    mask = F.interpolate(mask, size=size, mode="nearest")
    kernel = torch.ones(1, 1, 2 * radius + 1, 2 * radius + 1, device=hints.device)
    weight = F.conv2d(mask, kernel, padding=radius)
    spread = F.conv2d(colours.flatten(0, 1)[:, None], kernel, padding=radius).view_as(colours)
    return torch.where(weight > 0, spread / weight.clamp(min=1e-8), torch.full_like(spread, 0.5))


def make_critic(seed: int = 0) -> Critic:
    """A Critic whose initial weights depend only on ``seed`` (the same in any process)."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    critic = Critic()
    torch.random.set_rng_state(generator_state)
    return critic


class QuadraticCritic(nn.Module):
    """C(x) = ||x||^2 / 2 per sample, whose input gradient is x itself: a critic for which the
    gradient penalty can be computed by hand, ||grad C(x_hat)|| = ||x_hat||."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x ** 2).flatten(start_dim=1).sum(dim=1)


class LinearCritic(nn.Module):
    """C(x) = (2 / sqrt(D)) * sum of the D values of each sample: its input gradient has norm 2
    at every point, so the gradient penalty is weight * (2 - 1)^2 = weight whatever the
    interpolation draws (a critic for checking `critic_loss` with the penalty on)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(start_dim=1)
        return 2.0 / flat.shape[1] ** 0.5 * flat.sum(dim=1)
