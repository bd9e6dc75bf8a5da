# %% [markdown]
# # Practical 7: GANs, quality and diversity
#
# Losses of a GAN (non-saturating generator loss), the WGAN-GP gradient penalty, the
# precision/recall metric of Kynkaanniemi et al. (2019), and hard / soft truncation samplers.
# Experiments live under `if __name__ == "__main__":` (the grader imports this file).

# %%
import torch
import torch.nn.functional as F
from torch import nn

from assignments.gan.data import load_digits_pm1
from assignments.gan.models import LATENT_DIM


# %% [markdown]
# ## 1. The GAN losses
#
# With D = sigmoid(l): log D = -softplus(-l) and log(1 - D) = -softplus(l), finite for any logit.


# %%
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-mean(log D(real)) - mean(log(1 - D(fake))), with D = sigmoid(logit): a 0-d tensor."""
    real_term = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake_term = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real_term + fake_term


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss -mean(log D(fake)): a 0-d tensor."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# %% [markdown]
# ## 2. The WGAN-GP gradient penalty


# %%
def _per_sample(weights: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) per-sample weights reshaped to (B, 1, ..., 1) so that they broadcast against `like`."""
    weights = weights.to(device=like.device, dtype=like.dtype)
    return weights.reshape(like.shape[0], *([1] * (like.dim() - 1)))


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                     eps: torch.Tensor | None = None) -> torch.Tensor:
    """weight * mean over samples of (||grad C(x_hat)||_2 - 1)^2, x_hat = eps * real + (1 - eps) * fake.

    eps: (B,) interpolation weights, drawn from U[0, 1] when not given."""
    batch = real.shape[0]
    if eps is None:
        eps = torch.rand(batch, device=real.device, dtype=real.dtype)
    eps = _per_sample(eps, real)
    fake = fake.to(device=real.device, dtype=real.dtype)
    # The point on the segment between real and fake; the gradient is taken w.r.t. this input.
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(outputs=scores, inputs=x_hat, grad_outputs=torch.ones_like(scores),
                                  create_graph=True)
    grad_norm = grad.reshape(batch, -1).norm(2, dim=1)
    return weight * ((grad_norm - 1) ** 2).mean()


# %% [markdown]
# ## 3. Precision and recall (Kynkaenniemi et al., 2019)


# %%
def knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of every sample to its k-th nearest neighbour in its own set, itself excluded."""
    distances = torch.cdist(features, features)
    # The smallest value of each row is the sample itself (distance 0): the k-th neighbour is the
    # (k+1)-th smallest value.
    return distances.kthvalue(k + 1, dim=1).values


def precision_recall(real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of fake_features (M, d) against real_features (N, d), as floats."""
    real = real_features.detach()
    fake = fake_features.detach().to(device=real.device, dtype=real.dtype)
    real_radii = knn_radii(real, k)  # (N,)
    fake_radii = knn_radii(fake, k)  # (M,)
    real_to_fake = torch.cdist(real, fake)  # (N, M)

    # A generated sample is realistic when it lies in the ball of at least one real sample.
    fake_in_real = (real_to_fake <= real_radii[:, None]).any(dim=0)  # (M,)
    # A real sample is covered when it lies in the ball of at least one generated sample.
    real_in_fake = (real_to_fake <= fake_radii[None, :]).any(dim=1)  # (N,)

    precision = fake_in_real.sum().item() / len(fake)
    recall = real_in_fake.sum().item() / len(real)
    return float(precision), float(recall)


# %% [markdown]
# ## 4. Truncation


# %%
def truncate_hard(z: torch.Tensor, threshold: float) -> torch.Tensor:
    """A copy of z in which every coordinate with |z_i| > threshold is redrawn from N(0, 1) until none is."""
    z = z.clone()
    outside = z.abs() > threshold
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), dtype=z.dtype, device=z.device)
        outside = z.abs() > threshold
    return z


def truncate_soft(z: torch.Tensor, psi: float) -> torch.Tensor:
    """psi * z."""
    return psi * z


def _latent_device(generator: nn.Module) -> torch.device:
    return next(generator.parameters()).device


@torch.no_grad()
def sample_hard(generator: nn.Module, n: int, threshold: float) -> torch.Tensor:
    """n samples G(z) with z ~ N(0, I) truncated to [-threshold, threshold] (hard truncation)."""
    z = torch.randn(n, LATENT_DIM, device=_latent_device(generator))
    return generator(truncate_hard(z, threshold)).detach()


@torch.no_grad()
def sample_soft(generator: nn.Module, n: int, psi: float) -> torch.Tensor:
    """n samples G(psi * z) with z ~ N(0, I) (soft truncation)."""
    z = torch.randn(n, LATENT_DIM, device=_latent_device(generator))
    return generator(truncate_soft(z, psi)).detach()


# %% [markdown]
# ## 5. Train the generator and hand in its weights
#
#     python -m assignments.gan.train_generator gan.py --out generator.pt
#     python -m assignments.gan.checkpoint generator.pt

# %% [markdown]
# ## 6. Explore: truncation on your own generator

# %% tags=["skip"]
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
