# %% [markdown]
# # Practical 7: GANs, quality and diversity
#
# A generator G maps latent codes z ~ N(0, I) to samples; its distribution P_hat is pushed
# forward from the latent one. Two questions about P_hat against the data distribution P:
#
# * **precision** = P_hat(Supp P): how many generated samples are realistic (quality);
# * **recall** = P(Supp P_hat): how much of the real data the generator can produce (diversity).
#
# You will implement the losses of a GAN (the non-saturating generator loss), the WGAN-GP gradient
# penalty, the precision/recall metric of Kynkaanniemi et al. (2019), and two truncation samplers
# that trade recall for precision. Then you train the course's fixed generator on the 8x8 digits
# and hand in its weights, `generator.pt`, with this file. The handout (README.md) lists every
# function the grader calls and how it is graded.
#
# Keep experiments (plots, long runs) in cells tagged `skip`, or under
# `if __name__ == "__main__":` in the script: the grader imports this file.

# %%
import torch
import torch.nn.functional as F
from torch import nn

from assignments.gan.data import load_digits_pm1
from assignments.gan.models import LATENT_DIM

# %% [markdown]
# ## 1. The GAN losses
#
# The discriminator returns a **logit** per sample, D(x) = sigmoid(logit). The original min-max
# game is min_G max_D E_x[log D(x)] + E_z[log(1 - D(G(z)))]. In practice:
#
# * the discriminator minimises the binary cross-entropy with label 1 for real samples and 0 for
#   generated ones: -E[log D(x)] - E[log(1 - D(G(z)))];
# * the generator minimises the **non-saturating** loss -E[log D(G(z))] rather than
#   E[log(1 - D(G(z)))]: early in training D rejects every fake with confidence, and then the
#   saturating loss has a vanishing gradient while the non-saturating one does not.
#
# Work with logits: log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l) stay
# finite for any logit, where `torch.log(torch.sigmoid(l))` gives -inf for l = -200.


# %%
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-mean(log D(real)) - mean(log(1 - D(fake))), with D = sigmoid(logit): a 0-d tensor."""
    # BEGIN SOLUTION
    real_term = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake_term = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real_term + fake_term
    # END SOLUTION


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss -mean(log D(fake)): a 0-d tensor."""
    # BEGIN SOLUTION
    return F.softplus(-fake_logits).mean()
    # END SOLUTION


# %% [markdown]
# ## 2. The WGAN-GP gradient penalty (Gulrajani et al., 2017)
#
# A Wasserstein critic should be 1-Lipschitz. WGAN-GP asks for a unit gradient norm on points
# x_hat = eps * x_real + (1 - eps) * x_fake between real and generated samples, one eps ~ U[0, 1]
# per sample, and adds weight * E[(||grad_x C(x_hat)||_2 - 1)^2] to the critic's loss.
#
# * The gradient is taken with respect to the **input** x_hat, not the critic's parameters.
# * `create_graph=True`: the penalty must itself be differentiable, so it can train the critic.
# * The norm is per sample, over all of a sample's values.
# * The course notes write `alpha * real - (1 - alpha) * fake`: that is a sign error (erratum E16),
#   the point is then not on the segment.


# %%
def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                     eps: torch.Tensor | None = None) -> torch.Tensor:
    """weight * mean over samples of (||grad C(x_hat)||_2 - 1)^2, x_hat = eps * real + (1 - eps) * fake.

    eps: (B,) interpolation weights, drawn from U[0, 1] when not given."""
    # BEGIN SOLUTION
    if eps is None:
        eps = torch.rand(real.shape[0], device=real.device, dtype=real.dtype)
    eps = eps.view(-1, *[1] * (real.dim() - 1))
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norms = grad.flatten(start_dim=1).norm(dim=1)
    return weight * ((norms - 1) ** 2).mean()
    # END SOLUTION


# %% [markdown]
# ## 3. Precision and recall (Kynkaenniemi et al., 2019)
#
# Both sets are estimated by unions of balls. For a set Phi, the radius of a sample is the
# distance to its k-th nearest neighbour **in Phi, itself excluded**. A point is on the manifold
# of Phi when it lies within (`<=`) the radius of at least one sample of Phi. Then
#
# * precision = the share of generated samples on the manifold of the real ones;
# * recall = the share of real samples on the manifold of the generated ones.
#
# Distances are Euclidean. `torch.cdist` gives all of them at once; `topk` or `kthvalue` finds
# the k-th neighbour (careful: the nearest "neighbour" of a sample in its own set is itself, at
# distance 0).


