"""Practical 5: adversarial attacks (FGSM, L-inf PGD, L2 PGD) on the course's digit classifier."""

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from assignments.adversarial.data import load_digit_images
from assignments.adversarial.model import load_classifier


@contextmanager
def _frozen(model: nn.Module):
    """Temporarily switch off requires_grad on the parameters, so that backward() only fills
    x.grad; the flags are restored afterwards, whatever happens."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def input_gradient(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, targeted: bool = False) -> torch.Tensor:
    """Gradient w.r.t. x of +CE(model(x), labels) (untargeted) or -CE(model(x), labels) (targeted)."""
    sign = -1.0 if targeted else 1.0
    x_leaf = x.detach().clone().requires_grad_(True)
    with _frozen(model), torch.enable_grad():
        objective = sign * F.cross_entropy(model(x_leaf), labels, reduction="mean")
        objective.backward()
    return x_leaf.grad.detach()


def _per_sample_l2_norm(t: torch.Tensor) -> torch.Tensor:
    """||t_i||_2 of each sample, shaped (B, 1, 1, ...) so that it broadcasts against t."""
    return t.flatten(start_dim=1).norm(dim=1).view(-1, *[1] * (t.dim() - 1))


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """x + clamp(x_adv - x, -eps, eps)."""
    return x + (x_adv - x).clamp(-eps, eps)


def project_l2(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """x + (x_adv - x) * min(1, eps / ||x_adv - x||_2), per sample."""
    delta = x_adv - x
    norm = _per_sample_l2_norm(delta)
    outside = norm > eps
    scale = torch.where(outside, eps / torch.where(outside, norm, torch.ones_like(norm)), torch.ones_like(norm))
    return x + delta * scale


def fgsm(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, eps: float, targeted: bool = False) -> torch.Tensor:
    """clamp(x + eps * sign(g), 0, 1)."""
    model.eval()
    x0 = x.detach()
    return (x0 + eps * input_gradient(model, x0, labels, targeted).sign()).clamp(0, 1).detach()


def _linf_step(grad: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha * grad.sign()


def _l2_step(grad: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha * grad / (_per_sample_l2_norm(grad) + 1e-10)


def _pgd(model, x, labels, eps, alpha, steps, targeted, step_fn, project_fn) -> torch.Tensor:
    model.eval()
    x0 = x.detach().clone()
    x_adv = x0.clone()  # no random start
    for _ in range(steps):
        g = input_gradient(model, x_adv, labels, targeted)
        x_adv = project_fn(x_adv + step_fn(g, alpha), x0, eps).clamp(0, 1).detach()
    return x_adv


def pgd_linf(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, eps: float, alpha: float, steps: int,
             targeted: bool = False) -> torch.Tensor:
    """L-inf PGD from x_0 = x: x <- clamp(project_linf(x + alpha * sign(g), x_orig, eps), 0, 1)."""
    return _pgd(model, x, labels, eps, alpha, steps, targeted, _linf_step, project_linf)


def pgd_l2(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, eps: float, alpha: float, steps: int,
           targeted: bool = False) -> torch.Tensor:
    """L2 PGD from x_0 = x: x <- clamp(project_l2(x + alpha * g / (||g|| + 1e-10), x_orig, eps), 0, 1)."""
    return _pgd(model, x, labels, eps, alpha, steps, targeted, _l2_step, project_l2)


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(dim=1)


def accuracy(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of inputs whose argmax logit equals the label."""
    return float((_predict(model, x) == labels).double().mean())


def robust_accuracy(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, attack, batch_size: int = 100,
                    **attack_kwargs) -> float:
    """Accuracy on attack(model, xb, yb, **attack_kwargs), batch by batch, over all N inputs."""
    hits = torch.cat([
        _predict(model, attack(model, xb, yb, **attack_kwargs)) == yb
        for xb, yb in zip(x.split(batch_size), labels.split(batch_size))
    ])
    return hits.sum().item() / len(x)


if __name__ == "__main__":
    _, _, x_test, y_test = load_digit_images()
    classifier = load_classifier()
    print(f"clean accuracy {accuracy(classifier, x_test, y_test):.3f}")
    for eps in (0.05, 0.1, 0.2):
        print(f"eps={eps}: FGSM {robust_accuracy(classifier, x_test, y_test, fgsm, eps=eps):.3f}, "
              f"L-inf PGD {robust_accuracy(classifier, x_test, y_test, pgd_linf, eps=eps, alpha=eps / 4, steps=20):.3f}")
    for eps in (0.5, 1.0, 2.0):
        print(f"eps={eps}: L2 PGD "
              f"{robust_accuracy(classifier, x_test, y_test, pgd_l2, eps=eps, alpha=eps / 4, steps=20):.3f}")
    targets = (y_test + 1) % 10
    for name, attack, eps in (("L-inf", pgd_linf, 0.3), ("L2", pgd_l2, 1.5)):
        adv = attack(classifier, x_test, targets, eps=eps, alpha=eps / 4, steps=20, targeted=True)
        print(f"targeted {name} PGD eps={eps}: success {accuracy(classifier, adv, targets):.3f}")
