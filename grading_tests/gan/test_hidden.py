"""Hidden tests of the GAN practical. Students see their feedback, never this code.

Statistical thresholds are set from measurements of the reference solution over 10 seeds (the
comments next to the constants give the measured ranges), far from both the correct and the
known-bad behaviour.
"""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from assignments.gan.checkpoint import (CHECKPOINT_NAME, SCORE_CURVE, CheckpointError, clean_state_dict,
                                        load_generator, points_fraction, score)
from assignments.gan.data import load_digits_pm1
from assignments.gan.metric import precision_recall as reference_precision_recall
from assignments.gan.models import Discriminator, ToyGenerator
from autograder.checks import (expect_close, expect_detached, expect_parameter_grads, expect_scalar,
                               expect_scalar_close, expect_tensor)
from autograder.errors import StudentCodeError

# Truncation on the toy generator (a plane in R^64 driven by two latent coordinates); real data:
# 1500 toy samples at psi = REAL_PSI (the toy generator is "too wide"). Reference, 10 seeds:
#   soft psi 1.0 / 0.6 / 0.25: precision 0.883-0.904 / 0.971-0.979 / 0.983-0.989,
#                              recall    0.971-0.990 / 0.971-0.989 / 0.649-0.761;
#   hard t   3.0 / 1.0 / 0.4:  precision 0.880-0.909 / 0.971-0.983 / 0.980-0.990,
#                              recall    0.969-0.991 / 0.819-0.838 / 0.267-0.277.
# Scaling the image instead of the latent gives precision = recall = 0 at psi 0.6 and 0.25.
REAL_PSI = 0.6
SOFT_GRID = (1.0, 0.6, 0.25)
HARD_GRID = (3.0, 1.0, 0.4)
MIN_PRECISION_GAIN = 0.04  # strongest truncation vs none; reference gains >= 0.074
MIN_RECALL_LOSS = 0.15  # reference loses >= 0.21 (soft), >= 0.69 (hard)
NOISE = 0.03  # allowed non-monotonicity between neighbouring grid points; reference <= 0.011
# Hard truncation at t = 1: the truncated normal's standard deviation is 0.5396; clamping gives
# 0.718 and uniform redraws 0.577. Reference, 400k coordinates: within 0.002.
TRUNCATED_STD_AT_1 = 0.5396
STD_TOLERANCE = 0.01


def _pair(result, what):
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise AssertionError(f"{what} should return (precision, recall), got {result!r:.200}.")
    return expect_scalar(result[0], f"the precision of {what}"), expect_scalar(result[1], f"the recall of {what}")


# -- losses --------------------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.hidden
def test_loss_gradients_in_float64(sub, worker):
    """The gradients of discriminator_loss and generator_loss with respect to the logits, in float64,
    match the binary cross-entropy's: d/dl_real = -sigmoid(-l)/N, d/dl_fake = sigmoid(l)/M, and for
    the non-saturating generator loss -sigmoid(-l)/M."""
    real = torch.linspace(-3, 3, 7, dtype=torch.float64)
    fake = torch.linspace(-5, 2, 5, dtype=torch.float64)
    _, grads = worker.vjp(sub.discriminator_loss, real, fake, wrt=(0, 1))
    pooled = len(real) + len(fake)
    expect_close(grads[0], -torch.sigmoid(-real) / len(real), "d discriminator_loss / d real_logits",
                 rtol=1e-9, atol=1e-12, hint="Expected -sigmoid(-l) / N for each of the N real logits.",
                 known_mistakes={"averaging over the real and fake logits together": -torch.sigmoid(-real) / pooled,
                                 "summing the real term instead of averaging it": -torch.sigmoid(-real)})
    expect_close(grads[1], torch.sigmoid(fake) / len(fake), "d discriminator_loss / d fake_logits",
                 rtol=1e-9, atol=1e-12, hint="Expected sigmoid(l) / M for each of the M fake logits (label 0).",
                 known_mistakes={"giving the fake samples label 1": -torch.sigmoid(-fake) / len(fake),
                                 "averaging over the real and fake logits together": torch.sigmoid(fake) / pooled})
    _, (g_fake,) = worker.vjp(sub.generator_loss, fake, wrt=(0,))
    expect_close(g_fake, -torch.sigmoid(-fake) / len(fake), "d generator_loss / d fake_logits",
                 rtol=1e-9, atol=1e-12,
                 hint="Expected -sigmoid(-l) / M, the gradient of the non-saturating loss -mean log D(G(z)).",
                 known_mistakes={"the saturating loss mean log(1 - D(G(z))) (its gradient vanishes when D rejects "
                                 "the fakes)": -torch.sigmoid(fake) / len(fake)})


