"""Hidden tests of the autoencoder practical. Students see their feedback, never this code.

Thresholds on training outcomes are set with a wide margin from measurements of the reference
solution over 10 seeds (see the comments next to each constant),
so a correct submission passes whatever the seed and a model that did not learn fails.
"""

import pytest
import torch
from sklearn.metrics import roc_auc_score

from assignments.autoencoder.data import jitter_digits, load_digits_split, ood_inputs, pca_baseline_mse
from autograder.checks import expect_close, expect_detached, expect_scalar, expect_scalar_close, expect_tensor

LATENT = 8
EPOCHS = 30  # the handout's budget for the training tests (a few seconds on a laptop CPU)
# The training tests run on jittered digits (see jittered_digits below). Measured with
# python -m assignments.autoencoder.calibrate --seeds 0-9 on the reference and on two independent
# correct solutions (examples/autoencoder/correct), 30 runs ("correct"), and --seeds 0-4 on three
# variants of the reference (two hidden layers, Tanh, LeakyReLU with two hidden layers), 15 runs
# ("variants"). "lookup" returns the nearest of the 1797 course digits: what a submission that
# memorises the importable data does.
# Test MSE / PCA(8) MSE: correct 0.797-0.953, variants 0.858-1.205; lookup 2.149-2.290; an
# untrained model ~7. (Jittered digits are smoother, so PCA does relatively better on them than
# on the originals: the two-hidden-layer variant is at 0.83-0.92 there.)
MAX_MSE_OVER_PCA = 1.5
# Denoising uses a wide code (32): a narrow bottleneck denoises by itself, which would hide the
# difference between training on noisy inputs and not. Denoised MSE / noisy MSE: correct
# 0.210-0.218, variants 0.215-0.240; noise_std ignored 0.340-0.744; lookup 0.504-0.535.
DENOISING_LATENT = 32
NOISE_STD = 0.5
MAX_DENOISED_RATIO = 0.3
MIN_AUROC = 0.9  # correct: 1.000 on every out-of-distribution kind and seed; chance is 0.5
VAE_KL_WEIGHT = 0.1  # with kl_weight=1 the KL term dominates at this scale and the VAE collapses
# Posterior-mean reconstruction MSE / mean-image MSE: correct 0.344-0.383, variants 0.348-0.453;
# lookup 0.602-0.628 (spread 0.008 around 0.618).
VAE_MAX_MSE_OVER_MEAN_ONLY = 0.55

# The hidden tests train and evaluate on jittered copies of the digits (see jitter_digits), drawn
# with the grading seed and this secret. A submission can import the digits but cannot read this
# file (the sandbox hides grading_tests/), so it cannot rebuild the images it is evaluated on: a
# "model" that memorises the course's data and looks up the nearest image fails the training
# tests (tests/test_memorisation.py; python -m assignments.autoencoder.calibrate measures it).
_JITTER_SECRET = 0x5D1C_E0A7


