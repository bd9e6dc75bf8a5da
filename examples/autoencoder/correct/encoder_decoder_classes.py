# Written from the handout and the template alone (a helper session that never saw the reference),
# after the hidden tests moved to jittered digits: explicit Encoder and Decoder classes.
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
class Encoder(nn.Module):
    """Linear -> ReLU -> Linear: R^input_dim -> R^out_dim."""

    def __init__(self, input_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.hidden = nn.Linear(input_dim, hidden_dim)
        self.activation = nn.ReLU()
        self.out = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.activation(self.hidden(x)))


class Decoder(nn.Module):
    """Linear -> ReLU -> Linear -> Sigmoid: R^latent_dim -> [0, 1]^output_dim."""

    def __init__(self, latent_dim: int, hidden_dim: int, output_dim: int):
        super().__init__()
        self.hidden = nn.Linear(latent_dim, hidden_dim)
        self.activation = nn.ReLU()
        self.out = nn.Linear(hidden_dim, output_dim)
        self.squash = nn.Sigmoid()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.squash(self.out(self.activation(self.hidden(z))))


def _check_dims(input_dim: int, latent_dim: int, hidden_dim: int) -> None:
    if input_dim < 1 or latent_dim < 1 or hidden_dim < 1:
        raise ValueError(f"dimensions must be positive, got input_dim={input_dim}, "
                         f"latent_dim={latent_dim}, hidden_dim={hidden_dim}")
    if latent_dim >= input_dim:
        raise ValueError(f"latent_dim ({latent_dim}) must be smaller than input_dim ({input_dim}): "
                         "without a bottleneck the autoencoder can learn the identity")


class Autoencoder(nn.Module):
    def __init__(self, input_dim: int, latent_dim: int, hidden_dim: int = 128):
        super().__init__()
        _check_dims(input_dim, latent_dim, hidden_dim)
        self.input_dim = input_dim
        self.latent_dim = latent_dim
        self.encoder = Encoder(input_dim, hidden_dim, latent_dim)
        self.decoder = Decoder(latent_dim, hidden_dim, input_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) -> (B, latent_dim)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, input_dim), values in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) -> its reconstruction (B, input_dim)."""
        return self.decode(self.encode(x))


# %% [markdown]
# The loss is the squared L2 norm of the error of each sample, averaged over the batch:
# E ||x - x_hat||^2 (sum over the features, mean over the batch).


# %%
def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """E ||x - x_hat||^2: squared error summed over the features, averaged over the batch (0-d tensor)."""
    if x_hat.shape != x.shape:
        raise ValueError(f"x_hat and x must have the same shape, got {tuple(x_hat.shape)} and {tuple(x.shape)}")
    squared_error = (x - x_hat).pow(2)
    return squared_error.reshape(squared_error.shape[0], -1).sum(dim=1).mean()


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
    if noise_std < 0:
        raise ValueError(f"noise_std must be non-negative, got {noise_std}")
    if noise_std == 0:
        return x.clone()
    noise_device = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, device=noise_device, dtype=x.dtype)
    return (x + noise_std * noise.to(x.device)).clamp(0.0, 1.0)


def _run_epochs(model: nn.Module, x_train: torch.Tensor, batch_loss, *, epochs: int, batch_size: int,
                lr: float, device) -> list[float]:
    """Shared Adam loop: ``batch_loss(model, batch)`` gives the mean loss of a batch.

    Returns the mean loss over the training samples of each epoch (each batch weighted by its size),
    and leaves the model in eval mode.
    """
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"need epochs >= 0 and batch_size >= 1, got {epochs} and {batch_size}")
    model.to(device)
    x_train = x_train.to(device)
    n = x_train.shape[0]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history: list[float] = []
    model.train()
    try:
        for _ in range(epochs):
            order = torch.randperm(n).to(device)
            total = 0.0
            for start in range(0, n, batch_size):
                batch = x_train[order[start:start + batch_size]]
                loss = batch_loss(model, batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * batch.shape[0]
            history.append(total / n)
    finally:
        model.eval()
    return history


def train_autoencoder(model: nn.Module, x_train: torch.Tensor, *, epochs: int = 60, batch_size: int = 64,
                      lr: float = 1e-3, noise_std: float = 0.0, device="cpu") -> list[float]:
    """Train with Adam on shuffled mini-batches; return the mean loss of each epoch.

    With ``noise_std > 0`` the inputs are corrupted with ``add_noise`` and the targets stay clean.
    """
    def batch_loss(net: nn.Module, clean: torch.Tensor) -> torch.Tensor:
        inputs = add_noise(clean, noise_std) if noise_std > 0 else clean
        return reconstruction_loss(net(inputs), clean)

    return _run_epochs(model, x_train, batch_loss, epochs=epochs, batch_size=batch_size, lr=lr, device=device)


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
    model.eval()
    parameter = next(model.parameters(), None)
    inputs = x if parameter is None else x.to(parameter.device)
    errors = (inputs - model(inputs)).pow(2).reshape(inputs.shape[0], -1).sum(dim=1)
    return errors.to(x.device)


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
    sigma = torch.exp(0.5 * rho)
    eps = torch.randn_like(sigma)
    return mu + sigma * eps


def kl_divergence(mu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(rho)) || N(0, I)) for each sample: shape (B,)."""
    return 0.5 * (mu.pow(2) + rho.exp() - 1.0 - rho).sum(dim=-1)


class VAE(nn.Module):
    def __init__(self, input_dim: int, latent_dim: int, hidden_dim: int = 128):
        super().__init__()
        _check_dims(input_dim, latent_dim, hidden_dim)
        self.input_dim = input_dim
        self.latent_dim = latent_dim
        # The encoder outputs 2m numbers: mu (first m), then rho = log sigma^2 (last m).
        self.encoder = Encoder(input_dim, hidden_dim, 2 * latent_dim)
        self.decoder = Decoder(latent_dim, hidden_dim, input_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, input_dim) -> (mu, rho), each (B, latent_dim)."""
        params = self.encoder(x)
        mu, rho = params[..., :self.latent_dim], params[..., self.latent_dim:]
        return mu, rho

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, input_dim), values in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (x_hat, mu, rho), with x_hat decoded from a sample of q(z | x)."""
        mu, rho = self.encode(x)
        z = reparameterize(mu, rho)
        return self.decode(z), mu, rho


def vae_loss(x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, rho: torch.Tensor,
             kl_weight: float = 1.0) -> torch.Tensor:
    """Batch mean of ||x - x_hat||^2 + kl_weight * KL."""
    squared_error = (x - x_hat).pow(2).reshape(x.shape[0], -1).sum(dim=1)
    return (squared_error + kl_weight * kl_divergence(mu, rho)).mean()


def train_vae(model: VAE, x_train: torch.Tensor, *, epochs: int = 60, batch_size: int = 64, lr: float = 1e-3,
              kl_weight: float = 1.0, device="cpu") -> list[float]:
    """Like ``train_autoencoder``, with ``vae_loss``. Returns the mean loss of each epoch."""
    def batch_loss(net: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        x_hat, mu, rho = net(batch)
        return vae_loss(batch, x_hat, mu, rho, kl_weight=kl_weight)

    return _run_epochs(model, x_train, batch_loss, epochs=epochs, batch_size=batch_size, lr=lr, device=device)


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