@pytest.mark.points(1)
@pytest.mark.hidden
def test_losses_are_stable_for_large_logits(sub):
    """With logits of +-200 (a confident discriminator) both losses stay finite and exact."""
    real = torch.tensor([200.0, -200.0])
    fake = torch.tensor([-200.0, 200.0])
    expected_d = (F.softplus(-real).mean() + F.softplus(fake).mean()).item()  # 100 + 100
    expect_scalar_close(sub.discriminator_loss(real, fake), expected_d, "discriminator_loss with logits of +-200",
                        rtol=1e-6, hint="Work on the logits (F.binary_cross_entropy_with_logits or F.softplus).",
                        known_mistakes={"taking log(sigmoid(l)) of the probabilities (it underflows to -inf for "
                                        "l = -200)": float("inf")})
    expect_scalar_close(sub.generator_loss(fake), F.softplus(-fake).mean().item(),
                        "generator_loss with logits of +-200", rtol=1e-6,
                        hint="Work on the logits: -log sigmoid(l) = softplus(-l).",
                        known_mistakes={"taking log(sigmoid(l)) of the probabilities (it underflows to -inf for "
                                        "l = -200)": float("inf")})


# -- gradient penalty ----------------------------------------------------------------------------

@pytest.mark.points(3)
@pytest.mark.hidden
def test_gradient_penalty_value(sub, worker):
    """gradient_penalty interpolates x_hat = eps * real + (1 - eps) * fake and returns
    weight * mean (||grad C(x_hat)||_2 - 1)^2: checked in float64 with C(x) = ||x||^2 / 2 (gradient
    x_hat) for given eps, with a linear critic (gradient w everywhere), and with eps drawn by your code."""
    quadratic = worker.import_course("assignments.gan.models", "QuadraticCritic")()
    real = torch.randn(5, 64, dtype=torch.float64)
    fake = torch.randn(5, 64, dtype=torch.float64)
    eps = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    x_hat = eps[:, None] * real + (1 - eps[:, None]) * fake
    expected = 10 * ((x_hat.norm(dim=1) - 1) ** 2).mean()
    penalty = sub.gradient_penalty(quadratic, real, fake, 10.0, eps)
    expect_tensor(penalty, "gradient_penalty(...)", shape=())
    expect_scalar_close(penalty, expected.item(), "gradient_penalty(C, real, fake, weight=10, eps=[0, .25, .5, .75, 1]) "
                        "with C(x) = ||x||^2 / 2", rtol=1e-9, atol=1e-10,
                        hint="Expected weight * mean over the samples of (||grad C(x_hat)||_2 - 1)^2, with "
                             "x_hat = eps * real + (1 - eps) * fake and one eps per sample.",
                        known_mistakes={
                            "interpolating eps * fake + (1 - eps) * real (eps and 1 - eps swapped)":
                                10 * (((eps[:, None] * fake + (1 - eps[:, None]) * real).norm(dim=1) - 1) ** 2).mean().item(),
                            "interpolating eps * real - (1 - eps) * fake (the course notes' sign error)":
                                10 * (((eps[:, None] * real - (1 - eps[:, None]) * fake).norm(dim=1) - 1) ** 2).mean().item()})

    w = torch.full((64,), 0.25, dtype=torch.float64)  # ||w|| = 2
    linear = worker.import_course("assignments.gan.models", "LinearCritic")(w)
    expect_scalar_close(sub.gradient_penalty(linear, real, fake, 3.0), 3.0,
                        "gradient_penalty(C, real, fake, weight=3) with C(x) = <w, x>, ||w|| = 2", rtol=1e-9,
                        hint="With C(x) = <w, x> the gradient with respect to the input x_hat is w everywhere, so "
                             "the penalty is weight * (||w|| - 1)^2 = 3.")

    same = torch.randn(6, 64, dtype=torch.float64) * 0.1  # real == fake: x_hat is that point whatever eps is
    expected_same = 10 * ((same.norm(dim=1) - 1) ** 2).mean()
    expect_scalar_close(sub.gradient_penalty(quadratic, same, same.clone(), 10.0), expected_same.item(),
                        "gradient_penalty(C, x, x) with C(x) = ||x||^2 / 2 and eps drawn by your code", rtol=1e-9,
                        hint="when real == fake, every interpolation eps * real + (1 - eps) * fake is that same point.")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_gradient_penalty_trains_the_critic(sub, worker):
    """The penalty is differentiable with respect to the critic's parameters (create_graph=True):
    its gradients match the grader's on the baseline discriminator (dropout 0), in float64."""
    critic = worker.import_course("assignments.gan.models", "Discriminator")(0.0)
    critic.double()
    trusted = Discriminator(0.0).double()
    trusted.load_state_dict(critic.state_dict())
    real = torch.rand(6, 64, dtype=torch.float64) * 2 - 1
    fake = torch.rand(6, 64, dtype=torch.float64) * 2 - 1
    eps = torch.linspace(0.1, 0.9, 6, dtype=torch.float64)
    grads = worker.parameter_grads(critic, sub.gradient_penalty, critic, real, fake, 10.0, eps)
    point = (eps[:, None] * real + (1 - eps[:, None]) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(trusted(point).sum(), point, create_graph=True)
    penalty = 10 * ((g.norm(dim=1) - 1) ** 2).mean()
    names = [name for name, _ in trusted.named_parameters()]
    expected = dict(zip(names, torch.autograd.grad(penalty, list(trusted.parameters()), allow_unused=True)))
    expect_parameter_grads(grads, expected, "the penalty", rtol=1e-7, atol=1e-10,
                           missing_hint="Compute the input gradient with torch.autograd.grad(..., "
                                        "create_graph=True) so that the penalty can train the critic.")


# -- precision and recall ------------------------------------------------------------------------

def _feature_sets():
    """(name, real, fake, k): continuous features, random and structured, unequal sizes, in float64."""
    g = torch.Generator().manual_seed(7)
    randn = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)
    centers = 6 * randn(10, 16)
    labels_real = torch.arange(600) % 10
    labels_fake = torch.randint(0, 10, (450,), generator=g)
    return [
        ("two Gaussians, 500 real x 700 generated, d=16", randn(500, 16), 1.2 * randn(700, 16) + 0.3, 3),
        ("two Gaussians, 800 real x 300 generated, d=8, k=5", randn(800, 8), 0.7 * randn(300, 8) + 0.5, 5),
        ("10 clusters, generated clusters narrower and shifted",
         centers[labels_real] + randn(600, 16), centers[labels_fake] + 0.6 * randn(450, 16) + 0.4, 3),
        ("a ring against a filled disc, d=2",
         torch.stack([torch.cos(t := 6.2832 * torch.rand(400, generator=g, dtype=torch.float64)), torch.sin(t)], 1)
         + 0.05 * randn(400, 2), randn(400, 2) * 0.7, 3),
    ]


