# %% [markdown]
# # Practical 2: Autoencoders
#
# An autoencoder compresses an input x in R^d into a code z = encoder(x) in R^m with m < d, and
# reconstructs x_hat = decoder(z). Training minimises the reconstruction error
# E ||x - x_hat||^2: the bottleneck forces the code to keep what matters most.
#
# You will (1) build and train an autoencoder on 8x8 digits, (2) turn it into a denoiser,
# (3) use its reconstruction error to detect anomalies, and (4) make it variational (VAE).
# The handout (README.md) lists every function the grader calls and how it is graded.
#
# Keep experiments (plots, long trainings) in cells tagged `skip`, or under
# `if __name__ == "__main__":` in the script: the grader imports this file.

# %%
import torch
from torch import nn

from assignments.autoencoder.data import load_digits_split, ood_inputs, pca_baseline_mse

# %% [markdown]
# ## 1. An MLP autoencoder
#
# `Autoencoder(input_dim, latent_dim, hidden_dim)` has an `encoder`
# (Linear -> ReLU -> Linear) from R^d to R^m and a `decoder` (Linear -> ReLU -> Linear -> Sigmoid)
# back to R^d. The Sigmoid keeps reconstructions in [0, 1], like the pixels. The decoder must see
# only the code: no shortcut from the input to the output. Refuse `latent_dim >= input_dim`
# with a `ValueError`: without a bottleneck the network can learn the identity.


# %%
class Autoencoder(nn.Module):
    def __init__(self, input_dim: int, latent_dim: int, hidden_dim: int = 128):
        super().__init__()
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) -> (B, latent_dim)."""
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, input_dim), values in [0, 1]."""
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) -> its reconstruction (B, input_dim)."""
        return self.decode(self.encode(x))


# %% [markdown]
# The loss is the squared L2 norm of the error of each sample, averaged over the batch:
# E ||x - x_hat||^2 (sum over the features, mean over the batch).


# %%
def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """E ||x - x_hat||^2: squared error summed over the features, averaged over the batch (0-d tensor)."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 2. Training, and a denoising autoencoder
#
# A denoising autoencoder sees a corrupted input and learns to output the *clean* one, so it
# cannot just copy its input. `add_noise` adds Gaussian noise N(0, noise_std^2) to every pixel
# and clamps the result back to [0, 1].
#
# `train_autoencoder` is a standard PyTorch training loop. Move the model and the data to
# `device`, create an Adam optimiser, then for each epoch: shuffle the training set
# (`torch.randperm`), and for each mini-batch compute the loss, `zero_grad`, `backward`, `step`.
# With `noise_std > 0` the model gets `add_noise(batch)` as input and the clean batch as target.
# Return the mean training loss of each epoch (weight each batch by its size: the last one may
# be smaller), and leave the model in eval mode. Do not seed inside: the grader seeds torch.


# %%
def add_noise(x: torch.Tensor, noise_std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + N(0, noise_std^2) noise, clamped to [0, 1]. ``generator`` (optional) makes the noise reproducible."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def train_autoencoder(model: nn.Module, x_train: torch.Tensor, *, epochs: int = 60, batch_size: int = 64,
                      lr: float = 1e-3, noise_std: float = 0.0, device="cpu") -> list[float]:
    """Train with Adam on shuffled mini-batches; return the mean loss of each epoch.

    With ``noise_std > 0`` the inputs are corrupted with ``add_noise`` and the targets stay clean.
    """
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 3. Anomaly detection
#
# An autoencoder reconstructs well what looks like its training data. The reconstruction error
# of an input is therefore an anomaly score: high for inputs unlike the training digits. Compute
# it in eval mode and without building a graph (`torch.no_grad()`): it is evaluation, not
# training. `assignments.autoencoder.data.ood_inputs` makes out-of-distribution inputs (random
# noise, inverted digits, digits with shuffled pixels) to try it on.


