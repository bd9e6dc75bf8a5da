# %% [markdown]
# # Practical 2: Autoencoders
#
# An MLP autoencoder on 8x8 digits, a denoising autoencoder, anomaly detection with the
# reconstruction error, and a variational autoencoder (VAE).
#
# Experiments live under `if __name__ == "__main__":` so the grader can import this file.

# %%
import torch
from torch import nn

from assignments.autoencoder.data import load_digits_split, ood_inputs, pca_baseline_mse


# %% [markdown]
# ## 1. An MLP autoencoder
#
# encoder: Linear -> ReLU -> Linear (R^d -> R^m); decoder: Linear -> ReLU -> Linear -> Sigmoid
# (R^m -> R^d). The decoder only ever sees the code z.


# %%
class Encoder(nn.Module):
    """Linear -> ReLU -> Linear, from R^d to R^out_dim."""

    def __init__(self, input_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Decoder(nn.Module):
    """Linear -> ReLU -> Linear -> Sigmoid, from R^m to R^d (values in [0, 1])."""

    def __init__(self, latent_dim: int, hidden_dim: int, output_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(latent_dim, hidden_dim)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden_dim, output_dim)
        self.out = nn.Sigmoid()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.fc2(self.act(self.fc1(z))))


class Autoencoder(nn.Module):
    def __init__(self, input_dim: int, latent_dim: int, hidden_dim: int = 128):
        super().__init__()
        if not latent_dim < input_dim:
            raise ValueError(f"latent_dim ({latent_dim}) must be smaller than input_dim ({input_dim}): "
                             "without a bottleneck the autoencoder can learn the identity")
        self.input_dim = input_dim
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
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
# The loss: squared L2 norm of the error of each sample, averaged over the batch.


# %%
def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """E ||x - x_hat||^2: squared error summed over the features, averaged over the batch (0-d tensor)."""
    squared_error = (x - x_hat) ** 2
    per_sample = squared_error.reshape(squared_error.shape[0], -1).sum(dim=1)
    return per_sample.mean()


# %% [markdown]
# ## 2. Training, and a denoising autoencoder


# %%
def add_noise(x: torch.Tensor, noise_std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + N(0, noise_std^2) noise, clamped to [0, 1]. ``generator`` (optional) makes the noise reproducible."""
    if generator is None:
        noise = torch.randn(x.shape, dtype=x.dtype, device=x.device)
    else:
        # draw on the generator's device, then move next to x
        noise = torch.randn(x.shape, dtype=x.dtype, device=generator.device, generator=generator).to(x.device)
    return torch.clamp(x + noise_std * noise, 0.0, 1.0)


def train_autoencoder(model: nn.Module, x_train: torch.Tensor, *, epochs: int = 60, batch_size: int = 64,
                      lr: float = 1e-3, noise_std: float = 0.0, device="cpu") -> list[float]:
    """Train with Adam on shuffled mini-batches; return the mean loss of each epoch.

    With ``noise_std > 0`` the inputs are corrupted with ``add_noise`` and the targets stay clean.
    """
    device = torch.device(device)
    model.to(device)
    x_train = x_train.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n = x_train.shape[0]

    epoch_losses = []
    for epoch in range(epochs):
        model.train()
        permutation = torch.randperm(n, device=device)
        running_loss = 0.0
        for start in range(0, n, batch_size):
            indices = permutation[start:start + batch_size]
            target = x_train[indices]
            inputs = add_noise(target, noise_std) if noise_std > 0 else target

            x_hat = model(inputs)
            loss = reconstruction_loss(x_hat, target)

            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

            running_loss += loss.item() * len(indices)
        epoch_losses.append(running_loss / n)

    model.eval()
    return epoch_losses


# %% [markdown]
# ## 3. Anomaly detection


# %%
@torch.no_grad()
def anomaly_scores(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One score per input, shape (N,): ||x - model(x)||^2. Higher means more anomalous."""
    model.eval()
    parameter = next(model.parameters(), None)
    model_device = parameter.device if parameter is not None else x.device
    inputs = x.to(model_device)
    x_hat = model(inputs)
    scores = ((inputs - x_hat) ** 2).reshape(inputs.shape[0], -1).sum(dim=1)
    return scores.to(x.device)


# %% [markdown]
# ## 4. A variational autoencoder


# %%
def reparameterize(mu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """A differentiable sample z = mu + exp(rho / 2) * eps of N(mu, exp(rho)), eps ~ N(0, I)."""
    sigma = torch.exp(rho / 2)
    eps = torch.randn_like(sigma)
    return mu + sigma * eps


def kl_divergence(mu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(rho)) || N(0, I)) for each sample: shape (B,)."""
    return 0.5 * (mu ** 2 + torch.exp(rho) - 1.0 - rho).sum(dim=1)


class VAE(nn.Module):
    def __init__(self, input_dim: int, latent_dim: int, hidden_dim: int = 128):
        super().__init__()
        self.input_dim = input_dim
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
        # the encoder outputs 2m numbers: mu (first m), rho = log sigma^2 (last m)
        self.encoder = Encoder(input_dim, hidden_dim, 2 * latent_dim)
        self.decoder = Decoder(latent_dim, hidden_dim, input_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, input_dim) -> (mu, rho), each (B, latent_dim)."""
        h = self.encoder(x)
        mu = h[:, :self.latent_dim]
        rho = h[:, self.latent_dim:]
        return mu, rho

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, input_dim), values in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (x_hat, mu, rho), with x_hat decoded from a sample of q(z | x)."""
        mu, rho = self.encode(x)
        z = reparameterize(mu, rho)
        x_hat = self.decode(z)
        return x_hat, mu, rho


def vae_loss(x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, rho: torch.Tensor,
             kl_weight: float = 1.0) -> torch.Tensor:
    """Batch mean of ||x - x_hat||^2 + kl_weight * KL."""
    squared_error = ((x - x_hat) ** 2).reshape(x.shape[0], -1).sum(dim=1)
    return (squared_error + kl_weight * kl_divergence(mu, rho)).mean()


def train_vae(model: VAE, x_train: torch.Tensor, *, epochs: int = 60, batch_size: int = 64, lr: float = 1e-3,
              kl_weight: float = 1.0, device="cpu") -> list[float]:
    """Like ``train_autoencoder``, with ``vae_loss``. Returns the mean loss of each epoch."""
    device = torch.device(device)
    model.to(device)
    x_train = x_train.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n = x_train.shape[0]

    epoch_losses = []
    for epoch in range(epochs):
        model.train()
        permutation = torch.randperm(n, device=device)
        running_loss = 0.0
        for start in range(0, n, batch_size):
            indices = permutation[start:start + batch_size]
            x = x_train[indices]

            x_hat, mu, rho = model(x)
            loss = vae_loss(x, x_hat, mu, rho, kl_weight=kl_weight)

            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

            running_loss += loss.item() * len(indices)
        epoch_losses.append(running_loss / n)

    model.eval()
    return epoch_losses


# %% [markdown]
# ## Try it (not run by the grader)

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

    for kind in ("noise", "inverted", "shuffled"):
        ood = ood_inputs(len(x_test), kind)
        scores = anomaly_scores(model, torch.cat([x_test, ood]))
        print(f"anomaly score: digits {scores[:len(x_test)].mean():.2f}, {kind} {scores[len(x_test):].mean():.2f}")

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