@pytest.mark.points(3)
@pytest.mark.hidden
def test_precision_recall_agrees_with_the_reference(sub):
    """On random and structured continuous feature sets (unequal sizes, k = 3 and 5), precision_recall
    gives the reference's precision and recall (to one sample)."""
    for name, real, fake, k in _feature_sets():
        want_p, want_r = reference_precision_recall(real, fake, k)
        got_p, got_r = _pair(sub.precision_recall(real, fake, k=k), f"precision_recall on {name}")
        if abs(got_p - want_r) < 1 / len(fake) and abs(got_r - want_p) < 1 / len(real) and abs(want_p - want_r) > 0.05:
            raise AssertionError(
                f"on {name}, precision and recall are swapped: got ({got_p:.4f}, {got_r:.4f}), expected "
                f"({want_p:.4f}, {want_r:.4f}). Precision is the share of GENERATED samples inside the real balls.")
        assert abs(got_p - want_p) <= 1 / len(fake) + 1e-9 and abs(got_r - want_r) <= 1 / len(real) + 1e-9, (
            f"on {name} (k={k}), expected precision {want_p:.4f} and recall {want_r:.4f}, got {got_p:.4f} and "
            f"{got_r:.4f}. Each radius is the distance to the k-th nearest neighbour in the sample's own set, "
            "the sample itself excluded (its distance to itself is 0); a point counts when its distance is <= a radius.")


