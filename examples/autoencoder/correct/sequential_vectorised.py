"""Practical 2: Autoencoders -- autoencoder, denoising, anomaly detection and a VAE.

Compact version: nn.Sequential models, a DataLoader for the mini-batches and one shared
training loop for the autoencoder and the VAE.
"""

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from assignments.autoencoder.data import load_digits_split, ood_inputs, pca_baseline_mse


def _mlp(in_dim: int, hidden_dim: int, out_dim: int, *, sigmoid: bool = False) -> nn.Sequential:
    layers = [nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim)]
    if sigmoid:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def _per_sample_sq_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """||x - x_hat||^2 for every sample, shape (B,)."""
    return F.mse_loss(x_hat, x, reduction="none").flatten(start_dim=1).sum(dim=1)


# ---------------------------------------------------------------------------------------------
# 1. Autoencoder
# ---------------------------------------------------------------------------------------------
class Autoencoder(nn.Module):
    def __init__(self, input_dim: int, latent_dim: int, hidden_dim: int = 128):
        super().__init__()
        if latent_dim >= input_dim:
            raise ValueError(f"need a bottleneck: latent_dim={latent_dim} must be < input_dim={input_dim}")
        self.encoder = _mlp(input_dim, hidden_dim, latent_dim)
        self.decoder = _mlp(latent_dim, hidden_dim, input_dim, sigmoid=True)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) -> (B, latent_dim)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, input_dim), values in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) -> its reconstruction (B, input_dim)."""
        return self.decode(self.encode(x))


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """E ||x - x_hat||^2: squared error summed over the features, averaged over the batch (0-d tensor)."""
    return F.mse_loss(x_hat, x, reduction="sum") / x.shape[0]


# ---------------------------------------------------------------------------------------------
# 2. Training and denoising
# ---------------------------------------------------------------------------------------------
def add_noise(x: torch.Tensor, noise_std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + N(0, noise_std^2) noise, clamped to [0, 1]. ``generator`` (optional) makes the noise reproducible."""
    where = x.device if generator is None else generator.device
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=where).to(x.device)
    return (x + noise_std * eps).clamp(0.0, 1.0)


