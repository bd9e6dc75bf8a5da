# %% [markdown]
# # Practical 5: Adversarial attacks
#
# FGSM and PGD (L-inf and L2, untargeted and targeted) against the course's digit classifier,
# and the accuracy of the classifier under attack.

# %%
import torch
import torch.nn.functional as F
from torch import nn

from assignments.adversarial.data import load_digit_images
from assignments.adversarial.model import load_classifier


# %% [markdown]
# ## 1. The gradient of the attack objective


# %%
def input_gradient(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, targeted: bool = False) -> torch.Tensor:
    """Gradient, with respect to x, of the objective the attack ascends (same shape as x).

    Untargeted: +cross_entropy(model(x), labels). Targeted (labels are the targets):
    -cross_entropy(model(x), labels). The cross-entropy is averaged over the batch.
    """
    x_var = x.detach().clone().requires_grad_(True)
    logits = model(x_var)
    loss = F.cross_entropy(logits, labels)
    if targeted:
        loss = -loss
    # autograd.grad only computes d loss / d x: the parameters' .grad stay untouched.
    (grad,) = torch.autograd.grad(loss, x_var)
    return grad.detach()


# %% [markdown]
# ## 2. Projections onto the eps-balls


# %%
def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """The point of the L-inf ball B(x, eps) closest to x_adv, for each sample of the batch."""
    delta = torch.clamp(x_adv - x, min=-eps, max=eps)
    return x + delta


def _per_sample_l2_norm(t: torch.Tensor) -> torch.Tensor:
    """||t_i||_2 of each sample, shaped (B, 1, 1, ...) so that it broadcasts against t."""
    return t.flatten(start_dim=1).norm(dim=1).view(-1, *[1] * (t.dim() - 1))


def project_l2(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """The point of the L2 ball B(x, eps) closest to x_adv, for each sample of the batch."""
    delta = x_adv - x
    norms = _per_sample_l2_norm(delta)
    # eps / 0 = inf, and min(1, inf) = 1: a zero perturbation stays zero.
    factor = torch.clamp(eps / norms, max=1.0)
    return x + delta * factor


# %% [markdown]
# ## 3. FGSM


# %%
def fgsm(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, eps: float, targeted: bool = False) -> torch.Tensor:
    """Fast Gradient Sign Method. Returns x_adv, same shape as x, in [0, 1]."""
    model.eval()
    x_orig = x.detach()
    grad = input_gradient(model, x_orig, labels, targeted=targeted)
    x_adv = x_orig + eps * grad.sign()
    return torch.clamp(x_adv, 0.0, 1.0).detach()


# %% [markdown]
# ## 4. Projected gradient descent


# %%
def pgd_linf(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, eps: float, alpha: float, steps: int,
             targeted: bool = False) -> torch.Tensor:
    """L-inf PGD: x_{t+1} = clamp(Proj_Binf(x, eps)(x_t + alpha * sign(g_t)), 0, 1)."""
    model.eval()
    x_orig = x.detach().clone()
    x_adv = x_orig.clone()
    for _ in range(steps):
        grad = input_gradient(model, x_adv, labels, targeted=targeted)
        x_adv = x_adv + alpha * grad.sign()
        x_adv = project_linf(x_adv, x_orig, eps)
        x_adv = torch.clamp(x_adv, 0.0, 1.0).detach()
    return x_adv


def pgd_l2(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, eps: float, alpha: float, steps: int,
           targeted: bool = False) -> torch.Tensor:
    """L2 PGD: x_{t+1} = clamp(Proj_B2(x, eps)(x_t + alpha * g_t / ||g_t||_2), 0, 1), per sample."""
    model.eval()
    x_orig = x.detach().clone()
    x_adv = x_orig.clone()
    for _ in range(steps):
        grad = input_gradient(model, x_adv, labels, targeted=targeted)
        grad_norm = _per_sample_l2_norm(grad)
        x_adv = x_adv + alpha * grad / (grad_norm + 1e-10)
        x_adv = project_l2(x_adv, x_orig, eps)
        x_adv = torch.clamp(x_adv, 0.0, 1.0).detach()
    return x_adv


# %% [markdown]
# ## 5. Accuracy under attack


# %%
def accuracy(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of the inputs that the model classifies as `labels` (a float in [0, 1])."""
    with torch.no_grad():
        predictions = model(x).argmax(dim=1)
    return (predictions == labels).float().mean().item()


def robust_accuracy(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, attack, batch_size: int = 100,
                    **attack_kwargs) -> float:
    """Accuracy of the model on attack(model, x_batch, labels_batch, **attack_kwargs), over all inputs."""
    n = len(x)
    correct = 0
    for start in range(0, n, batch_size):
        xb = x[start:start + batch_size]
        yb = labels[start:start + batch_size]
        x_adv = attack(model, xb, yb, **attack_kwargs)
        with torch.no_grad():
            predictions = model(x_adv).argmax(dim=1)
        correct += int((predictions == yb).sum().item())
    return correct / n


# %% [markdown]
# ## 6. Try it

# %% tags=["skip"]
if __name__ == "__main__":
    _, _, x_test, y_test = load_digit_images()
    classifier = load_classifier()
    print(f"clean accuracy {accuracy(classifier, x_test, y_test):.3f}")
    for eps in (0.05, 0.1, 0.2):
        fgsm_acc = robust_accuracy(classifier, x_test, y_test, fgsm, eps=eps)
        pgd_acc = robust_accuracy(classifier, x_test, y_test, pgd_linf, eps=eps, alpha=eps / 4, steps=20)
        print(f"eps={eps}: FGSM accuracy {fgsm_acc:.3f}, L-inf PGD accuracy {pgd_acc:.3f}")
    for eps in (0.5, 1.0, 2.0):
        l2_acc = robust_accuracy(classifier, x_test, y_test, pgd_l2, eps=eps, alpha=eps / 4, steps=20)
        print(f"eps={eps}: L2 PGD accuracy {l2_acc:.3f}")
