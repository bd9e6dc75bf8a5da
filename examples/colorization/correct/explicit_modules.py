# %% [markdown]
# # Practical 6: User-guided lineart colorization
#
# (1) xDoG lineart, (2) hint simulation, (3) the stencil composite, (4) a small U-Net generator,
# (5) WGAN-GP critic loss, gradient penalty and generator loss (adversarial + L1), (6) training,
# (7) two-pass colourisation. Experiments live under `if __name__ == "__main__":`.

# %%
import math

import torch
import torch.nn.functional as F
from torch import nn

from assignments.colorization.data import load_crops, to_gray
from assignments.colorization.models import Critic


# %% [markdown]
# ## 1. Lineart with the eXtended Difference of Gaussians (xDoG)


# %%
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
    values = values.detach().flatten().to(device="cpu", dtype=torch.float64).clamp(0.0, 1.0)
    hist = torch.histc(values, bins=bins, min=0.0, max=1.0)
    prob = hist / hist.sum()
    centers = (torch.arange(bins, dtype=torch.float64) + 0.5) / bins

    best_variance, best_edge = -1.0, 0.5
    # Threshold at the edge between bin i - 1 and bin i: class 0 holds bins 0..i-1, class 1 the rest.
    for i in range(1, bins):
        w0 = prob[:i].sum().item()
        w1 = 1.0 - w0
        if w0 <= 0.0 or w1 <= 0.0:
            continue
        mu0 = (prob[:i] * centers[:i]).sum().item() / w0
        mu1 = (prob[i:] * centers[i:]).sum().item() / w1
        variance = w0 * w1 * (mu0 - mu1) ** 2
        if variance > best_variance:
            best_variance, best_edge = variance, i / bins
    return float(best_edge)


def xdog(gray: torch.Tensor, sigma: float = 0.7, k: float = 1.6, gamma: float = 0.98, eps: float = -0.01,
         phi: float = 100.0) -> torch.Tensor:
    """Binary lineart of a (H, W) grayscale image in [0, 1]: 0 on lines, 1 on paper."""
    g_small = gaussian_blur(gray, sigma)
    g_large = gaussian_blur(gray, k * sigma)
    dog = g_small - gamma * g_large
    soft = torch.where(dog >= eps, torch.ones_like(dog), 1 + torch.tanh(phi * (dog - eps)))
    low, high = soft.min(), soft.max()
    if high == low:  # no edge at all: blank paper
        return torch.ones_like(gray)
    normalised = (soft - low) / (high - low)
    threshold = otsu_threshold(normalised)
    return (normalised > threshold).to(gray.dtype)


# %% [markdown]
# ## 2. Simulated user hints


# %%
def simulate_hints(image: torch.Tensor, n_strokes: int, seed: int | None = None) -> torch.Tensor:
    """(3, H, W) colour image in [0, 1] -> (4, H/4, W/4) hints: stroke colours and mask."""
    rng = torch.Generator()
    if seed is None:
        rng.seed()
    else:
        rng.manual_seed(seed)
    cells = F.avg_pool2d(image[None], 4)[0]  # (3, H/4, W/4): the colour of every cell
    _, height, width = cells.shape
    hints = torch.zeros(4, height, width, dtype=image.dtype, device=image.device)
    for _ in range(n_strokes):
        row = int(torch.randint(height, (1,), generator=rng))
        col = int(torch.randint(width, (1,), generator=rng))
        length = int(torch.randint(1, 4, (1,), generator=rng))
        horizontal = bool(torch.randint(2, (1,), generator=rng))
        colour = cells[:, row, col]
        for step in range(length):
            r, c = (row, col + step) if horizontal else (row + step, col)
            if r >= height or c >= width:  # clipped at the border
                break
            hints[:3, r, c] = colour
            hints[3, r, c] = 1.0
    return hints


# %% [markdown]
# ## 3. The stencil composite


# %%
def composite(illustration: torch.Tensor, lineart: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W), (B, 1, H, W), (B, 1, H, W) -> (B, 3, H, W)."""
    return illustration * (1 - mask) + lineart * mask


# %% [markdown]
# ## 4. The generator: a small U-Net


# %%
def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.LeakyReLU(0.2),
    )


class Generator(nn.Module):
    def __init__(self, base: int = 16):
        super().__init__()
        in_channels = 1 + 4 + 3 + 1  # lineart, hints, composite, mask
        self.enc1 = conv_block(in_channels, base)          # H
        self.enc2 = conv_block(base, 2 * base)             # H / 2
        self.bottleneck = conv_block(2 * base, 4 * base)   # H / 4
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(4 * base, 2 * base, kernel_size=2, stride=2)
        self.dec2 = conv_block(4 * base, 2 * base)         # up2 + skip from enc2
        self.up1 = nn.ConvTranspose2d(2 * base, base, kernel_size=2, stride=2)
        self.dec1 = conv_block(2 * base, base)             # up1 + skip from enc1
        self.head = nn.Conv2d(base, 3, kernel_size=1)
        self.out = nn.Sigmoid()

    def forward(self, lineart: torch.Tensor, hints: torch.Tensor, composite_image: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1, H, W) lineart, (B, 4, H/4, W/4) hints [, (B, 3, H, W) composite, (B, 1, H, W) mask]
        -> (B, 3, H, W) colours in [0, 1]."""
        batch, _, height, width = lineart.shape
        if composite_image is None:  # first pass: everything is to be coloured
            composite_image = lineart.expand(batch, 3, height, width)
        if mask is None:
            mask = torch.ones(batch, 1, height, width, dtype=lineart.dtype, device=lineart.device)
        hints_full = F.interpolate(hints, size=(height, width), mode="nearest")
        x = torch.cat([lineart, hints_full, composite_image, mask], dim=1)

        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        b = self.bottleneck(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.out(self.head(d1))


# %% [markdown]
# ## 5. Losses: WGAN-GP critic, adversarial + L1 generator


# %%
def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                     alpha: torch.Tensor | None = None) -> torch.Tensor:
    """weight * E[(||grad C(x_hat)||_2 - 1)^2] on x_hat = alpha * real + (1 - alpha) * fake.
    `alpha` (B,) is drawn from U(0, 1) when not given."""
    batch = real.shape[0]
    if alpha is None:
        alpha = torch.rand(batch, dtype=real.dtype, device=real.device)
    alpha = alpha.to(device=real.device, dtype=real.dtype).reshape(batch, *([1] * (real.dim() - 1)))
    fake = fake.to(device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores, x_hat, grad_outputs=torch.ones_like(scores), create_graph=True)
    norms = grad.reshape(batch, -1).norm(2, dim=1)
    return weight * ((norms - 1) ** 2).mean()


