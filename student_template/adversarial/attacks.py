# %% [markdown]
# # Practical 5: Adversarial attacks
#
# A classifier f that is right on a clean image x can often be fooled by a perturbation delta so
# small that a human sees no difference: we look for delta with ||delta||_p <= eps such that
#
# * **untargeted** attack: f(x + delta) != y (any wrong class will do);
# * **targeted** attack: f(x + delta) = t for a chosen target class t != y.
#
# You will implement the projections onto the eps-balls, FGSM, PGD under the L-inf and the L2
# norm (untargeted and targeted), and the accuracy of a model under attack. The victim is a small
# CNN trained on the 8x8 scikit-learn digits (`load_classifier()`: 99.3% clean test accuracy).
# The handout (README.md) lists every function the grader calls and how it is graded.
#
# Keep experiments (plots, long runs) in cells tagged `skip`, or under
# `if __name__ == "__main__":` in the script: the grader imports this file.

# %%
import torch
import torch.nn.functional as F
from torch import nn

from assignments.adversarial.data import load_digit_images
from assignments.adversarial.model import load_classifier

# %% [markdown]
# ## 1. The gradient of the attack objective
#
# Every attack below follows the gradient of the cross-entropy loss with respect to the **input**
# (not the weights). An untargeted attack *ascends* L(f(x), y): it pushes x away from its true
# class. A targeted attack *descends* L(f(x), t): it pulls x toward the target class t. We write
# both as an ascent on an objective: +L(f(x), y) untargeted, -L(f(x), t) targeted.
#
# `torch.autograd.grad` computes the gradient for x only: the model's parameters get no `.grad`,
# so the attack leaves the model exactly as it found it. The model is put in eval mode first:
# in train mode its dropout layers would make the gradient random.


# %%
def input_gradient(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, targeted: bool = False) -> torch.Tensor:
    """Gradient, with respect to x, of the objective the attack ascends (same shape as x).

    Untargeted: +cross_entropy(model(x), labels). Targeted (labels are the targets):
    -cross_entropy(model(x), labels). The cross-entropy is averaged over the batch.
    """
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 2. Projections onto the eps-balls
#
# Both are computed **per sample**: one image's perturbation never affects another's.
#
# * L-inf ball: clip each coordinate of the perturbation to [-eps, eps].
# * L2 ball: if ||x_adv - x||_2 > eps, scale the perturbation down to length eps; otherwise keep it.


# %%
def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """The point of the L-inf ball B(x, eps) closest to x_adv, for each sample of the batch."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def _per_sample_l2_norm(t: torch.Tensor) -> torch.Tensor:
    """||t_i||_2 of each sample, shaped (B, 1, 1, ...) so that it broadcasts against t."""
    return t.flatten(start_dim=1).norm(dim=1).view(-1, *[1] * (t.dim() - 1))


def project_l2(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """The point of the L2 ball B(x, eps) closest to x_adv, for each sample of the batch."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 3. FGSM (Goodfellow et al., 2015)
#
# One step of size eps in the direction of the gradient's sign:
# x_adv = x + eps * sign(grad_x L(f(x), y)), then clamped to the valid pixel range [0, 1].
# With `targeted=True`, `labels` are the targets and the step descends their loss.


# %%
def fgsm(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, eps: float, targeted: bool = False) -> torch.Tensor:
    """Fast Gradient Sign Method. Returns x_adv, same shape as x, in [0, 1]."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 4. Projected gradient descent (Madry et al., 2018)
#
# Start from x_0 = x (no random start) and repeat `steps` times: take a step of size `alpha`,
# project back onto the eps-ball around the **original** x, clamp to [0, 1]. Return the last
# iterate, which is therefore inside the ball and the pixel range.
#
# * L-inf PGD steps along sign(g).
# * L2 PGD steps along g / ||g||_2 (per sample): the normalised gradient of Madry et al. The
#   slides write the raw gradient, eta * g; its size depends on how steep the loss is, so a
#   single step size cannot suit every image. This practical uses the normalised step.


# %%
def pgd_linf(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, eps: float, alpha: float, steps: int,
             targeted: bool = False) -> torch.Tensor:
    """L-inf PGD: x_{t+1} = clamp(Proj_Binf(x, eps)(x_t + alpha * sign(g_t)), 0, 1)."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def pgd_l2(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, eps: float, alpha: float, steps: int,
           targeted: bool = False) -> torch.Tensor:
    """L2 PGD: x_{t+1} = clamp(Proj_B2(x, eps)(x_t + alpha * g_t / ||g_t||_2), 0, 1), per sample."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 5. Accuracy under attack
#
# `accuracy` is the fraction of inputs whose predicted class (argmax of the logits) equals the
# label; with target classes as labels it is the success rate of a targeted attack.
# `robust_accuracy` attacks the data batch by batch with any of the attacks above (its keyword
# arguments are passed on) and returns the accuracy on the adversarial examples, counted over
# all N inputs (the last batch may be smaller).


# %%
def accuracy(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of the inputs that the model classifies as `labels` (a float in [0, 1])."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


def robust_accuracy(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, attack, batch_size: int = 100,
                    **attack_kwargs) -> float:
    """Accuracy of the model on attack(model, x_batch, labels_batch, **attack_kwargs), over all inputs."""
    raise NotImplementedError("not implemented yet: replace this line with your code")


# %% [markdown]
# ## 6. Try it
#
# Attack the test digits with growing eps and watch the accuracy fall. The grader does not run
# this part.

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