# %%
def precision_recall(real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of fake_features (M, d) against real_features (N, d), as floats."""
    # BEGIN SOLUTION
    real_radii = torch.cdist(real_features, real_features).kthvalue(k + 1, dim=1).values
    fake_radii = torch.cdist(fake_features, fake_features).kthvalue(k + 1, dim=1).values
    distances = torch.cdist(real_features, fake_features)  # (N, M)
    precision = (distances <= real_radii[:, None]).any(dim=0).float().mean().item()
    recall = (distances <= fake_radii[None, :]).any(dim=1).float().mean().item()
    return precision, recall
    # END SOLUTION


# %% [markdown]
# ## 4. Truncation: trading recall for precision
#
# Latent codes far from the origin are rare in training and tend to give poor samples. Drawing
# codes closer to the origin raises precision and lowers recall.
#
# * **Hard truncation** (BigGAN's truncation trick): every coordinate with |z_i| > threshold is
#   drawn again from N(0, 1), until all coordinates are within the threshold: z follows a
#   normal distribution truncated to [-threshold, threshold]. Coordinates already within stay.
# * **Soft truncation** (Glow's temperature): z is scaled by psi, z ~ N(0, psi^2 I). psi = 1 is
#   plain sampling, psi = 0 gives G(0) every time.
#
# Both act on the **latent code**, before the generator: scaling the generated image by psi is not
# truncation. The samplers draw z ~ N(0, I) of size (n, LATENT_DIM) on the generator's device
# and return the generated samples, detached.


# %%
def truncate_hard(z: torch.Tensor, threshold: float) -> torch.Tensor:
    """A copy of z in which every coordinate with |z_i| > threshold is redrawn from N(0, 1) until none is."""
    # BEGIN SOLUTION
    z = z.clone()
    outside = z.abs() > threshold
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), device=z.device, dtype=z.dtype)
        outside = z.abs() > threshold
    return z
    # END SOLUTION


def truncate_soft(z: torch.Tensor, psi: float) -> torch.Tensor:
    """psi * z."""
    # BEGIN SOLUTION
    return psi * z
    # END SOLUTION


def _latent_device(generator: nn.Module) -> torch.device:
    return next(generator.parameters()).device


@torch.no_grad()
def sample_hard(generator: nn.Module, n: int, threshold: float) -> torch.Tensor:
    """n samples G(z) with z ~ N(0, I) truncated to [-threshold, threshold] (hard truncation)."""
    # BEGIN SOLUTION
    z = torch.randn(n, LATENT_DIM, device=_latent_device(generator))
    return generator(truncate_hard(z, threshold)).detach()
    # END SOLUTION


@torch.no_grad()
def sample_soft(generator: nn.Module, n: int, psi: float) -> torch.Tensor:
    """n samples G(psi * z) with z ~ N(0, I) (soft truncation)."""
    # BEGIN SOLUTION
    z = torch.randn(n, LATENT_DIM, device=_latent_device(generator))
    return generator(truncate_soft(z, psi)).detach()
    # END SOLUTION


# %% [markdown]
# ## 5. Train the generator and hand in its weights
#
# The architecture is fixed (`assignments.gan.models.Generator`) so that everybody's generator
# is compared fairly. The course script trains it with **your** losses and saves its state dict:
#
#     python -m assignments.gan.train_generator gan.py --out generator.pt
#
# You may also train it your own way (another loss, WGAN-GP with `Discriminator(dropout=0)`,
# more steps...). Whatever you do, save `generator.state_dict()` (not the module) with
# `torch.save` to `generator.pt`, and hand it in with this file (a folder or a zip holding both).
# `python -m assignments.gan.checkpoint generator.pt` checks it and prints its score, exactly as
# the grader computes it.

# %% [markdown]
# ## 6. Explore: truncation on your own generator
#
# Measure what truncation does to your trained generator, in the classifier's feature space and
# in pixel space (this cell is skipped by the grader).

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