@pytest.mark.points(1)
@pytest.mark.hidden
def test_precision_recall_counts_ties_as_inside(sub):
    """On the digits' pixels (integer-valued: many exact ties between distances and radii), a point
    exactly on a ball's boundary counts as inside (<=), as in the reference: for precision and for
    recall (each set in turn as the real one)."""
    x_train, _, x_test, _ = load_digits_pm1()
    for real, fake, name in ((x_train.double(), x_test.double(), "training digits against test digits"),
                             (x_test.double(), x_train.double(), "test digits against training digits")):
        want_p, want_r = reference_precision_recall(real, fake, 3)
        got_p, got_r = _pair(sub.precision_recall(real, fake, k=3), f"precision_recall on digit pixels ({name})")
        assert not (abs(got_p - want_r) < 1e-6 and abs(got_r - want_p) < 1e-6 and abs(want_p - want_r) > 1e-6), (
            f"precision and recall are swapped: got ({got_p:.4f}, {got_r:.4f}), expected ({want_p:.4f}, {want_r:.4f}).")
        assert abs(got_p - want_p) < 1e-6 and abs(got_r - want_r) < 1e-6, (
            f"{name} (pixels, k=3): expected precision {want_p:.4f} and recall {want_r:.4f}, got {got_p:.4f} and "
            f"{got_r:.4f}. With ties, compare distances with <=, not <, for precision and for recall.")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_precision_recall_invariants(sub):
    """Mode dropping keeps precision and halves recall; noise collapses precision; shrinking the
    samples toward the mean keeps precision and lowers recall; precision(A, B) == recall(B, A)."""
    g = torch.Generator().manual_seed(11)
    randn = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)
    angles = torch.arange(10, dtype=torch.float64) * 6.2832 / 10
    centers = 20 * torch.stack([angles.cos(), angles.sin()], dim=1)  # 10 modes on a circle, far apart
    real = centers[torch.arange(1000) % 10] + randn(1000, 2)
    half = centers[torch.arange(1000) % 5] + randn(1000, 2)  # only 5 of the 10 modes
    # reference: (0.954, 0.485) with 5 modes, precision 0.110 with noise, (1.000, 0.014) shrunk
    p, r = _pair(sub.precision_recall(real, half, k=3), "precision_recall with 5 of 10 modes generated")
    assert p >= 0.85 and 0.4 <= r <= 0.6, (
        f"generating 5 of the 10 modes should keep precision high and recall near 0.5; got ({p:.3f}, {r:.3f}).")
    p, r = _pair(sub.precision_recall(real, real + 8 * randn(1000, 2), k=3), "precision_recall with noisy samples")
    assert p <= 0.2, f"samples with heavy noise added should have a low precision; got {p:.3f}."
    gauss = randn(1000, 8)
    p, r = _pair(sub.precision_recall(gauss, 0.3 * randn(1000, 8), k=3), "precision_recall with shrunk samples")
    assert p >= 0.9 and r <= 0.6, (
        f"samples shrunk toward the mean should keep precision high and lose recall; got ({p:.3f}, {r:.3f}).")
    a, b = randn(300, 8), 1.3 * randn(400, 8) + 0.2
    p_ab, r_ab = _pair(sub.precision_recall(a, b, k=3), "precision_recall(A, B)")
    p_ba, r_ba = _pair(sub.precision_recall(b, a, k=3), "precision_recall(B, A)")
    assert abs(p_ab - r_ba) < 1e-6 and abs(r_ab - p_ba) < 1e-6, (
        f"precision(A, B) should equal recall(B, A) and the other way round; got precision_recall(A, B) = "
        f"({p_ab:.4f}, {r_ab:.4f}) and precision_recall(B, A) = ({p_ba:.4f}, {r_ba:.4f}).")


# -- truncation ----------------------------------------------------------------------------------

