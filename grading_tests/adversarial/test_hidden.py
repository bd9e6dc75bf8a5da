"""Hidden tests of the adversarial-attacks practical. Students see their feedback, never this code.

The attacks are deterministic (no random start), so they are compared with torchattacks 3.5
(FGSM, PGD, PGDL2 with ``random_start=False``; the reference solution matches it bit for bit on
CPU) run here, in the grading process, on its own copy of the pinned classifier, with one thread
like the student's worker. Up to 2% of the images (6 of 297) may differ: a gradient component
that is zero up to rounding has a sign that depends on the order of floating-point sums (thread
counts, GPU kernels), and over 20 PGD steps one such flip can send an image down another path.
With 2 threads here and 1 in the worker, the reference differed on 1 image of 297; every
known-bad submission differs on far more (tests/test_adversarial_examples.py).

Accuracy thresholds are on deterministic outcomes; the reference's values on the 297 test digits
are next to each constant.
"""

import pytest
import torch
import torch.nn.functional as F
import torchattacks

from assignments.adversarial.data import load_digit_images
from assignments.adversarial.model import load_classifier
from autograder.checks import (expect_close, expect_detached, expect_scalar, expect_scalar_close, expect_tensor,
                               expect_unchanged)

MAX_MISMATCHED_IMAGES = 0.02  # share of the images allowed to differ from torchattacks
TOLERANCE = 1e-5  # on any pixel
# L-inf PGD, eps 0.2, alpha 0.05, 20 steps: reference accuracy 0.027 (FGSM at the same eps 0.094).
# L2 PGD, eps 1.0, alpha 0.25, 20 steps: reference 0.024 (the slides' raw-gradient step: 0.99).
MAX_ACCURACY_UNDER_PGD = 0.05
# Targeted (target = (y + 1) mod 10), 20 steps of eps / 4: reference success 0.966 for L-inf
# eps 0.3 and 0.983 for L2 eps 1.5.
MIN_TARGETED_SUCCESS = 0.9
MIN_SHARE_CLOSER_TO_TARGET = 0.95  # reference: 1.0 (the target's probability rises for every digit)


@pytest.fixture(autouse=True)
def one_thread():
    """Compute the expected images with one thread, as the worker does (same floating-point sums)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def victim(worker, device):
    """The pinned classifier, loaded in the student's worker, in eval mode."""
    return worker.import_course("assignments.adversarial.model", "load_classifier")(device=str(device))


@pytest.fixture
def model(device):
    """The grader's own copy of the same classifier."""
    return load_classifier(device)


@pytest.fixture
def digits(device):
    _, _, x_test, y_test = load_digit_images()
    return x_test.to(device), y_test.to(device)


def torchattacks_result(kind: str, model, x, labels, targeted: bool = False, **params) -> torch.Tensor:
    attack = {"fgsm": torchattacks.FGSM, "pgd_linf": torchattacks.PGD, "pgd_l2": torchattacks.PGDL2}[kind]
    if kind != "fgsm":
        params["random_start"] = False
    attack = attack(model, **params)
    if targeted:
        attack.set_mode_targeted_by_label(quiet=True)
    return attack(x, labels)


