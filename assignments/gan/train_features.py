"""Train the feature network of the reference precision/recall, deterministically, and print its pin.

    python -m assignments.gan.train_features            # writes features_digits.pt
    python -m assignments.gan.train_features --out /tmp/f.pt --check

With ``--check`` the weights are written elsewhere and compared with the pinned file: the same
torch version on the same kind of CPU reproduces it byte for byte. Never downloads anything.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import torch
from torch import nn

from assignments.gan.data import load_digits_pm1
from assignments.gan.models import FEATURE_WEIGHTS, FEATURE_WEIGHTS_SHA256, FeatureNet, sha256

SEED = 0
EPOCHS = 60
BATCH_SIZE = 64
LR = 1e-3
NOISE_STD = 0.1  # inputs jittered during training: generated digits are not on the 1/8 grid


def train(epochs: int = EPOCHS, seed: int = SEED) -> tuple[FeatureNet, float]:
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x_train, y_train, x_test, y_test = load_digits_pm1()
    model = FeatureNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(x_train), generator=generator).split(BATCH_SIZE):
            noisy = x_train[batch] + NOISE_STD * torch.randn(x_train[batch].shape, generator=generator)
            loss = nn.functional.cross_entropy(model(noisy), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    return model, accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=FEATURE_WEIGHTS)
    parser.add_argument("--check", action="store_true", help="fail unless the result equals the pinned weights")
    args = parser.parse_args(argv)
    model, accuracy = train()
    buffer = io.BytesIO()  # not the file: torch names the archive's records after the file name
    torch.save(model.state_dict(), buffer)
    args.out.write_bytes(buffer.getvalue())
    digest = sha256(args.out)
    print(f"test accuracy {accuracy:.4f}; wrote {args.out}; SHA-256 {digest}")
    if args.check and digest != FEATURE_WEIGHTS_SHA256:
        print(f"differs from the pinned weights ({FEATURE_WEIGHTS_SHA256})")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
