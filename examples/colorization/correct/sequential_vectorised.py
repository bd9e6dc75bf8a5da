"""Practical 6: user-guided lineart colorization (xDoG, hints, stencil composite, U-Net, WGAN-GP).

Vectorised / nn.Sequential version. Nothing heavy runs at import time: experiments are under
``if __name__ == "__main__":``.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from assignments.colorization.data import load_crops, to_gray
from assignments.colorization.models import Critic


# ---------------------------------------------------------------------------------------------
# 1. xDoG lineart
# ---------------------------------------------------------------------------------------------
def gaussian_blur(image: torch.Tensor, std: float) -> torch.Tensor:
    """Blur (..., H, W) images with a Gaussian of standard deviation `std` (pixels)."""
    radius = max(1, math.ceil(3 * std))
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-offsets ** 2 / (2 * std ** 2))
    kernel = kernel / kernel.sum()
    shape = image.shape
    x = image.reshape(-1, 1, *shape[-2:])
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return x.reshape(shape)


def otsu_threshold(values: torch.Tensor, bins: int = 256) -> float:
    """Otsu's threshold of values in [0, 1]: the bin edge maximising the between-class variance."""
    v = values.detach().reshape(-1).double().cpu().clamp(0, 1)
    counts = torch.histc(v, bins=bins, min=0.0, max=1.0)
    p = counts / counts.sum()
    centres = torch.linspace(0.5 / bins, 1 - 0.5 / bins, bins, dtype=torch.float64)
    # candidate i (0..bins-2): class 0 = bins 0..i, threshold at the upper edge (i + 1) / bins
    w0 = p.cumsum(0)[:-1]
    m0 = (p * centres).cumsum(0)[:-1]
    mean = (p * centres).sum()
    w1 = 1 - w0
    between = (mean * w0 - m0) ** 2 / (w0 * w1)  # = w0 w1 (mu0 - mu1)^2
    between = torch.where((w0 > 0) & (w1 > 1e-12), between, torch.full_like(between, -1.0))
    return (int(between.argmax()) + 1) / bins


def xdog(gray: torch.Tensor, sigma: float = 0.7, k: float = 1.6, gamma: float = 0.98, eps: float = -0.01,
         phi: float = 100.0) -> torch.Tensor:
    """Binary lineart of a (H, W) grayscale image in [0, 1]: 0 on lines, 1 on paper."""
    diff = gaussian_blur(gray, sigma) - gamma * gaussian_blur(gray, k * sigma)
    # T = 1 where D >= eps (tanh >= 0 there), 1 + tanh(phi (D - eps)) elsewhere
    soft = 1 + torch.tanh(phi * (diff - eps)).clamp(max=0)
    span = soft.max() - soft.min()
    if span == 0:
        return torch.ones_like(gray)
    soft = (soft - soft.min()) / span
    return torch.where(soft > otsu_threshold(soft), 1.0, 0.0).to(gray.dtype)


# ---------------------------------------------------------------------------------------------
# 2. Simulated hints
# ---------------------------------------------------------------------------------------------
_DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))  # right, left, down, up


def simulate_hints(image: torch.Tensor, n_strokes: int, seed: int | None = None) -> torch.Tensor:
    """(3, H, W) colour image in [0, 1] -> (4, H/4, W/4) hints: stroke colours and mask."""
    g = torch.Generator()
    g.manual_seed(seed) if seed is not None else g.seed()
    pooled = F.avg_pool2d(image.unsqueeze(0), kernel_size=4).squeeze(0)
    h, w = pooled.shape[-2:]
    rows = torch.randint(0, h, (n_strokes,), generator=g)
    cols = torch.randint(0, w, (n_strokes,), generator=g)
    lengths = torch.randint(1, 4, (n_strokes,), generator=g)
    dirs = torch.randint(0, len(_DIRECTIONS), (n_strokes,), generator=g)

    colours = torch.zeros(3, h, w, dtype=image.dtype, device=image.device)
    mask = torch.zeros(1, h, w, dtype=image.dtype, device=image.device)
    for r, c, n, d in zip(rows.tolist(), cols.tolist(), lengths.tolist(), dirs.tolist()):
        dr, dc = _DIRECTIONS[d]
        rr = torch.arange(n) * dr + r
        cc = torch.arange(n) * dc + c
        keep = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)  # clip at the border
        rr, cc = rr[keep], cc[keep]
        colours[:, rr, cc] = pooled[:, r, c, None]
        mask[:, rr, cc] = 1
    return torch.cat([colours * mask, mask])


# ---------------------------------------------------------------------------------------------
# 3. Stencil composite
# ---------------------------------------------------------------------------------------------
def composite(illustration: torch.Tensor, lineart: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W), (B, 1, H, W), (B, 1, H, W) -> (B, 3, H, W)."""
    lineart, mask = torch.broadcast_tensors(lineart, mask)
    return torch.lerp(illustration, lineart.expand_as(illustration), mask.expand_as(illustration))


# ---------------------------------------------------------------------------------------------
# 4. Generator: two-level U-Net
# ---------------------------------------------------------------------------------------------
def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.LeakyReLU(0.2),
    )


def up_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.LeakyReLU(0.2))


class Generator(nn.Module):
    IN_CHANNELS = 9  # lineart 1 + hints 4 + composite 3 + mask 1

    def __init__(self, base: int = 16):
        super().__init__()
        self.down = nn.ModuleList([
            conv_block(self.IN_CHANNELS, base),
            nn.Sequential(nn.AvgPool2d(2), conv_block(base, 2 * base)),
        ])
        self.bottom = nn.Sequential(nn.AvgPool2d(2), conv_block(2 * base, 4 * base), up_block(4 * base, 2 * base))
        self.up = nn.ModuleList([
            nn.Sequential(conv_block(4 * base, 2 * base), up_block(2 * base, base)),
            nn.Sequential(conv_block(2 * base, base), nn.Conv2d(base, 3, 1), nn.Sigmoid()),
        ])

    def forward(self, lineart: torch.Tensor, hints: torch.Tensor, composite_image: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1, H, W) lineart, (B, 4, H/4, W/4) hints [, (B, 3, H, W) composite, (B, 1, H, W) mask]
        -> (B, 3, H, W) colours in [0, 1]."""
        size = lineart.shape[-2:]
        if composite_image is None:
            composite_image = lineart.repeat(1, 3, 1, 1)
        if mask is None:
            mask = torch.ones_like(lineart)
        x = torch.cat([lineart, F.interpolate(hints, size=size, mode="nearest"), composite_image, mask], 1)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.bottom(x)
        for block, skip in zip(self.up, reversed(skips)):
            x = block(torch.cat([x, skip], 1))
        return x