def jittered_digits(grading_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training and test digits the hidden tests use: copies no submission can reproduce."""
    x_train, x_test = load_digits_split()
    base = _JITTER_SECRET + 1_000_003 * grading_seed
    return jitter_digits(x_train, base), jitter_digits(x_test, base + 1)


@pytest.fixture
def digits(device, grading_seed):
    x_train, x_test = jittered_digits(grading_seed)
    return x_train.to(device), x_test.to(device)


def _trained_autoencoder(sub, x_train, device, noise_std=0.0, latent=LATENT):
    model = sub.Autoencoder(64, latent)
    losses = sub.train_autoencoder(model, x_train, epochs=EPOCHS, noise_std=noise_std, device=str(device))
    if not (isinstance(losses, list) and len(losses) == EPOCHS):
        raise AssertionError(f"train_autoencoder should return a list of {EPOCHS} epoch losses, got "
                             f"{type(losses).__name__} of length {len(losses) if hasattr(losses, '__len__') else '?'}.")
    # The mode train_autoencoder leaves is graded by test_training_leaves_the_model_in_eval_mode
    # alone; here the model is evaluated as the handout says it is left, so that test is the only
    # one a forgotten model.eval() costs.
    model.eval()
    return model, losses


@pytest.mark.points(1)
@pytest.mark.hidden
def test_training_leaves_the_model_in_eval_mode(sub, worker, device, digits):
    """train_autoencoder and train_vae leave the model (and every submodule) in eval mode, as the
    handout says, even when it was handed over in train mode."""
    x_train, _ = digits
    for name, model, train in (("train_autoencoder", sub.Autoencoder(64, LATENT), sub.train_autoencoder),
                               ("train_vae", sub.VAE(64, LATENT), sub.train_vae)):
        model.train()
        train(model, x_train[:128], epochs=1, device=str(device))
        left_training = worker.module_state(model).in_train_mode()
        assert not left_training, (
            f"after {name} the model is still in train mode ({', '.join(left_training[:5])}): call model.eval() "
            "before returning.")


def _mode_dependent(model, x) -> bool:
    """Whether the model computes differently in train and eval mode (dropout, batch norm): then
    its training losses cannot be recomputed exactly from the eval-mode model."""
    model.train()
    in_train = model(x)
    model.eval()
    return not torch.equal(in_train, model(x))


@pytest.mark.points(1)
@pytest.mark.hidden
def test_training_returns_the_mean_loss_of_each_epoch(sub, device, digits):
    """With lr=0 (Adam then leaves the model as it is), each value train_autoencoder returns is
    the epoch's mean training loss, which is then your reconstruction_loss of the unchanged model
    on the training set (192 digits in 4 batches of 48). train_vae's values (random, through eps)
    are within 2% of the expected value of your vae_loss."""
    x_train, _ = digits
    x = x_train[:192]
    model = sub.Autoencoder(64, LATENT)
    losses = sub.train_autoencoder(model, x, epochs=2, batch_size=48, lr=0.0, device=str(device))
    assert isinstance(losses, list) and len(losses) == 2, "train_autoencoder(..., epochs=2) should return 2 losses."
    model.eval()
    x_hat = expect_tensor(model(x), "model(x_train)", shape=tuple(x.shape))
    # With your own reconstruction_loss (graded by its own tests): this test grades the bookkeeping.
    expected = expect_scalar(sub.reconstruction_loss(x_hat, x), "reconstruction_loss(model(x_train), x_train)")
    # Reference: equal to ~1e-7 relative; a loss total started at 1 instead of 0, or one digit
    # skipped, is off by ~5e-4 relative.
    tolerance = 0.02 if _mode_dependent(model, x) else 1e-5
    for epoch, value in enumerate(losses):
        expect_scalar_close(value, expected, f"the loss train_autoencoder returns for epoch {epoch + 1} (with lr=0)",
                            rtol=tolerance, atol=0.0,
                            hint="each epoch's value is the mean of the loss over all training samples: sum "
                                 "loss.item() * batch size over the batches, divide by the number of samples.")

    vae = sub.VAE(64, LATENT)
    losses = sub.train_vae(vae, x, epochs=3, batch_size=48, lr=0.0, kl_weight=0.5, device=str(device))
    assert isinstance(losses, list) and len(losses) == 3, "train_vae(..., epochs=3) should return 3 losses."
    vae.train()
    draws = []
    for _ in range(50):  # the expected vae_loss (your own), averaged over the random eps
        x_hat, mu, rho = vae(x)
        draws.append(expect_scalar(sub.vae_loss(x, x_hat, mu, rho, 0.5), "vae_loss(x, *vae(x), 0.5)"))
    expected = sum(draws) / len(draws)
    # Reference, 5 seeds: within 0.41% of this estimate.
    for epoch, value in enumerate(losses):
        expect_scalar_close(value, expected, f"the loss train_vae returns for epoch {epoch + 1} (with lr=0)",
                            rtol=0.02, atol=0.0, hint="each epoch's value is the mean of vae_loss over all training "
                                                      "samples (weighted by batch size).")
    # One sample, one batch: the loop over batches must start at the first sample.
    single = sub.train_vae(sub.VAE(64, LATENT), x[:1], epochs=1, batch_size=1, lr=0.0, device=str(device))
    assert isinstance(single, list) and len(single) == 1 and expect_scalar(single[0], "train_vae on one sample") > 0, (
        f"train_vae on a single training sample returned {single}: one epoch, one batch, a positive loss expected "
        "(every sample must be used: batches start at index 0).")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_decoder_only_sees_the_code(sub, device):
    """The reconstruction is computed from the latent code alone: forward(x) == decode(encode(x)),
    with no path from the input to the output around the bottleneck and no hidden state."""
    model = sub.Autoencoder(64, LATENT)
    model.to(device)
    model.eval()
    x1, x2 = torch.rand(8, 64, device=device), torch.rand(8, 64, device=device)
    z1 = expect_tensor(model.encode(x1), "encode(x)", shape=(8, LATENT))
    model.encode(x2)  # an encoder that stashes its input would now hold x2
    expect_close(model.decode(z1), model(x1), "decode(encode(x)) compared with forward(x)", rtol=1e-4, atol=1e-5,
                 hint="forward must be decode(encode(x)), and decode may use only the code z.")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_reconstruction_loss_gradient_float64(sub, worker, device):
    """The gradient of reconstruction_loss with respect to x_hat, in float64, is 2 (x_hat - x) / B."""
    x = torch.rand(5, 9, dtype=torch.float64, device=device)
    x_hat = torch.rand(5, 9, dtype=torch.float64, device=device)
    loss, (grad,) = worker.vjp(sub.reconstruction_loss, x_hat, x, wrt=(0,))
    assert grad is not None, "reconstruction_loss does not depend on x_hat through autograd (is it detached?)."
    expect_close(grad, 2 * (x_hat - x) / 5, "d loss / d x_hat", rtol=1e-9, atol=1e-12,
                 hint="Compute the loss in the input's dtype, with differentiable torch operations.")


@pytest.mark.points(4)
@pytest.mark.hidden
@pytest.mark.budget(40)
def test_training_reaches_pca_baseline(sub, device, digits, attach_images):
    """Training Autoencoder(64, 8) with train_autoencoder for the handout's epochs reaches a test
    MSE within 1.5 times that of PCA with 8 components (the best linear autoencoder)."""
    x_train, x_test = digits
    model, losses = _trained_autoencoder(sub, x_train, device)
    assert losses[-1] < losses[0], f"the training loss should decrease; it went from {losses[0]:.4g} to {losses[-1]:.4g}."
    x_hat = expect_tensor(model(x_test), "model(x_test)", shape=tuple(x_test.shape))
    attach_images("test digits (top) and their reconstructions (bottom)",
                  torch.cat([x_test[:16], x_hat[:16].clamp(0, 1)]).view(-1, 8, 8), nrow=16)
    mse = ((x_hat - x_test) ** 2).mean().item()
    pca = pca_baseline_mse(x_train.cpu(), x_test.cpu(), LATENT)
    mean_only = pca_baseline_mse(x_train.cpu(), x_test.cpu(), 0)
    assert mse <= MAX_MSE_OVER_PCA * pca, (
        f"after training, the per-pixel test MSE is {mse:.4f}; it should be at most {MAX_MSE_OVER_PCA} x "
        f"{pca:.4f} (PCA with {LATENT} components). Predicting the mean image gives {mean_only:.4f}."
    )


@pytest.mark.points(2)
@pytest.mark.hidden
@pytest.mark.budget(40)
def test_denoising_beats_the_noisy_input(sub, device, digits):
    """A denoising Autoencoder(64, 32) trained with noise_std=0.5 brings noisy test digits at
    least 3.3 times closer (in MSE) to the clean digits than the noisy digits are (MSE ratio at
    most 0.3)."""
    x_train, x_test = digits
    model, _ = _trained_autoencoder(sub, x_train, device, noise_std=NOISE_STD, latent=DENOISING_LATENT)
    generator = torch.Generator().manual_seed(7)
    noise = torch.randn(x_test.shape, generator=generator).to(device)
    noisy = (x_test + NOISE_STD * noise).clamp(0, 1)
    denoised = expect_tensor(model(noisy), "model(noisy_x_test)", shape=tuple(x_test.shape))
    noisy_mse = ((noisy - x_test) ** 2).mean().item()
    denoised_mse = ((denoised - x_test) ** 2).mean().item()
    assert denoised_mse <= MAX_DENOISED_RATIO * noisy_mse, (
        f"the denoised digits have MSE {denoised_mse:.4f} to the clean digits, the noisy input {noisy_mse:.4f}; "
        f"the denoiser should at least reach {MAX_DENOISED_RATIO} x {noisy_mse:.4f}. Train on noisy inputs "
        "against clean targets."
    )


@pytest.mark.points(2)
@pytest.mark.hidden
@pytest.mark.budget(40)
def test_anomaly_scores_flag_out_of_distribution_inputs(sub, device, digits):
    """anomaly_scores gives one score per input, detached (computed without building a graph),
    higher for out-of-distribution inputs (noise, inverted digits) than for test digits: AUROC at
    least 0.9 for each kind."""
    x_train, x_test = digits
    model, _ = _trained_autoencoder(sub, x_train, device)
    for kind in ("noise", "inverted"):
        # The test digits the grader jittered, inverted; or uniform noise.
        ood = 1.0 - x_test if kind == "inverted" else ood_inputs(len(x_test), kind, seed=3).to(device)
        scores = expect_tensor(sub.anomaly_scores(model, torch.cat([x_test, ood])),
                               f"anomaly_scores on {2 * len(x_test)} inputs", shape=(2 * len(x_test),))
        expect_detached(scores, "the scores anomaly_scores returns")
        labels = [0] * len(x_test) + [1] * len(ood)
        auroc = roc_auc_score(labels, scores.double().cpu().numpy())
        assert auroc >= MIN_AUROC, (
            f"on '{kind}' inputs the anomaly scores reach an AUROC of {auroc:.3f} (0.5 is chance); expected at "
            f"least {MIN_AUROC}. The score should be the reconstruction error of each input, higher = more anomalous."
        )


@pytest.mark.points(1)
@pytest.mark.hidden
def test_anomaly_scores_are_the_reconstruction_errors(sub, device, digits):
    """anomaly_scores(model, x) is, per input, ||x - model(x)||^2: the squared error summed over
    the features (here on an untrained model in eval mode)."""
    _, x_test = digits
    model = sub.Autoencoder(64, LATENT)
    model.to(device)
    model.eval()
    x = x_test[:50]
    x_hat = expect_tensor(model(x), "model(x)", shape=tuple(x.shape))
    expected = ((x - x_hat) ** 2).sum(dim=1)
    scores = expect_tensor(sub.anomaly_scores(model, x), "anomaly_scores(model, x)", shape=(len(x),))
    expect_close(scores, expected, "anomaly_scores(model, x)", rtol=1e-4, atol=1e-6,
                 known_mistakes={"the mean over the features instead of the sum": expected / x.shape[1],
                                 "the norm, not its square": expected.sqrt()},
                 hint="the score of input i is sum_j (x_ij - model(x)_ij)^2.")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_reparameterize_gradients_flow(sub, worker, device):
    """Gradients flow through the sample z = mu + exp(rho / 2) * eps: dz/dmu = 1 and
    dz/drho = (z - mu) / 2."""
    mu = torch.randn(4, 3, dtype=torch.float64, device=device)
    rho = torch.randn(4, 3, dtype=torch.float64, device=device)
    z, (g_mu, g_rho) = worker.vjp(sub.reparameterize, mu, rho, wrt=(0, 1))
    assert g_mu is not None and g_rho is not None, (
        "the sample does not depend on mu and rho through autograd: use the reparameterisation trick "
        "(no torch.normal(mu, std), no .detach())."
    )
    expect_close(g_mu, torch.ones_like(mu), "d z / d mu", rtol=1e-9, atol=1e-12)
    expect_close(g_rho, 0.5 * (z - mu), "d z / d rho", rtol=1e-7, atol=1e-10,
                 hint="with sigma = exp(rho / 2), dz/drho = eps * sigma / 2.")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_vae_loss_value_and_gradients_float64(sub, worker, device):
    """vae_loss = mean over the batch of ||x - x_hat||^2 + kl_weight * KL; its value and its
    gradients with respect to x_hat, mu and rho match the reference in float64."""
    def reference(x, x_hat, mu, rho, kl_weight):
        kl = 0.5 * (mu ** 2 + rho.exp() - 1 - rho).sum(dim=1)
        return (((x - x_hat) ** 2).sum(dim=1) + kl_weight * kl).mean()

    f64 = dict(dtype=torch.float64, device=device)
    x, x_hat = torch.rand(6, 10, **f64), torch.rand(6, 10, **f64)
    mu, rho = torch.randn(6, 3, **f64), torch.randn(6, 3, **f64)
    loss, grads = worker.vjp(sub.vae_loss, x, x_hat, mu, rho, 0.5, wrt=(1, 2, 3))
    leaves = [t.clone().requires_grad_(True) for t in (x_hat, mu, rho)]
    expected = reference(x, *leaves, 0.5)
    expected_grads = torch.autograd.grad(expected, leaves)
    expect_close(loss, expected.detach(), "vae_loss(x, x_hat, mu, rho, kl_weight=0.5)", rtol=1e-9, atol=1e-12)
    for name, got, want in zip(("x_hat", "mu", "rho"), grads, expected_grads):
        assert got is not None, f"vae_loss does not depend on {name} through autograd."
        expect_close(got, want, f"d vae_loss / d {name}", rtol=1e-8, atol=1e-11)


@pytest.mark.points(2)
@pytest.mark.hidden
@pytest.mark.budget(40)
def test_vae_trains(sub, device, digits):
    """VAE(64, 8) trained with train_vae (kl_weight=0.1) reconstructs test digits from the
    posterior mean with an MSE at most 0.55 times that of predicting the mean image."""
    x_train, x_test = digits
    vae = sub.VAE(64, LATENT)
    losses = sub.train_vae(vae, x_train, epochs=EPOCHS, kl_weight=VAE_KL_WEIGHT, device=str(device))
    assert isinstance(losses, list) and len(losses) == EPOCHS, f"train_vae should return {EPOCHS} epoch losses."
    vae.eval()
    encoded = vae.encode(x_test)
    assert isinstance(encoded, tuple) and len(encoded) == 2, "VAE.encode(x) should return the pair (mu, rho)."
    mu, rho = (expect_tensor(t, name, shape=(len(x_test), LATENT)) for t, name in zip(encoded, ("mu", "rho")))
    x_hat = expect_tensor(vae.decode(mu), "vae.decode(mu)", shape=tuple(x_test.shape))
    mse = ((x_hat - x_test) ** 2).mean().item()
    mean_only = pca_baseline_mse(x_train.cpu(), x_test.cpu(), 0)
    assert mse <= VAE_MAX_MSE_OVER_MEAN_ONLY * mean_only, (
        f"the VAE reconstructs test digits with MSE {mse:.4f}; predicting the mean image gives {mean_only:.4f}, "
        f"and the VAE should reach {VAE_MAX_MSE_OVER_MEAN_ONLY} x that."
    )
    expect_scalar(losses[-1], "the last epoch loss")
