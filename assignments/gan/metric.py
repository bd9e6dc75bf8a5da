"""The reference precision and recall of a generative model (Kynkaenniemi et al., 2019).

Convention of this course (the handout states it):

* each sample's radius is the Euclidean distance to its k-th nearest neighbour **in its own set,
  itself excluded** (k = 3);
* a sample lies on the other set's manifold when it is within (``<=``) the radius of at least
  one sample of that set;
* precision = the share of generated samples on the real manifold (quality);
  recall = the share of real samples on the generated manifold (diversity);
* F-score = 2PR / (P + R).

This is the convention of the official code (squared distances, ``<=``) and of torch-fidelity's
``prc_features_to_metric``; ``prdc`` uses a strict ``<``, which gives the same numbers on
continuous features and differs only on exact ties (integer-valued data).

The implementation is batched: distances are computed block by block (a block of rows against the
whole other set), never as full N x N matrices, works on whatever device its inputs are on, and
compares squared distances (same order, no square roots). The real-vs-generated block serves both
directions, so three distance passes in all: real-real, generated-generated, real-generated.

Samples are compared in the 64-d feature space of the pinned digit classifier
(``models.load_feature_net``), or, as an option, in pixel space.
"""

from __future__ import annotations

import torch

from assignments.gan.models import LATENT_DIM, load_feature_net

K = 3
BLOCK_ELEMENTS = 1 << 24  # distances held at once: 16M (64 MB in float32)


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, d), (m, d) -> (n, m) squared Euclidean distances, ||a||^2 + ||b||^2 - 2 a.b, clamped at 0."""
    out = torch.addmm((b * b).sum(dim=1).unsqueeze(0), a, b.T, beta=1.0, alpha=-2.0)
    return out.add_((a * a).sum(dim=1).unsqueeze(1)).clamp_min_(0.0)


def _rows_per_block(n_columns: int) -> int:
    return max(1, BLOCK_ELEMENTS // max(1, n_columns))


def knn_radii(features: torch.Tensor, k: int = K) -> torch.Tensor:
    """(N,) distance of each sample to its k-th nearest neighbour in ``features``, itself excluded."""
    if not 1 <= k < len(features):
        raise ValueError(f"k must be between 1 and N - 1 = {len(features) - 1}, got {k}")
    radii = []
    for block in features.split(_rows_per_block(len(features))):
        d2 = squared_distances(block, features)
        # The smallest distance of each row is the sample to itself (0): the (k+1)-th smallest is
        # the k-th neighbour excluding the sample (a duplicate of it still counts as a neighbour).
        radii.append(d2.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii).sqrt()


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = K) -> tuple[float, float]:
    """``(precision, recall)`` of ``fake`` (generated, (M, d)) against ``real`` ((N, d))."""
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"expected (N, d) and (M, d) features, got {tuple(real.shape)} and {tuple(fake.shape)}")
    fake = fake.to(device=real.device, dtype=real.dtype)
    real_r2, fake_r2 = knn_radii(real, k) ** 2, knn_radii(fake, k) ** 2
    fake_covered = torch.zeros(len(fake), dtype=torch.bool, device=real.device)
    real_covered = []
    rows = _rows_per_block(len(fake))
    for block, block_r2 in zip(real.split(rows), real_r2.split(rows)):
        d2 = squared_distances(block, fake)  # (block, M)
        fake_covered |= (d2 <= block_r2.unsqueeze(1)).any(dim=0)  # generated inside a real ball
        real_covered.append((d2 <= fake_r2.unsqueeze(0)).any(dim=1))  # real inside a generated ball
    precision = fake_covered.sum().item() / len(fake)
    recall = torch.cat(real_covered).sum().item() / len(real)
    return precision, recall


def f_score(precision: float, recall: float) -> float:
    """2PR / (P + R), 0 when both are 0."""
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@torch.no_grad()
def embed(x: torch.Tensor, space: str = "features") -> torch.Tensor:
    """Samples (N, 64) in [-1, 1] -> the space the metric compares them in: the pinned
    classifier's 64-d features (default) or the pixels themselves (``space="pixels"``)."""
    if space == "pixels":
        return x.detach().float()
    if space != "features":
        raise ValueError(f"space must be 'features' or 'pixels', got {space!r}")
    return load_feature_net(x.device).features(x.float())


def evaluate(real: torch.Tensor, fake: torch.Tensor, space: str = "features", k: int = K) -> dict[str, float]:
    """``{"precision", "recall", "f_score"}`` of generated samples against real ones, both (N, 64)."""
    precision, recall = precision_recall(embed(real, space), embed(fake, space), k)
    return {"precision": precision, "recall": recall, "f_score": f_score(precision, recall)}


@torch.no_grad()
def sample(generator: torch.nn.Module, n: int, seed: int, device: str | torch.device = "cpu",
           psi: float = 1.0) -> torch.Tensor:
    """n samples G(psi * z), z ~ N(0, I) drawn on the CPU from ``seed`` (the same on every device)."""
    z = torch.randn(n, LATENT_DIM, generator=torch.Generator().manual_seed(seed))
    generator = generator.to(device).eval()
    return generator(psi * z.to(device))