@pytest.mark.points(2)
@pytest.mark.hidden
def test_soft_truncation_scales_the_latent(sub, worker, device):
    """sample_soft(G, n, psi) returns G(psi * z), z ~ N(0, I_100): with G(z) = z its samples have
    standard deviation psi, with G(z) = z^2 mean psi^2, and with psi = 0 every sample is G(0),
    detached."""
    echo = worker.import_course("assignments.gan.models", "LatentProbe")(1).to(str(device))
    out = expect_tensor(sub.sample_soft(echo, 4000, 0.5), "sample_soft(G, 4000, 0.5) with G(z) = z", shape=(4000, 100))
    assert abs(out.std().item() - 0.5) < 0.01, (
        f"with G(z) = z, sample_soft(G, n, psi=0.5) should have standard deviation 0.5, got {out.std().item():.3f}.")
    square = worker.import_course("assignments.gan.models", "LatentProbe")(2).to(str(device))
    out = expect_tensor(sub.sample_soft(square, 4000, 0.5), "sample_soft(G, 4000, 0.5) with G(z) = z^2",
                        shape=(4000, 100))
    mean = out.mean().item()
    scaled_output = abs(mean - 0.5) < 0.01  # G(z) * psi has mean psi: the output was scaled, not the code
    assert abs(mean - 0.25) < 0.01, (
        f"with G(z) = z^2, sample_soft(G, n, psi=0.5) should have mean psi^2 = 0.25, got {mean:.3f}."
        + (" That is psi * E[G(z)]: the generated sample was scaled instead of the latent code z." if scaled_output
           else ""))
    generator = worker.import_course("assignments.gan.models", "Generator")().to(str(device))
    at_origin = generator(torch.zeros(1, 100, device=device))
    out = expect_tensor(sub.sample_soft(generator, 8, 0.0), "sample_soft(G, 8, psi=0)", shape=(8, 64))
    expect_detached(out, "the samples sample_soft returns")
    expect_close(out, at_origin.expand(8, 64), "sample_soft(G, 8, psi=0)", atol=1e-6,
                 hint="with psi = 0 the latent code is 0, so every sample is G(0).")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_hard_truncation_is_a_truncated_normal(sub, worker, device):
    """sample_hard(G, n, t) with G(z) = z returns codes within [-t, t] distributed as a standard
    normal truncated to [-t, t] (standard deviation 0.5396 at t = 1), not clamped; with the course
    generator its samples come back detached."""
    echo = worker.import_course("assignments.gan.models", "LatentProbe")(1).to(str(device))
    out = expect_tensor(sub.sample_hard(echo, 4000, 1.0), "sample_hard(G, 4000, 1.0) with G(z) = z",
                        shape=(4000, 100))
    assert out.abs().max().item() <= 1.0, f"a code coordinate of size {out.abs().max().item():.3f} exceeds t = 1."
    at_edge = (out.abs() > 0.999).float().mean().item()
    assert at_edge < 0.01, (
        f"{at_edge:.1%} of the coordinates sit on the threshold: redraw them from N(0, 1) instead of clamping.")
    std = out.std().item()
    assert abs(std - TRUNCATED_STD_AT_1) < STD_TOLERANCE, (
        f"the coordinates should follow N(0, 1) truncated to [-1, 1] (standard deviation {TRUNCATED_STD_AT_1}), "
        f"got standard deviation {std:.4f}. Redraw the out-of-range coordinates from N(0, 1) until they fall inside.")
    wide = expect_tensor(sub.sample_hard(echo, 2000, 10.0), "sample_hard(G, 2000, 10.0) with G(z) = z")
    assert abs(wide.std().item() - 1.0) < 0.01, "with t = 10 hard truncation should leave N(0, 1) codes unchanged."
    generator = worker.import_course("assignments.gan.models", "Generator")().to(str(device))
    expect_detached(expect_tensor(sub.sample_hard(generator, 8, 1.0), "sample_hard(G, 8, 1.0)", shape=(8, 64)),
                    "the samples sample_hard returns")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_truncation_trades_recall_for_precision(sub, worker, device, grading_seed):
    """On a toy generator whose samples depend on two latent coordinates, stronger truncation (soft
    psi 1 -> 0.6 -> 0.25, hard t 3 -> 1 -> 0.4) raises the reference precision and lowers the
    reference recall against data narrower than the generator."""
    toy = worker.import_course("assignments.gan.models", "ToyGenerator")(0).to(str(device))
    with torch.no_grad():
        z = torch.randn(1500, 100, generator=torch.Generator().manual_seed(grading_seed))
        real = ToyGenerator(0)(REAL_PSI * z)
    for kind, grid in (("soft", SOFT_GRID), ("hard", HARD_GRID)):
        sampler = sub.sample_soft if kind == "soft" else sub.sample_hard
        scores = []
        for value in grid:
            fake = expect_tensor(sampler(toy, 1500, value), f"sample_{kind}(G, 1500, {value})", shape=(1500, 64))
            scores.append(reference_precision_recall(real, fake.cpu().float(), 3))
        shown = ", ".join(f"{v}: P {p:.3f} R {r:.3f}" for v, (p, r) in zip(grid, scores))
        (p0, r0), (p1, r1), (p2, r2) = scores
        monotone = p1 >= p0 - NOISE and p2 >= p1 - NOISE and r1 <= r0 + NOISE and r2 <= r1 + NOISE
        assert monotone and p2 >= p0 + MIN_PRECISION_GAIN and r2 <= r0 - MIN_RECALL_LOSS, (
            f"{kind} truncation should raise precision and lower recall as it gets stronger; the reference "
            f"precision/recall of your samples were {shown}. Truncate the latent code, before the generator.")