def _fit(model: nn.Module, x_train: torch.Tensor, batch_loss: Callable[[torch.Tensor], torch.Tensor], *,
         epochs: int, batch_size: int, lr: float, device) -> list[float]:
    """Adam on shuffled mini-batches of ``x_train``; ``batch_loss(batch)`` gives the loss of one batch.
    Returns the mean loss of each epoch (batches weighted by their size); leaves the model in eval mode."""
    device = torch.device(device)
    model.to(device)
    loader = DataLoader(TensorDataset(x_train), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(epochs):
        model.train()
        total, count = 0.0, 0
        for (batch,) in loader:
            batch = batch.to(device)
            loss = batch_loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * batch.shape[0]
            count += batch.shape[0]
        history.append(total / count)
    model.eval()
    return history


def train_autoencoder(model: nn.Module, x_train: torch.Tensor, *, epochs: int = 60, batch_size: int = 64,
                      lr: float = 1e-3, noise_std: float = 0.0, device="cpu") -> list[float]:
    """Train with Adam on shuffled mini-batches; return the mean loss of each epoch.

    With ``noise_std > 0`` the inputs are corrupted with ``add_noise`` and the targets stay clean.
    """
    def batch_loss(clean: torch.Tensor) -> torch.Tensor:
        inputs = add_noise(clean, noise_std) if noise_std > 0 else clean
        return reconstruction_loss(model(inputs), clean)

    return _fit(model, x_train, batch_loss, epochs=epochs, batch_size=batch_size, lr=lr, device=device)


# ---------------------------------------------------------------------------------------------
# 3. Anomaly detection
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def anomaly_scores(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One score per input, shape (N,): ||x - model(x)||^2. Higher means more anomalous."""
    model.eval()
    device = next(model.parameters()).device
    x_dev = x.to(device)
    return _per_sample_sq_error(model(x_dev), x_dev).to(x.device)


# ---------------------------------------------------------------------------------------------
# 4. VAE
# ---------------------------------------------------------------------------------------------
def reparameterize(mu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """A differentiable sample z = mu + exp(rho / 2) * eps of N(mu, exp(rho)), eps ~ N(0, I)."""
    return mu + torch.exp(0.5 * rho) * torch.randn_like(mu)


def kl_divergence(mu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(rho)) || N(0, I)) for each sample: shape (B,)."""
    return 0.5 * torch.sum(mu.pow(2) + rho.exp() - 1 - rho, dim=-1)


class VAE(nn.Module):
    def __init__(self, input_dim: int, latent_dim: int, hidden_dim: int = 128):
        super().__init__()
        self.encoder = _mlp(input_dim, hidden_dim, 2 * latent_dim)  # [mu | rho]
        self.decoder = _mlp(latent_dim, hidden_dim, input_dim, sigmoid=True)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, input_dim) -> (mu, rho), each (B, latent_dim)."""
        mu, rho = self.encoder(x).chunk(2, dim=-1)
        return mu, rho

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, input_dim), values in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (x_hat, mu, rho), with x_hat decoded from a sample of q(z | x)."""
        mu, rho = self.encode(x)
        return self.decode(reparameterize(mu, rho)), mu, rho


def vae_loss(x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, rho: torch.Tensor,
             kl_weight: float = 1.0) -> torch.Tensor:
    """Batch mean of ||x - x_hat||^2 + kl_weight * KL."""
    return torch.mean(_per_sample_sq_error(x_hat, x) + kl_weight * kl_divergence(mu, rho))


def train_vae(model: VAE, x_train: torch.Tensor, *, epochs: int = 60, batch_size: int = 64, lr: float = 1e-3,
              kl_weight: float = 1.0, device="cpu") -> list[float]:
    """Like ``train_autoencoder``, with ``vae_loss``. Returns the mean loss of each epoch."""
    def batch_loss(x: torch.Tensor) -> torch.Tensor:
        x_hat, mu, rho = model(x)
        return vae_loss(x, x_hat, mu, rho, kl_weight=kl_weight)

    return _fit(model, x_train, batch_loss, epochs=epochs, batch_size=batch_size, lr=lr, device=device)


if __name__ == "__main__":
    torch.manual_seed(0)
    x_train, x_test = load_digits_split()
    mean_mse = pca_baseline_mse(x_train, x_test, 0)

    ae = Autoencoder(64, 8)
    hist = train_autoencoder(ae, x_train, epochs=30)
    with torch.no_grad():
        mse = F.mse_loss(ae(x_test), x_test).item()
    print(f"AE: loss {hist[0]:.2f} -> {hist[-1]:.2f}, test MSE {mse:.4f} "
          f"(PCA(8) {pca_baseline_mse(x_train, x_test, 8):.4f}, mean image {mean_mse:.4f})")

    for kind in ("noise", "inverted", "shuffled"):
        s = anomaly_scores(ae, torch.cat([x_test, ood_inputs(len(x_test), kind)]))
        n = len(x_test)
        auroc = (s[n:, None] > s[None, :n]).float().mean().item()
        print(f"anomaly {kind}: AUROC {auroc:.3f}")

    dae = Autoencoder(64, 32)
    train_autoencoder(dae, x_train, epochs=30, noise_std=0.5)
    noisy = add_noise(x_test, 0.5)
    with torch.no_grad():
        print(f"DAE: noisy {F.mse_loss(noisy, x_test):.4f} -> denoised {F.mse_loss(dae(noisy), x_test):.4f}")

    vae = VAE(64, 8)
    train_vae(vae, x_train, epochs=30, kl_weight=0.1)
    with torch.no_grad():
        mu, _ = vae.encode(x_test)
        print(f"VAE: MSE from posterior mean {F.mse_loss(vae.decode(mu), x_test):.4f} vs mean image {mean_mse:.4f}")
