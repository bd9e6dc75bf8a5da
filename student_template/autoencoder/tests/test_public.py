"""Public tests of the autoencoder practical: students get this file and run it with `pytest`.

The grader runs the same tests (and hidden ones) with your code in a separate process: `sub` is
your module, and what your functions return comes back as plain values.
"""

import pytest
import torch

from autograder.checks import expect_close, expect_raises, expect_scalar_close, expect_tensor


@pytest.mark.points(2)
@pytest.mark.public
def test_autoencoder_shapes(sub, device):
    """Autoencoder(64, 8): encode gives (B, 8) codes, decode and forward give (B, 64) in [0, 1]."""
    model = sub.Autoencoder(64, 8)
    model.to(device)
    x = torch.rand(5, 64, device=device)
    z = expect_tensor(model.encode(x), "model.encode(x) for x of shape (5, 64)", shape=(5, 8))
    x_hat = expect_tensor(model.decode(z), "model.decode(z) for z of shape (5, 8)", shape=(5, 64))
    expect_tensor(model(x), "model(x) for x of shape (5, 64)", shape=(5, 64))
    assert x_hat.min() >= 0 and x_hat.max() <= 1, (
        f"Reconstructions should lie in [0, 1] like the pixels (end the decoder with a Sigmoid); "
        f"got values in [{x_hat.min().item():.3f}, {x_hat.max().item():.3f}]."
    )


@pytest.mark.points(1)
@pytest.mark.public
def test_autoencoder_requires_a_bottleneck(sub):
    """Autoencoder(d, m) refuses m >= d with a ValueError: without a bottleneck it learns nothing."""
    expect_raises("ValueError", lambda: sub.Autoencoder(16, 16), "Autoencoder(16, 16)")
    expect_raises("ValueError", lambda: sub.Autoencoder(16, 32), "Autoencoder(16, 32)")


@pytest.mark.points(2)
@pytest.mark.public
def test_reconstruction_loss_value(sub, device):
    """reconstruction_loss(x_hat, x) is the batch mean of the squared L2 norm ||x - x_hat||^2."""
    x = torch.rand(7, 10, device=device)
    x_hat = torch.rand(7, 10, device=device)
    expected = ((x - x_hat) ** 2).sum(dim=1).mean()
    expect_scalar_close(sub.reconstruction_loss(x_hat, x), expected.item(), "reconstruction_loss(x_hat, x)",
                        rtol=1e-5, hint="Sum the squared errors over the features, then average over the batch.")


@pytest.mark.points(1)
@pytest.mark.public
def test_add_noise(sub, device):
    """add_noise keeps the shape, stays in [0, 1] (black and white pixels under strong noise are
    clamped there), adds noise of the requested strength, and leaves the input alone when
    noise_std is 0."""
    x = torch.full((200, 64), 0.5, device=device)
    noisy = expect_tensor(sub.add_noise(x, 0.1), "add_noise(x, 0.1)", shape=(200, 64))
    assert noisy.min() >= 0 and noisy.max() <= 1, "add_noise must clamp its result to [0, 1]."
    std = (noisy - x).std().item()
    assert 0.09 < std < 0.11, f"with noise_std=0.1 on pixels at 0.5 the noise should have std ~0.1; got {std:.4f}."
    expect_close(sub.add_noise(x, 0.0), x, "add_noise(x, 0.0)")
    # Black and white pixels with strong noise: about half of each must be clamped to exactly 0 or 1.
    extremes = torch.cat([torch.zeros(100, 64, device=device), torch.ones(100, 64, device=device)])
    noisy = expect_tensor(sub.add_noise(extremes, 0.5), "add_noise(x, 0.5) on black and white pixels",
                          shape=(200, 64))
    assert noisy.min() >= 0 and noisy.max() <= 1, "add_noise must clamp its result to [0, 1]."
    at_zero, at_one = (noisy[:100] == 0).float().mean().item(), (noisy[100:] == 1).float().mean().item()
    assert 0.4 < at_zero < 0.6 and 0.4 < at_one < 0.6, (
        f"with noise_std=0.5, about half of the black pixels should stay clamped at 0 and half of the white ones "
        f"at 1; got {at_zero:.2f} and {at_one:.2f}. Clamp x + noise to [0, 1].")


@pytest.mark.points(2)
@pytest.mark.public
def test_kl_divergence_value(sub, device):
    """kl_divergence(mu, rho) is KL(N(mu, exp(rho)) || N(0, I)) per sample, shape (B,)."""
    mu = torch.randn(6, 4, dtype=torch.float64, device=device)
    rho = torch.randn(6, 4, dtype=torch.float64, device=device)
    posterior = torch.distributions.Normal(mu, torch.exp(0.5 * rho))
    prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(posterior, prior).sum(dim=1)
    expect_close(sub.kl_divergence(mu, rho), expected, "kl_divergence(mu, rho)", rtol=1e-6, atol=1e-9,
                 hint="Expected 1/2 sum_j (mu_j^2 + exp(rho_j) - 1 - rho_j) for each sample: rho is the "
                      "log-variance, and the sum is over the latent dimensions only.",
                 known_mistakes={"taking rho as the standard deviation (sigma = exp(rho))":
                                 0.5 * (mu ** 2 + (2 * rho).exp() - 1 - 2 * rho).sum(dim=1),
                                 "averaging over the latent dimensions instead of summing":
                                 expected / mu.shape[1]})
    zero = sub.kl_divergence(torch.zeros(3, 5, device=device), torch.zeros(3, 5, device=device))
    expect_close(zero, torch.zeros(3, device=device), "kl_divergence(0, 0)")


@pytest.mark.points(2)
@pytest.mark.public
def test_reparameterize_statistics(sub, device):
    """reparameterize(mu, rho) draws z ~ N(mu, exp(rho)): the standard deviation is exp(rho / 2)."""
    n = 20000
    mu = torch.tensor([[-1.0, 0.0, 2.0]], device=device).expand(n, 3).contiguous()
    rho = torch.tensor([[0.0, 1.0, -2.0]], device=device).expand(n, 3).contiguous()
    z = expect_tensor(sub.reparameterize(mu, rho), "reparameterize(mu, rho)", shape=(n, 3))
    # With 20000 draws the sample mean is within 4 standard errors (<= 0.05) of the truth with
    # probability > 0.9999; exp(rho) instead of exp(rho / 2) moves the std by >= 0.25.
    expect_close(z.mean(dim=0), mu[0], "the mean of 20000 samples", atol=0.05, rtol=0)
    expect_close(z.std(dim=0), torch.exp(0.5 * rho[0]), "the standard deviation of 20000 samples", atol=0.05, rtol=0,
                 hint="Expected sigma = exp(rho / 2): rho is the log-variance.",
                 known_mistakes={"sigma = exp(rho) (the course notes' erratum)": torch.exp(rho[0])})
