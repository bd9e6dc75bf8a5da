"""Public tests of the GAN practical: students get this file and run it with `pytest`.

The grader runs the same tests (and hidden ones) with your code in a separate process: `sub` is
your module, and what your functions return comes back as plain values.
"""

import pytest
import torch
import torch.nn.functional as F

from autograder.checks import expect_close, expect_scalar, expect_scalar_close, expect_tensor


@pytest.mark.points(2)
@pytest.mark.public
def test_discriminator_loss_value(sub):
    """discriminator_loss(real_logits, fake_logits) = -mean log D(real) - mean log(1 - D(fake)),
    D = sigmoid(logit), as a 0-d tensor."""
    real = torch.tensor([2.0, -1.0, 0.5, 3.0], dtype=torch.float64)
    fake = torch.tensor([-2.0, 0.0, 1.5], dtype=torch.float64)
    expected = -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()
    loss = sub.discriminator_loss(real, fake)
    expect_tensor(loss, "discriminator_loss(real_logits, fake_logits)", shape=())
    expect_scalar_close(loss, expected.item(), "discriminator_loss(real_logits, fake_logits)", rtol=1e-9,
                        hint="Expected -mean log D(real) - mean log(1 - D(fake)): real samples have label 1, "
                             "generated ones label 0, and each mean is over its own batch (they differ in size).",
                        known_mistakes={"one mean over the real and fake logits together (the batches differ in size)":
                                        F.binary_cross_entropy_with_logits(torch.cat([real, fake]), torch.cat(
                                            [torch.ones_like(real), torch.zeros_like(fake)])).item()})


@pytest.mark.points(2)
@pytest.mark.public
def test_generator_loss_is_non_saturating(sub):
    """generator_loss(fake_logits) = -mean log D(fake): the non-saturating loss, not mean log(1 - D(fake))."""
    fake = torch.tensor([-4.0, -1.0, 0.0, 2.0], dtype=torch.float64)
    expected = -torch.log(torch.sigmoid(fake)).mean()
    loss = sub.generator_loss(fake)
    expect_tensor(loss, "generator_loss(fake_logits)", shape=())
    expect_scalar_close(loss, expected.item(), "generator_loss(fake_logits)", rtol=1e-9,
                        hint="Expected the non-saturating loss -mean log D(G(z)).",
                        known_mistakes={"the saturating loss mean log(1 - D(G(z))) (its gradient vanishes when D "
                                        "rejects the fakes)": torch.log(1 - torch.sigmoid(fake)).mean().item()})


@pytest.mark.points(2)
@pytest.mark.public
def test_precision_recall_of_identical_and_far_apart_sets(sub):
    """precision_recall returns two floats: (1, 1) for identical sets, (0, 0) for sets far apart."""
    real = torch.randn(200, 8, dtype=torch.float64)
    result = sub.precision_recall(real, real.clone(), k=3)
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise AssertionError(f"precision_recall should return (precision, recall), got {result!r:.200}.")
    precision = expect_scalar(result[0], "precision")
    recall = expect_scalar(result[1], "recall")
    assert (precision, recall) == (1.0, 1.0), (
        f"identical sets should give precision = recall = 1, got ({precision:.4f}, {recall:.4f}).")
    far = sub.precision_recall(real, real + 100.0, k=3)
    assert tuple(map(float, far)) == (0.0, 0.0), (
        f"sets 100 apart should give precision = recall = 0, got {tuple(map(float, far))}.")


@pytest.mark.points(2)
@pytest.mark.public
def test_truncation_of_latent_codes(sub):
    """truncate_soft(z, psi) = psi * z; truncate_hard(z, t) keeps the coordinates within [-t, t]
    and redraws the others until every |z_i| <= t."""
    z = torch.randn(64, 100)
    expect_close(sub.truncate_soft(z, 0.7), 0.7 * z, "truncate_soft(z, 0.7)")
    out = expect_tensor(sub.truncate_hard(z, 1.0), "truncate_hard(z, 1.0)", shape=(64, 100))
    assert out.abs().max() <= 1.0, f"truncate_hard(z, 1.0) has a coordinate of size {out.abs().max():.3f} > 1."
    inside = z.abs() <= 1.0
    expect_close(out[inside], z[inside], "the coordinates of z already within [-1, 1], after truncate_hard",
                 hint="only the coordinates beyond the threshold are redrawn.")
    assert (out[~inside].abs() < 1.0).float().mean() > 0.99, (
        "the redrawn coordinates sit on the threshold: redraw them from N(0, 1), do not clamp them.")
