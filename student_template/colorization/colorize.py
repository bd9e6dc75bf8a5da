# %% [markdown]
# # Practical 6: User-guided lineart colorization
#
# An artist inks a drawing (the *lineart*), then colours it. We train a network to do the
# colouring, guided by a few colour strokes from the user (the *hints*), as PaintsTorch does. As
# in StencilTorch, colouring is cast as in-painting: a mask says which region to (re)colour, and
# the rest of the image is kept, so a first pass can feed a second one.
#
# Real illustrations rarely come with their lineart, so we extract it synthetically from colour
# images (xDoG), and simulate the user's strokes from the same images. You will implement:
# (1) xDoG lineart, (2) hint simulation, (3) the stencil composite, (4) a small U-Net generator,
# (5) the WGAN-GP critic loss with its gradient penalty and the generator loss (adversarial + L1),
# (6) training, and (7) a two-pass colourise function.
# The handout (README.md) lists every function the grader calls and how it is graded.
#
# Keep experiments in cells tagged `skip`, or under `if __name__ == "__main__":` in the script:
# the grader imports this file.

# %%
import math

import torch
import torch.nn.functional as F
from torch import nn

from assignments.colorization.data import load_crops, to_gray
from assignments.colorization.models import Critic

# %% [markdown]
# ## 1. Lineart with the eXtended Difference of Gaussians (xDoG)
#
# Blur the grayscale image with two Gaussians, of standard deviations sigma and k * sigma, and
# take D = G_sigma - gamma * G_{k sigma}: D is strongly negative on the dark side of edges.
# A soft threshold turns D into "paper" (1) or "ink" (toward 0):
# T(D) = 1 if D >= eps, else 1 + tanh(phi * (D - eps)).
# Finally, Otsu's method picks the threshold that best separates the values into two classes
# (maximal between-class variance), and the lineart is binary: 0 = line (dark), 1 = paper.
#
# Blur with a normalised Gaussian kernel of radius ceil(3 * std), applied separably (rows, then
# columns), with reflect padding.


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
    raise NotImplementedError("not implemented yet: replace this line with your code")


def xdog(gray: torch.Tensor, sigma: float = 0.7, k: float = 1.6, gamma: float = 0.98, eps: float = -0.01,
         phi: float = 100.0) -> torch.Tensor:
    """Binary lineart of a (H, W) grayscale image in [0, 1]: 0 on lines, 1 on paper."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 2. Simulated user hints
#
# Hints live at a quarter of the image resolution: a (4, H/4, W/4) tensor whose first three
# channels hold stroke colours and whose last channel is the mask (1 on a stroke, 0 elsewhere).
# Colours are 0 wherever the mask is 0. Each stroke starts at a random position of the quarter-
# resolution image, runs 1 to 3 cells horizontally or vertically (clipped at the border), and has
# the colour of the (average-pooled) image at its start. All randomness comes from a
# `torch.Generator` seeded with `seed` (fresh randomness when `seed` is None).


# %%
def simulate_hints(image: torch.Tensor, n_strokes: int, seed: int | None = None) -> torch.Tensor:
    """(3, H, W) colour image in [0, 1] -> (4, H/4, W/4) hints: stroke colours and mask."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 3. The stencil composite
#
# composite = illustration * (1 - m) + lineart * m: where the mask is 1 the network sees the
# lineart (a region to colour), elsewhere the colours already there. The lineart (B, 1, H, W) is
# broadcast over the three colour channels; the mask is (B, 1, H, W).


# %%
def composite(illustration: torch.Tensor, lineart: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W), (B, 1, H, W), (B, 1, H, W) -> (B, 3, H, W)."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 4. The generator: a small U-Net
#
# Input: the lineart (1 channel), the hints upsampled to full resolution with nearest-neighbour
# interpolation (4 channels), the composite (3) and the mask (1): 9 channels. Without a composite
# (a first pass), the composite is the lineart everywhere and the mask is all ones.
# Two levels: conv blocks of `base` and `2 * base` channels, a bottleneck of `4 * base`, and skip
# connections; a Sigmoid keeps the output colours in [0, 1]. H and W must be divisible by 4.


# %%
def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.LeakyReLU(0.2),
    )


class Generator(nn.Module):
    def __init__(self, base: int = 16):
        super().__init__()
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def forward(self, lineart: torch.Tensor, hints: torch.Tensor, composite_image: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1, H, W) lineart, (B, 4, H/4, W/4) hints [, (B, 3, H, W) composite, (B, 1, H, W) mask]
        -> (B, 3, H, W) colours in [0, 1]."""
        raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 5. Losses: WGAN-GP critic, adversarial + L1 generator
#
# The critic C scores images (higher = more real). Its loss is
# E[C(fake)] - E[C(real)] + gradient penalty + drift * E[C(real)^2]
# (the drift term keeps the scores near 0). The gradient penalty (Gulrajani et al. 2017)
# evaluates the critic on points between real and fake images,
# x_hat = alpha * real + (1 - alpha) * fake, alpha ~ U(0, 1) per sample, and penalises
# weight * E[(||grad_x_hat C(x_hat)||_2 - 1)^2]. It must stay differentiable with respect to the
# critic's parameters (`create_graph=True`).
# The generator minimises -E[C(fake)] + l1_weight * mean |fake - target|.


# %%
def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                     alpha: torch.Tensor | None = None) -> torch.Tensor:
    """weight * E[(||grad C(x_hat)||_2 - 1)^2] on x_hat = alpha * real + (1 - alpha) * fake.
    `alpha` (B,) is drawn from U(0, 1) when not given."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def critic_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, gp_weight: float = 10.0,
                drift: float = 1e-3) -> torch.Tensor:
    """E[C(fake)] - E[C(real)] + gradient_penalty + drift * E[C(real)^2]; `fake` is detached."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def generator_loss(critic: nn.Module, fake: torch.Tensor, target: torch.Tensor, l1_weight: float = 100.0) -> torch.Tensor:
    """-E[C(fake)] + l1_weight * mean |fake - target|."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 6. Training
#
# The generator sees the xDoG lineart of each image (`lineart_of`) and simulated hints with 4 to
# 16 strokes (`hints_for`); the target is the image itself. `train_colorizer` alternates one
# critic step and one generator step per batch (Adam with betas (0.5, 0.9), as WGAN-GP
# recommends) and returns the trained generator in eval mode.


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


def train_colorizer(images: torch.Tensor, steps: int = 400, batch_size: int = 16, device: str = "cpu",
                    seed: int = 0) -> Generator:
    """Train Generator() on the images for `steps` critic+generator steps; returns it in eval mode."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 7. Two-pass colourisation
#
# The first pass colours everything from the lineart and the hints. The second pass re-colours
# only the region where `refine_mask` is 1, seeing the first pass elsewhere (the stencil
# composite); outside that region the first pass is kept as it is.


# %%
@torch.no_grad()
def colorize(generator: nn.Module, lineart: torch.Tensor, hints: torch.Tensor,
             refine_mask: torch.Tensor | None = None) -> torch.Tensor:
    """First pass, then (with `refine_mask` (B, 1, H, W)) a refinement pass inside the mask."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% tags=["skip"]
if __name__ == "__main__":
    train, held_out = load_crops()
    model = train_colorizer(train)
    lineart, hints = lineart_of(held_out), hints_for(held_out, torch.Generator().manual_seed(0))
    output = colorize(model, lineart, hints)
    print("held-out L1:", (output - held_out).abs().mean().item())
