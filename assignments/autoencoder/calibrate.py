"""Margins of the autoencoder's training tests, measured (instructors, in the repository checkout).

For each seed, trains the models of the hidden training tests as they do (30 epochs on jittered
copies of the training digits, evaluated on jittered copies of the test digits; the seed stands
for the grader's secret draw), with a submission's own code, and prints the quantity each test
thresholds. It prints the same quantities for two "models" that learn nothing:

- ``lookup``: returns the nearest of the 1797 course digits (what a submission can import);
- ``nearest training``: returns the nearest image of the training set it was given.

    python -m assignments.autoencoder.calibrate --seeds 0-9
    python -m assignments.autoencoder.calibrate --seeds 0-4 --submission examples/autoencoder/correct/explicit_modules.py
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from assignments import parse_seeds
from assignments.autoencoder.data import jitter_digits, load_digits_split, ood_inputs, pca_baseline_mse

ROOT = Path(__file__).resolve().parents[2]
EPOCHS, LATENT, DENOISING_LATENT, NOISE_STD, VAE_KL_WEIGHT = 30, 8, 32, 0.5, 0.1


class Nearest(torch.nn.Module):
    """Reconstructs an input as the nearest of a fixed set of images (no learning)."""

    def __init__(self, images: torch.Tensor):
        super().__init__()
        self.images = images

    def forward(self, x):
        return self.images[torch.cdist(x, self.images).argmin(dim=1)]


def _load(path: Path):
    spec = importlib.util.spec_from_file_location("calibrated_submission", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(sub, seed: int) -> dict[str, dict[str, float]]:
    x_train, x_test = load_digits_split()
    x_train, x_test = jitter_digits(x_train, 2 * seed), jitter_digits(x_test, 2 * seed + 1)
    pca = pca_baseline_mse(x_train, x_test, LATENT)
    mean_only = pca_baseline_mse(x_train, x_test, 0)
    noisy = (x_test + NOISE_STD * torch.randn(x_test.shape, generator=torch.Generator().manual_seed(7))).clamp(0, 1)
    noisy_mse = ((noisy - x_test) ** 2).mean().item()

    def trained(noise_std=0.0, latent=LATENT):
        torch.manual_seed(seed)
        model = sub.Autoencoder(64, latent)
        sub.train_autoencoder(model, x_train, epochs=EPOCHS, noise_std=noise_std)
        return model.eval()

    torch.manual_seed(seed)
    vae = sub.VAE(64, LATENT)
    sub.train_vae(vae, x_train, epochs=EPOCHS, kl_weight=VAE_KL_WEIGHT)
    vae.eval()
    models = {
        "submission": (trained(), trained(NOISE_STD, DENOISING_LATENT), lambda x: vae.decode(vae.encode(x)[0])),
        "lookup": (Nearest(torch.tensor(load_digits().data / 16.0, dtype=torch.float32)),) * 3,
        "nearest training": (Nearest(x_train),) * 3,
    }
    no_noise = trained(latent=DENOISING_LATENT)
    ood = {"noise": ood_inputs(len(x_test), "noise", seed=3), "inverted": 1.0 - x_test}
    rows = {}
    with torch.no_grad():
        for name, (autoencoder, denoiser, vae_reconstruct) in models.items():
            errors = {kind: ((torch.cat([x_test, x]) - autoencoder(torch.cat([x_test, x]))) ** 2).sum(dim=1)
                      for kind, x in ood.items()}
            labels = [0] * len(x_test) + [1] * len(x_test)
            rows[name] = {
                "mse/pca": ((autoencoder(x_test) - x_test) ** 2).mean().item() / pca,
                "denoised/noisy": ((denoiser(noisy) - x_test) ** 2).mean().item() / noisy_mse,
                "vae/mean": ((vae_reconstruct(x_test) - x_test) ** 2).mean().item() / mean_only,
                "auroc": min(roc_auc_score(labels, e.numpy()) for e in errors.values()),
            }
        # A known mistake of the denoising test: training without noise.
        rows["submission"]["no noise: denoised/noisy"] = ((no_noise(noisy) - x_test) ** 2).mean().item() / noisy_mse
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4", help="a range a-b or a comma-separated list")
    parser.add_argument("--submission", type=Path, default=ROOT / "solutions/autoencoder/autoencoder.py")
    args = parser.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    torch.set_num_threads(1)
    sub = _load(args.submission)
    print(f"{args.submission} (the thresholds are in grading_tests/autoencoder/test_hidden.py)")
    for seed in seeds:
        start = time.perf_counter()
        for name, row in measure(sub, seed).items():
            cells = "  ".join(f"{key} {value:.3f}" for key, value in row.items())
            print(f"seed {seed:>3}  {name:<17} {cells}", flush=True)
        print(f"          ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