# -- the submitted generator ---------------------------------------------------------------------

def _submitted_generator(worker, grading_state, device):
    """The student's generator.pt, read in the student's process, checked and loaded here."""
    folder = Path(grading_state.workdir) / Path(grading_state.entry).parent
    read = worker.import_course("assignments.gan.checkpoint", "read_state_dict")
    try:
        state = read(str(folder / CHECKPOINT_NAME))
    except StudentCodeError as exc:
        raise AssertionError(f"{CHECKPOINT_NAME} could not be read: {exc.message}") from None
    try:
        return load_generator(clean_state_dict(state), device)
    except CheckpointError as exc:
        raise AssertionError(f"{CHECKPOINT_NAME}: {exc}") from None


@pytest.mark.points(2)
@pytest.mark.hidden
def test_checkpoint_fits_the_fixed_generator(worker, grading_state, device):
    """generator.pt (next to gan.py) is a state dict of the fixed Generator: the same parameter names
    and shapes (a 'module.' prefix is accepted), finite values, loaded with strict=True."""
    generator = _submitted_generator(worker, grading_state, device)
    out = generator(torch.zeros(2, 100, device=device))
    assert out.shape == (2, 64)


@pytest.mark.points(6)
@pytest.mark.hidden
@pytest.mark.budget(60)
def test_checkpoint_quality(worker, grading_state, device, grading_seed, partial_credit, leaderboard, attach_images):
    """1500 samples of your generator (the grader's seed) are scored with the reference precision and
    recall against the 1500 training digits, in the feature space of the course classifier; points
    follow the F-score, linearly from 0 at F = 0.30 to full at F = 0.70. Precision, recall and F-score
    go to the leaderboard."""
    generator = _submitted_generator(worker, grading_state, device)
    metrics = score(generator, grading_seed, device)
    for name in ("precision", "recall", "f_score"):
        leaderboard(name, round(metrics[name], 4))
    with torch.no_grad():
        attach_images("samples", ((generator(torch.randn(32, 100, device=device)) + 1) / 2).clamp(0, 1)
                      .view(-1, 1, 8, 8).cpu(), nrow=8)
    fraction = points_fraction(metrics["f_score"])
    (low, _), (high, _) = SCORE_CURVE[0], SCORE_CURVE[-1]
    summary = (f"Your generator: precision {metrics['precision']:.4f}, recall {metrics['recall']:.4f}, "
               f"F-score {metrics['f_score']:.4f}.")
    assert fraction > 0, (f"{summary} An F-score of {low} or less earns no points (full points from {high}). "
                          "Train longer, or check your losses.")
    partial_credit(fraction, summary + (f" Full points from F = {high}." if fraction < 1 else ""))