# ---------------------------------------------------------------------------------------------
# 5. Losses
# ---------------------------------------------------------------------------------------------
def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                     alpha: torch.Tensor | None = None) -> torch.Tensor:
    """weight * E[(||grad C(x_hat)||_2 - 1)^2] on x_hat = alpha * real + (1 - alpha) * fake.
    `alpha` (B,) is drawn from U(0, 1) when not given."""
    real = real.detach()
    fake = fake.detach().to(real)
    shape = (len(real),) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, dtype=real.dtype, device=real.device) if alpha is None else alpha.to(real).view(shape)
    x_hat = torch.lerp(fake, real, alpha).requires_grad_()  # fake + alpha (real - fake)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return weight * (torch.linalg.vector_norm(grad.flatten(1), dim=1) - 1).square().mean()


def critic_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, gp_weight: float = 10.0,
                drift: float = 1e-3) -> torch.Tensor:
    """E[C(fake)] - E[C(real)] + gradient_penalty + drift * E[C(real)^2]; `fake` is detached."""
    fake = fake.detach()
    # the critic has no batch norm: scoring both batches in one call is the same as two calls
    scores = critic(torch.cat([real, fake.to(real)]))
    c_real, c_fake = scores[: len(real)], scores[len(real):]
    loss = c_fake.mean() - c_real.mean() + drift * c_real.pow(2).mean()
    if gp_weight:
        loss = loss + gradient_penalty(critic, real, fake, weight=gp_weight)
    return loss


def generator_loss(critic: nn.Module, fake: torch.Tensor, target: torch.Tensor, l1_weight: float = 100.0) -> torch.Tensor:
    """-E[C(fake)] + l1_weight * mean |fake - target|."""
    return l1_weight * F.l1_loss(fake, target) - critic(fake).mean()


# ---------------------------------------------------------------------------------------------
# 6. Training
# ---------------------------------------------------------------------------------------------
def lineart_of(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) images -> their xDoG lineart (B, 1, H, W)."""
    return torch.stack([xdog(to_gray(image)) for image in images])[:, None]


def hints_for(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Simulated hints for each image, with 4 to 16 strokes: (B, 4, H/4, W/4)."""
    strokes = torch.randint(4, 17, (len(images),), generator=generator)
    seeds = torch.randint(2 ** 31, (len(images),), generator=generator)
    return torch.stack([simulate_hints(image, int(n), int(seed)) for image, n, seed in zip(images, strokes, seeds)])


L1_WEIGHT = 2000.0  # at this scale the L1 term must dominate: the critic only sharpens


def _batches(n: int, batch_size: int, rng: torch.Generator):
    """Endless shuffled mini-batches of indices (a new permutation every epoch)."""
    while True:
        order = torch.randperm(n, generator=rng)
        for start in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            yield order[start:start + batch_size]


def train_colorizer(images: torch.Tensor, steps: int = 400, batch_size: int = 16, device: str = "cpu",
                    seed: int = 0) -> Generator:
    """Train Generator() on the images for `steps` critic+generator steps; returns it in eval mode."""
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    images = images.detach().float().cpu()
    lineart_all = lineart_of(images)

    gen, critic = Generator().to(device), Critic().to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-3, betas=(0.5, 0.9))
    opt_c = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))

    batches = _batches(len(images), batch_size, rng)
    for _ in range(steps):
        idx = next(batches)
        hints = hints_for(images[idx], rng).to(device)
        real, lineart = images[idx].to(device), lineart_all[idx].to(device)
        fake = gen(lineart, hints)

        opt_c.zero_grad(set_to_none=True)
        critic_loss(critic, real, fake).backward()
        opt_c.step()

        opt_g.zero_grad(set_to_none=True)
        generator_loss(critic, fake, real, l1_weight=L1_WEIGHT).backward()
        opt_g.step()
    return gen.eval()


# ---------------------------------------------------------------------------------------------
# 7. Two-pass colourisation
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def colorize(generator: nn.Module, lineart: torch.Tensor, hints: torch.Tensor,
             refine_mask: torch.Tensor | None = None) -> torch.Tensor:
    """First pass, then (with `refine_mask` (B, 1, H, W)) a refinement pass inside the mask."""
    first = generator(lineart, hints)
    if refine_mask is None:
        return first
    mask = refine_mask.to(first)
    second = generator(lineart, hints, composite(first, lineart, mask), mask)
    return torch.lerp(first, second, mask.expand_as(first))  # first + m (second - first): first where m = 0


if __name__ == "__main__":
    train, held_out = load_crops()
    model = train_colorizer(train)
    lineart, hints = lineart_of(held_out), hints_for(held_out, torch.Generator().manual_seed(0))
    output = colorize(model, lineart, hints)
    print("held-out L1:", (output - held_out).abs().mean().item())
