"""Public tests of the adversarial-attacks practical: students get this file and run it with `pytest`.

The grader runs the same tests (and hidden ones) with your code in a separate process: `sub` is
your module, `victim` is the course classifier loaded next to your code, and what your functions
return comes back as plain values.
"""

import pytest
import torch

from assignments.adversarial.data import load_digit_images
from assignments.adversarial.model import CLEAN_TEST_ACCURACY, load_classifier
from autograder.checks import expect_close, expect_scalar_close, expect_tensor, expect_unchanged


@pytest.fixture
def victim(worker, device):
    """The pinned classifier, loaded in the process that runs your code, in eval mode."""
    return worker.import_course("assignments.adversarial.model", "load_classifier")(device=str(device))


@pytest.fixture
def digits(device):
    _, _, x_test, y_test = load_digit_images()
    return x_test.to(device), y_test.to(device)


@pytest.mark.points(2)
@pytest.mark.public
def test_project_linf(sub, device):
    """project_linf clips each coordinate of the perturbation to [-eps, eps], sample by sample."""
    x = torch.rand(4, 1, 8, 8, device=device)
    inside = x + 0.05 * (2 * torch.rand_like(x) - 1)
    expect_close(sub.project_linf(inside, x, 0.1), inside, "project_linf of a point inside the ball",
                 hint="points already in the ball must not move.")
    far = x + torch.randn_like(x)
    expect_close(sub.project_linf(far, x, 0.1), x + (far - x).clamp(-0.1, 0.1), "project_linf(x + noise, x, 0.1)",
                 hint="clip x_adv - x to [-eps, eps] and add it back to x.")


@pytest.mark.points(2)
@pytest.mark.public
def test_project_l2(sub, device):
    """project_l2 scales a too-long perturbation to length eps and keeps a short one, per sample."""
    x = torch.rand(3, 1, 8, 8, device=device)
    direction = torch.randn_like(x)
    direction = direction / direction.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    lengths = torch.tensor([0.5, 2.0, 10.0], device=device).view(-1, 1, 1, 1)  # inside, outside, far outside
    projected = expect_tensor(sub.project_l2(x + lengths * direction, x, 1.0), "project_l2(x_adv, x, eps=1.0)",
                              shape=tuple(x.shape))
    expected = x + lengths.clamp(max=1.0) * direction
    delta = lengths * direction
    whole_batch = x + delta * (1.0 / delta.norm()).clamp(max=1.0)
    expect_close(projected, expected, "project_l2 of perturbations of length 0.5, 2 and 10 with eps=1",
                 rtol=1e-4, atol=1e-5,
                 hint="Compute ||x_adv - x||_2 for each sample (over C, H, W) and scale by min(1, eps / norm).",
                 known_mistakes={"taking the norm of the whole batch's perturbation instead of each sample's":
                                 whole_batch})


@pytest.mark.points(2)
@pytest.mark.public
def test_fgsm_step_size_and_pixel_range(sub, worker, victim, digits):
    """fgsm moves every pixel by exactly eps (up or down) unless the pixel range [0, 1] stops it,
    never leaves [0, 1], and leaves the input tensor unchanged."""
    x, y = digits
    eps = 0.1
    held_x = worker.hold(x)  # fgsm gets this very tensor; the test looks at it afterwards
    x_adv = expect_tensor(sub.fgsm(victim, held_x, y, eps), "fgsm(model, x, y, eps=0.1)", shape=tuple(x.shape))
    expect_unchanged(worker.tensor_state(held_x), x, "the input x given to fgsm")
    assert x_adv.min() >= 0 and x_adv.max() <= 1, (
        f"adversarial images must stay in the pixel range [0, 1]; got values in "
        f"[{x_adv.min().item():.3f}, {x_adv.max().item():.3f}]. Clamp after the step.")
    step = (x_adv - x).abs()
    assert step.max() <= eps + 1e-6, f"FGSM moved a pixel by {step.max().item():.4f}, more than eps = {eps}."
    free = (x - eps >= 0) & (x + eps <= 1)  # pixels the clamp cannot stop, whichever the direction
    moved = (step[free] - eps).abs() <= 1e-6
    assert moved.float().mean() >= 0.99, (
        f"only {moved.float().mean().item():.1%} of the pixels that are at least eps away from 0 and 1 moved by "
        f"exactly eps; FGSM steps by eps * sign(gradient) on every pixel.")


@pytest.mark.points(1)
@pytest.mark.public
def test_accuracy(sub, victim, digits, device):
    """accuracy(model, x, labels) is the fraction of inputs classified as labels."""
    x, y = digits
    expect_scalar_close(sub.accuracy(victim, x, y), CLEAN_TEST_ACCURACY, "accuracy on the clean test digits",
                        atol=1e-3, hint="compare the argmax of the logits with the labels, and average.")
    shifted = (y + 1) % 10
    expected = (load_classifier(device)(x).argmax(dim=1) == shifted).float().mean().item()
    expect_scalar_close(sub.accuracy(victim, x, shifted), expected, "accuracy with every label shifted by one",
                        atol=1e-6)