def critic_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, gp_weight: float = 10.0,
                drift: float = 1e-3) -> torch.Tensor:
    """E[C(fake)] - E[C(real)] + gradient_penalty + drift * E[C(real)^2]; `fake` is detached."""
    fake = fake.detach()
    real_scores = critic(real)
    fake_scores = critic(fake)
    loss = fake_scores.mean() - real_scores.mean() + drift * (real_scores ** 2).mean()
    return loss + gradient_penalty(critic, real, fake, weight=gp_weight)


def generator_loss(critic: nn.Module, fake: torch.Tensor, target: torch.Tensor, l1_weight: float = 100.0) -> torch.Tensor:
    """-E[C(fake)] + l1_weight * mean |fake - target|."""
    adversarial = -critic(fake).mean()
    l1 = (fake - target).abs().mean()
    return adversarial + l1_weight * l1


# %% [markdown]
# ## 6. Training


# %%
def lineart_of(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) images -> their xDoG lineart (B, 1, H, W)."""
    return torch.stack([xdog(to_gray(image)) for image in images])[:, None]


def hints_for(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Simulated hints for each image, with 4 to 16 strokes: (B, 4, H/4, W/4)."""
    strokes = torch.randint(4, 17, (len(images),), generator=generator)
    seeds = torch.randint(2 ** 31, (len(images),), generator=generator)
    return torch.stack([simulate_hints(image, int(n), int(seed)) for image, n, seed in zip(images, strokes, seeds)])


L1_WEIGHT = 2000.0  # at this scale the L1 term must dominate: the critic only sharpens
G_LR = 2e-3
C_LR = 1e-3
BETAS = (0.5, 0.9)


def train_colorizer(images: torch.Tensor, steps: int = 400, batch_size: int = 16, device: str = "cpu",
                    seed: int = 0) -> Generator:
    """Train Generator() on the images for `steps` critic+generator steps; returns it in eval mode."""
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    images = images.detach().float().cpu()
    linearts = lineart_of(images)  # the lineart of an image never changes: compute it once

    generator = Generator().to(device)
    critic = Critic().to(device)
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=G_LR, betas=BETAS)
    c_optimizer = torch.optim.Adam(critic.parameters(), lr=C_LR, betas=BETAS)
    generator.train()
    critic.train()

    for _ in range(steps):
        index = torch.randint(len(images), (batch_size,), generator=rng)
        real = images[index]
        hints = hints_for(real, rng).to(device)
        lineart = linearts[index].to(device)
        real = real.to(device)

        fake = generator(lineart, hints)

        # one critic step (critic_loss detaches the fake)
        c_loss = critic_loss(critic, real, fake)
        c_optimizer.zero_grad()
        c_loss.backward()
        c_optimizer.step()

        # one generator step
        g_loss = generator_loss(critic, fake, real, l1_weight=L1_WEIGHT)
        g_optimizer.zero_grad()
        g_loss.backward()
        g_optimizer.step()

    return generator.eval()


# %% [markdown]
# ## 7. Two-pass colourisation


# %%
@torch.no_grad()
def colorize(generator: nn.Module, lineart: torch.Tensor, hints: torch.Tensor,
             refine_mask: torch.Tensor | None = None) -> torch.Tensor:
    """First pass, then (with `refine_mask` (B, 1, H, W)) a refinement pass inside the mask."""
    first = generator(lineart, hints)
    if refine_mask is None:
        return first
    refine_mask = refine_mask.to(first)
    stencil = composite(first, lineart, refine_mask)
    second = generator(lineart, hints, stencil, refine_mask)
    # inside the mask the second pass, outside it the first pass unchanged
    return first * (1 - refine_mask) + second * refine_mask


# %% tags=["skip"]
if __name__ == "__main__":
    train, held_out = load_crops()
    model = train_colorizer(train)
    lineart, hints = lineart_of(held_out), hints_for(held_out, torch.Generator().manual_seed(0))
    output = colorize(model, lineart, hints)
    print("held-out L1:", (output - held_out).abs().mean().item())