def _differing_pixels(got: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """(N, pixels) mask of the pixels that differ by more than TOLERANCE (NaN always differs)."""
    return ~((got.to(expected.device, expected.dtype) - expected).abs() <= TOLERANCE).flatten(1)


def _same_images(got: torch.Tensor, expected: torch.Tensor) -> bool:
    return _differing_pixels(got, expected).any(dim=1).float().mean().item() <= MAX_MISMATCHED_IMAGES


def expect_same_images(got, expected: torch.Tensor, what: str, hint: str = "",
                       known_mistakes: dict[str, torch.Tensor] | None = None) -> None:
    """``got`` must equal ``expected`` on all but MAX_MISMATCHED_IMAGES of the images. The message
    names a mistake of ``known_mistakes`` (description -> the images it gives) only when ``got``
    matches those images; otherwise it shows ``hint``."""
    __tracebackhide__ = True  # pytest: the message matters, not this helper
    got = expect_tensor(got, what, shape=tuple(expected.shape))
    differ = _differing_pixels(got, expected)
    images = differ.any(dim=1)
    if images.float().mean().item() > MAX_MISMATCHED_IMAGES:
        worst = int(differ.sum(dim=1).argmax())
        matches = [name for name, wrong in (known_mistakes or {}).items() if _same_images(got, wrong)]
        explanation = (" Your images are what " + " or ".join(matches) + " gives.") if matches else (
            f" {hint}" if hint else "")
        raise AssertionError(
            f"{what} differs from the expected adversarial images on {int(images.sum())} of {len(images)} images "
            f"({differ.float().mean().item():.1%} of all pixels; image {worst} differs on {int(differ[worst].sum())} "
            f"of its {differ.shape[1]} pixels)." + explanation)


def per_sample_norms(delta: torch.Tensor, p: float) -> torch.Tensor:
    return delta.flatten(1).norm(p=p, dim=1)


@pytest.mark.points(3)
@pytest.mark.hidden
def test_fgsm_matches_torchattacks(sub, victim, model, digits):
    """Untargeted FGSM on the test digits equals torchattacks' FGSM (eps 0.05 and 0.1)."""
    x, y = digits
    for eps in (0.05, 0.1):
        expect_same_images(sub.fgsm(victim, x, y, eps), torchattacks_result("fgsm", model, x, y, eps=eps),
                           f"fgsm(model, x, y, eps={eps})",
                           hint="x_adv = clamp(x + eps * sign(grad_x CE(model(x), y)), 0, 1).")


@pytest.mark.points(3)
@pytest.mark.hidden
def test_pgd_linf_matches_torchattacks(sub, victim, model, digits):
    """Untargeted L-inf PGD (no random start) equals torchattacks' PGD for two settings."""
    x, y = digits
    for eps, alpha, steps in ((0.1, 0.02, 10), (0.2, 0.05, 20)):
        expect_same_images(
            sub.pgd_linf(victim, x, y, eps, alpha, steps),
            torchattacks_result("pgd_linf", model, x, y, eps=eps, alpha=alpha, steps=steps),
            f"pgd_linf(model, x, y, eps={eps}, alpha={alpha}, steps={steps})",
            hint="start at x; each step adds alpha * sign(gradient) to the current iterate, projects onto the "
                 "eps-ball around the original x, clamps to [0, 1]; return the last projected iterate.")


@pytest.mark.points(3)
@pytest.mark.hidden
def test_pgd_l2_matches_torchattacks(sub, victim, model, digits):
    """Untargeted L2 PGD (normalised steps, no random start) equals torchattacks' PGDL2."""
    x, y = digits
    for eps, alpha, steps in ((0.5, 0.1, 10), (1.0, 0.25, 20)):
        expect_same_images(
            sub.pgd_l2(victim, x, y, eps, alpha, steps),
            torchattacks_result("pgd_l2", model, x, y, eps=eps, alpha=alpha, steps=steps),
            f"pgd_l2(model, x, y, eps={eps}, alpha={alpha}, steps={steps})",
            hint="each step adds alpha * g / ||g||_2 (the gradient normalised per image), then projects onto "
                 "the L2 ball around the original x and clamps to [0, 1].")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_targeted_attacks_match_torchattacks(sub, victim, model, digits):
    """Targeted FGSM, L-inf PGD and L2 PGD (labels = target classes) equal torchattacks' targeted mode."""
    x, y = digits
    target = (y + 1) % 10
    hint = ("If your untargeted attacks pass, look at the targeted branch: with targeted=True the attack "
            "ascends -CE(model(x), target), i.e. it descends the target's loss.")
    wrong_sign = "ascending +CE(model(x), target) (the untargeted objective, with the targets as labels)"
    calls = (("fgsm", (0.2,), {"eps": 0.2}), ("pgd_linf", (0.3, 0.075, 20), {"eps": 0.3, "alpha": 0.075, "steps": 20}),
             ("pgd_l2", (1.5, 0.375, 20), {"eps": 1.5, "alpha": 0.375, "steps": 20}))
    for name, args, params in calls:
        expect_same_images(getattr(sub, name)(victim, x, target, *args, targeted=True),
                           torchattacks_result(name, model, x, target, targeted=True, **params),
                           f"{name}(..., {', '.join(f'{k}={v}' for k, v in params.items())}, targeted=True)", hint,
                           known_mistakes={wrong_sign: torchattacks_result(name, model, x, target, **params)})


@pytest.mark.points(2)
@pytest.mark.hidden
def test_pgd_stays_in_ball_and_pixel_range(sub, victim, digits):
    """With large steps, every PGD result (L-inf and L2, untargeted and targeted) lies in the
    eps-ball around its own input and in [0, 1]."""
    x, y = digits
    for targeted in (False, True):
        labels = (y + 3) % 10 if targeted else y
        for name, p, eps, alpha in (("pgd_linf", float("inf"), 0.1, 0.08), ("pgd_l2", 2.0, 0.5, 0.4)):
            call = f"{name}(model, x, labels, eps={eps}, alpha={alpha}, steps=10, targeted={targeted})"
            x_adv = expect_tensor(getattr(sub, name)(victim, x, labels, eps, alpha, 10, targeted=targeted), call,
                                  shape=tuple(x.shape))
            norms = per_sample_norms(x_adv - x, p)
            outside = int((norms > eps + 1e-5).sum())
            assert outside == 0, (
                f"{call}: {outside} of {len(x)} images end outside the eps-ball (largest norm "
                f"{norms.max().item():.4f} > eps = {eps}). Project after every step, and return the projected iterate.")
            assert x_adv.min() >= 0 and x_adv.max() <= 1, (
                f"{call} leaves the pixel range [0, 1]: values in [{x_adv.min().item():.3f}, {x_adv.max().item():.3f}].")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_pgd_drives_accuracy_down(sub, victim, model, digits, attach_images):
    """Accuracy of the classifier on the PGD examples is at most 5% (L-inf eps 0.2, alpha 0.05,
    20 steps; L2 eps 1.0, alpha 0.25, 20 steps), and L-inf PGD beats FGSM at the same eps."""
    x, y = digits

    def accuracy_on(images: torch.Tensor) -> float:
        with torch.no_grad():
            return (model(images).argmax(dim=1) == y).float().mean().item()

    fgsm_accuracy = accuracy_on(torchattacks_result("fgsm", model, x, y, eps=0.2))
    for name, eps, alpha in (("pgd_linf", 0.2, 0.05), ("pgd_l2", 1.0, 0.25)):
        x_adv = expect_tensor(getattr(sub, name)(victim, x, y, eps, alpha, 20), f"{name}(...)", shape=tuple(x.shape))
        accuracy = accuracy_on(x_adv)
        attach_images(f"clean digits (top) and your {name} examples (bottom), eps {eps}",
                      torch.cat([x[:16], x_adv[:16].clamp(0, 1)]), nrow=16)
        assert accuracy <= MAX_ACCURACY_UNDER_PGD, (
            f"after {name} with eps={eps}, alpha={alpha}, 20 steps, the classifier is still right on "
            f"{accuracy:.1%} of the test digits; a correct attack brings it to at most {MAX_ACCURACY_UNDER_PGD:.0%}.")
        if name == "pgd_linf":
            assert accuracy < fgsm_accuracy, (
                f"L-inf PGD leaves an accuracy of {accuracy:.1%}, not below FGSM's {fgsm_accuracy:.1%} at the same eps.")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_targeted_attacks_reach_and_approach_target(sub, victim, model, digits):
    """Targeted PGD (target = (label + 1) mod 10) makes at least 90% of the digits classified as
    their target (L-inf eps 0.3, L2 eps 1.5; 20 steps of eps / 4), and raises the target's
    probability for at least 95% of them."""
    x, y = digits
    target = (y + 1) % 10
    with torch.no_grad():
        clean_p = model(x).softmax(dim=1).gather(1, target[:, None]).squeeze(1)
    for name, eps in (("pgd_linf", 0.3), ("pgd_l2", 1.5)):
        x_adv = expect_tensor(getattr(sub, name)(victim, x, target, eps, eps / 4, 20, targeted=True),
                              f"{name}(..., targeted=True)", shape=tuple(x.shape))
        with torch.no_grad():
            logits = model(x_adv)
        success = (logits.argmax(dim=1) == target).float().mean().item()
        closer = (logits.softmax(dim=1).gather(1, target[:, None]).squeeze(1) > clean_p).float().mean().item()
        assert closer >= MIN_SHARE_CLOSER_TO_TARGET, (
            f"{name} with targeted=True raises the target class's probability for only {closer:.1%} of the digits: "
            "it moves away from the target. A targeted attack descends the target's loss.")
        assert success >= MIN_TARGETED_SUCCESS, (
            f"{name} with targeted=True, eps={eps}: only {success:.1%} of the digits are classified as their target; "
            f"expected at least {MIN_TARGETED_SUCCESS:.0%}.")


@pytest.mark.points(1)
@pytest.mark.hidden
def test_input_gradient(sub, victim, model, digits):
    """input_gradient(model, x, labels) is the gradient of the batch-mean cross-entropy with respect
    to x (shape of x); with targeted=True it is minus that gradient."""
    x, y = digits
    x = x[:40]
    target = (y[:40] + 1) % 10
    for labels, targeted in ((y[:40], False), (target, True)):
        point = x.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(F.cross_entropy(model(point), labels), point)
        expected = -expected if targeted else expected
        expect_close(sub.input_gradient(victim, x, labels, targeted=targeted), expected,
                     f"input_gradient(model, x, labels, targeted={targeted}) on 40 digits", rtol=1e-4, atol=1e-7,
                     hint="Expected the gradient of F.cross_entropy(model(x), labels) (mean over the batch) with "
                          "respect to x, negated when targeted=True.",
                     known_mistakes={"summing the cross-entropy over the batch instead of averaging it":
                                     expected * len(x),
                                     "the opposite sign": -expected})


@pytest.mark.points(1)
@pytest.mark.hidden
def test_pixels_the_model_ignores_stay_unchanged(sub, worker, device, digits):
    """On a model that does not look at the image border (its gradient there is exactly 0), every
    attack leaves the border pixels as they are: sign(0) = 0, and an L2 step has a zero component
    there."""
    blind = worker.import_course("assignments.adversarial.model", "load_border_blind_classifier")(device=str(device))
    x, y = digits
    border = torch.ones(8, 8, dtype=torch.bool, device=x.device)
    border[1:-1, 1:-1] = False
    for name, params in (("fgsm", (0.1,)), ("pgd_linf", (0.1, 0.02, 10)), ("pgd_l2", (0.5, 0.1, 10))):
        x_adv = expect_tensor(getattr(sub, name)(blind, x, y, *params), f"{name}(...)", shape=tuple(x.shape))
        moved = ~((x_adv[..., border] - x[..., border]).abs() <= 1e-6)  # NaN counts as moved
        assert not moved.any(), (
            f"{name}(...) changed {int(moved.sum())} pixels where the gradient of the loss is exactly zero "
            f"(the model does not look at them); they must stay as they are: sign(0) = 0 (torch.sign), and "
            "nothing should divide by the gradient itself.")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_attacks_use_eval_mode(sub, victim, digits):
    """Given a model left in train mode (dropout active), fgsm, pgd_linf and pgd_l2 return what they
    return for the same model in eval mode: they call model.eval()."""
    x, y = digits
    hint = ("the model was handed over in train mode, where its dropout layers are random; "
            "call model.eval() before computing gradients.")
    for name, params in (("fgsm", (0.1,)), ("pgd_linf", (0.1, 0.02, 10)), ("pgd_l2", (0.5, 0.1, 10))):
        victim.eval()
        in_eval_mode = expect_tensor(getattr(sub, name)(victim, x, y, *params), f"{name}(...)", shape=tuple(x.shape))
        victim.train()
        expect_same_images(getattr(sub, name)(victim, x, y, *params), in_eval_mode,
                           f"{name} on a model in train mode, compared with the same call in eval mode", hint)


@pytest.mark.points(2)
@pytest.mark.hidden
def test_attacks_leave_model_and_input_untouched(sub, worker, victim, model, digits):
    """Every attack returns a detached tensor, and leaves the caller's x and the model as it
    found them: the same weights, no .grad on the parameters, requires_grad unchanged."""
    x, y = digits
    x = x[:50]
    y = y[:50]
    calls = (("fgsm", (0.1,)), ("pgd_linf", (0.1, 0.02, 5)), ("pgd_l2", (0.5, 0.1, 5)))
    for name, params in calls:
        held_x = worker.hold(x)  # the very tensor the attack receives, kept in the worker to look at after
        x_adv = getattr(sub, name)(victim, held_x, y, *params)
        expect_detached(expect_tensor(x_adv, f"{name}(...)", shape=tuple(x.shape)), f"the tensor {name} returns")
        expect_unchanged(worker.tensor_state(held_x), x, f"the input x given to {name}")
        state = worker.module_state(victim)
        assert not state.with_grad(), (
            f"after {name}, the model's parameters {state.with_grad()} have a .grad: the attack accumulated "
            "gradients in the model. Use torch.autograd.grad(loss, x), or clear them (model.zero_grad()).")
        frozen = sorted(k for k, flag in state.requires_grad.items() if not flag)
        assert not frozen, f"after {name}, the parameters {frozen} no longer require gradients: leave them as they were."
    expected = model.state_dict()
    got = worker.module_state(victim)
    changed = sorted(k for k in expected if k in got.parameters
                     and not torch.equal(got.parameters[k].to(expected[k].device), expected[k]))
    changed += sorted(k for k in expected if k in got.buffers and not torch.equal(got.buffers[k].to(expected[k].device),
                                                                                   expected[k]))
    assert not changed, f"the attacks changed the model's weights {changed}."


@pytest.mark.points(1)
@pytest.mark.hidden
def test_batched_and_single_calls_agree(sub, victim, digits):
    """Attacking a batch gives, for each image, what attacking that image alone gives (FGSM, L-inf
    and L2 PGD): nothing in the attack mixes the samples of a batch."""
    x, y = digits
    x, y = x[:6], y[:6]
    for name, params in (("fgsm", (0.1,)), ("pgd_linf", (0.1, 0.02, 10)), ("pgd_l2", (0.5, 0.1, 10))):
        batched = expect_tensor(getattr(sub, name)(victim, x, y, *params), f"{name} on 6 images", shape=tuple(x.shape))
        for i in range(len(x)):
            single = expect_tensor(getattr(sub, name)(victim, x[i:i + 1], y[i:i + 1], *params),
                                   f"{name} on image {i} alone", shape=(1, *x.shape[1:]))
            # One image alone has a 6x larger gradient (mean over the batch), but its sign and
            # direction, hence the attack, are the same.
            assert (single[0] - batched[i]).abs().max() <= 1e-4, (
                f"{name}: image {i} attacked alone differs from the same image attacked in a batch of 6 (by up to "
                f"{(single[0] - batched[i]).abs().max().item():.4f}). Norms and projections must be per sample.")


@pytest.mark.points(2)
@pytest.mark.hidden
def test_robust_accuracy(sub, victim, model, digits):
    """robust_accuracy(model, x, y, attack, batch_size, **kwargs) equals the accuracy on the
    attack's examples counted over all 297 digits, with a last batch smaller than the others."""
    x, y = digits
    for name, kwargs in (("fgsm", {"eps": 0.1}), ("pgd_linf", {"eps": 0.1, "alpha": 0.02, "steps": 10})):
        attack = getattr(sub, name)
        correct = 0
        batch_accuracies = []
        for start in range(0, len(x), 64):
            x_adv = expect_tensor(attack(victim, x[start:start + 64], y[start:start + 64], **kwargs), f"{name}(...)")
            with torch.no_grad():
                right = int((model(x_adv).argmax(dim=1) == y[start:start + 64]).sum())
            correct += right
            batch_accuracies.append(right / len(x_adv))
        expected = correct / len(x)
        got = expect_scalar(sub.robust_accuracy(victim, x, y, attack, batch_size=64, **kwargs),
                            f"robust_accuracy(model, x, y, {name}, batch_size=64)")
        expect_scalar_close(got, expected, f"robust_accuracy with {name} and batch_size=64 on {len(x)} digits",
                            atol=1e-6, hint="Count the correct predictions over all inputs and divide by N once.",
                            known_mistakes={"averaging the accuracies of the batches (the last batch holds 41 digits, "
                                            "so its accuracy weighs too much)": sum(batch_accuracies) / len(batch_accuracies)})


@pytest.mark.points(1)
@pytest.mark.hidden
@pytest.mark.cuda
def test_cuda_and_cpu_agree(sub, worker, digits):
    """On the GPU, the attacks give the same images as on the CPU (up to rounding)."""
    x, y = (t.cpu() for t in digits)
    load = worker.import_course("assignments.adversarial.model", "load_classifier")
    on_cpu, on_gpu = load(device="cpu"), load(device="cuda")
    for name, params in (("fgsm", (0.1,)), ("pgd_linf", (0.1, 0.02, 10)), ("pgd_l2", (0.5, 0.1, 10))):
        cpu = expect_tensor(getattr(sub, name)(on_cpu, x, y, *params), f"{name} on the CPU")
        gpu = expect_tensor(getattr(sub, name)(on_gpu, x.cuda(), y.cuda(), *params), f"{name} on the GPU")
        assert gpu.device.type == "cuda", f"{name} returned a tensor on {gpu.device} for inputs on the GPU."
        expect_same_images(gpu.cpu(), cpu, f"{name} on the GPU compared with the CPU")
