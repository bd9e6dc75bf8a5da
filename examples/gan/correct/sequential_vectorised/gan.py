"""Practical 7: GANs, quality and diversity.

GAN losses written with softplus, WGAN-GP penalty, k-NN precision/recall and latent truncation.
Nothing heavy runs at import time: the experiments are under ``if __name__ == "__main__":``.
"""

import torch
import torch.nn.functional as F
from torch import nn

from assignments.gan.data import load_digits_pm1
from assignments.gan.models import LATENT_DIM


# ---------------------------------------------------------------------------------------------
# 1. GAN losses. With D = sigmoid(l):  -log D = softplus(-l),  -log(1 - D) = softplus(l).
# ---------------------------------------------------------------------------------------------
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-mean(log D(real)) - mean(log(1 - D(fake))), with D = sigmoid(logit): a 0-d tensor."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss -mean(log D(fake)): a 0-d tensor."""
    return F.softplus(-fake_logits).mean()


# ---------------------------------------------------------------------------------------------
# 2. WGAN-GP gradient penalty.
# ---------------------------------------------------------------------------------------------
def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                     eps: torch.Tensor | None = None) -> torch.Tensor:
    """weight * mean over samples of (||grad C(x_hat)||_2 - 1)^2, x_hat = eps * real + (1 - eps) * fake.

    eps: (B,) interpolation weights, drawn from U[0, 1] when not given."""
    real = real.detach()
    fake = fake.detach().to(real)
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    if eps is None:
        eps = torch.rand(shape, dtype=real.dtype, device=real.device)
    eps = eps.to(real).view(shape)
    # lerp(fake, real, eps) = fake + eps * (real - fake) = eps * real + (1 - eps) * fake
    x_hat = torch.lerp(fake, real, eps).requires_grad_()
    grad = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)[0]
    return weight * (grad.flatten(start_dim=1).norm(dim=1) - 1).pow(2).mean()


# ---------------------------------------------------------------------------------------------
# 3. Precision and recall (k-NN manifolds, Kynkaanniemi et al. 2019).
# ---------------------------------------------------------------------------------------------
def _kth_neighbour_distance(x: torch.Tensor, k: int) -> torch.Tensor:
    # Row i of the self-distance matrix holds 0 (x_i itself) among its k + 1 smallest values.
    self_dist = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    return self_dist.topk(k + 1, dim=1, largest=False).values[:, -1]


def precision_recall(real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of fake_features (M, d) against real_features (N, d), as floats."""
    with torch.no_grad():
        real = real_features
        fake = fake_features.to(real)
        r_real = _kth_neighbour_distance(real, k)
        r_fake = _kth_neighbour_distance(fake, k)
        dist = torch.cdist(fake, real, compute_mode="donot_use_mm_for_euclid_dist")  # (M, N)
        precision = (dist <= r_real).any(dim=1).double().mean()      # fake j inside some real ball
        recall = (dist <= r_fake[:, None]).any(dim=0).double().mean()  # real i inside some fake ball
    return precision.item(), recall.item()


# ---------------------------------------------------------------------------------------------
# 4. Truncation of the latent code.
# ---------------------------------------------------------------------------------------------
def truncate_hard(z: torch.Tensor, threshold: float) -> torch.Tensor:
    """A copy of z in which every coordinate with |z_i| > threshold is redrawn from N(0, 1) until none is."""
    out = z.clone()
    while True:
        bad = out.abs() > threshold
        if not bad.any():
            return out
        out = torch.where(bad, torch.randn_like(out), out)


def truncate_soft(z: torch.Tensor, psi: float) -> torch.Tensor:
    """psi * z."""
    return z * psi


def _latent_device(generator: nn.Module) -> torch.device:
    return next(generator.parameters()).device


def _latent(generator: nn.Module, n: int) -> torch.Tensor:
    return torch.randn((n, LATENT_DIM), device=_latent_device(generator))


@torch.no_grad()
def sample_hard(generator: nn.Module, n: int, threshold: float) -> torch.Tensor:
    """n samples G(z) with z ~ N(0, I) truncated to [-threshold, threshold] (hard truncation)."""
    return generator(truncate_hard(_latent(generator, n), threshold)).detach()


@torch.no_grad()
def sample_soft(generator: nn.Module, n: int, psi: float) -> torch.Tensor:
    """n samples G(psi * z) with z ~ N(0, I) (soft truncation)."""
    return generator(truncate_soft(_latent(generator, n), psi)).detach()


# ---------------------------------------------------------------------------------------------
# 5./6. Training (python -m assignments.gan.train_generator gan.py) and exploration.
# ---------------------------------------------------------------------------------------------
if __name__ == "__main__":
    from assignments.gan.checkpoint import clean_state_dict, load_generator, read_state_dict
    from assignments.gan.metric import evaluate

    trained = load_generator(clean_state_dict(read_state_dict("generator.pt")))
    x_train, _, _, _ = load_digits_pm1()
    for psi in (1.0, 0.8, 0.6, 0.4):
        samples = sample_soft(trained, 1500, psi)
        print(f"soft psi {psi}: features {evaluate(x_train, samples)}, pixels {evaluate(x_train, samples, 'pixels')}")
    for threshold in (2.0, 1.5, 1.0, 0.5):
        samples = sample_hard(trained, 1500, threshold)
        print(f"hard t {threshold}: features {evaluate(x_train, samples)}, pixels {evaluate(x_train, samples, 'pixels')}")