# %%
@torch.no_grad()
def anomaly_scores(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One score per input, shape (N,): ||x - model(x)||^2. Higher means more anomalous."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 4. A variational autoencoder
#
# The encoder now outputs the parameters of a Gaussian q(z | x) = N(mu, diag(sigma^2)): `mu` and
# `rho = log sigma^2` (2m numbers: mu first, rho second). We sample with the
# *reparameterisation trick* z = mu + sigma * eps, eps ~ N(0, I), with sigma = exp(rho / 2), so
# gradients flow to mu and rho. (The course notes write exp(rho): that is an erratum.)
#
# The loss is the negative ELBO with a Gaussian likelihood, up to constants:
# ||x - x_hat||^2 + kl_weight * KL(q(z | x) || N(0, I)), with the closed form
# KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2).


# %%
def reparameterize(mu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """A differentiable sample z = mu + exp(rho / 2) * eps of N(mu, exp(rho)), eps ~ N(0, I)."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def kl_divergence(mu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(rho)) || N(0, I)) for each sample: shape (B,)."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


class VAE(nn.Module):
    def __init__(self, input_dim: int, latent_dim: int, hidden_dim: int = 128):
        super().__init__()
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, input_dim) -> (mu, rho), each (B, latent_dim)."""
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, input_dim), values in [0, 1]."""
        raise NotImplementedError("not implemented yet: replace this line with your code")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (x_hat, mu, rho), with x_hat decoded from a sample of q(z | x)."""
        raise NotImplementedError("not implemented yet: replace this line with your code")


def vae_loss(x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, rho: torch.Tensor,
             kl_weight: float = 1.0) -> torch.Tensor:
    """Batch mean of ||x - x_hat||^2 + kl_weight * KL."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def train_vae(model: VAE, x_train: torch.Tensor, *, epochs: int = 60, batch_size: int = 64, lr: float = 1e-3,
              kl_weight: float = 1.0, device="cpu") -> list[float]:
    """Like ``train_autoencoder``, with ``vae_loss``. Returns the mean loss of each epoch."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## Try it
#
# Compare your autoencoder with PCA, the best *linear* autoencoder with the same code size,
# check that the denoiser denoises, and that anomaly scores are higher for noise than for digits.
# This cell is tagged `skip` and sits under `if __name__ == "__main__":`, so the grader never
# runs it.

# %% tags=["skip"]
if __name__ == "__main__":
    torch.manual_seed(0)
    x_train, x_test = load_digits_split()

    model = Autoencoder(64, 8)
    losses = train_autoencoder(model, x_train, epochs=30)
    with torch.no_grad():
        test_mse = ((model(x_test) - x_test) ** 2).mean().item()
    print(f"loss {losses[0]:.2f} -> {losses[-1]:.2f}; test MSE per pixel {test_mse:.4f}, "
          f"PCA(8) {pca_baseline_mse(x_train, x_test, 8):.4f}, mean image {pca_baseline_mse(x_train, x_test, 0):.4f}")

    noise = ood_inputs(len(x_test), "noise")
    scores = anomaly_scores(model, torch.cat([x_test, noise]))
    print(f"anomaly score: digits {scores[:len(x_test)].mean():.2f}, noise {scores[len(x_test):].mean():.2f}")

    denoiser = Autoencoder(64, 32)
    train_autoencoder(denoiser, x_train, epochs=30, noise_std=0.5)
    noisy = add_noise(x_test, 0.5)
    with torch.no_grad():
        denoised_mse = ((denoiser(noisy) - x_test) ** 2).mean().item()
    print(f"noisy digits MSE {((noisy - x_test) ** 2).mean():.4f}, denoised {denoised_mse:.4f}")

    vae = VAE(64, 8)
    train_vae(vae, x_train, epochs=30, kl_weight=0.1)
    with torch.no_grad():
        mu, rho = vae.encode(x_test)
        vae_mse = ((vae.decode(mu) - x_test) ** 2).mean().item()
        samples = vae.decode(torch.randn(16, 8))  # new digits, decoded from the prior
    print(f"VAE test MSE from the posterior mean {vae_mse:.4f}; samples {tuple(samples.shape)}")
