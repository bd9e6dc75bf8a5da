"""Train the fixed generator with the losses of a ``gan.py``, deterministically, and save its weights.

    python -m assignments.gan.train_generator gan.py                 # writes generator.pt next to it
    python -m assignments.gan.train_generator gan.py --out g.pt --steps 20000

The script imports the given file and calls its ``discriminator_loss(real_logits, fake_logits)``
and ``generator_loss(fake_logits)``: the course's ``Generator`` and baseline ``Discriminator``
are trained with your losses (Adam, lr 1e-3, betas (0.5, 0.999), batches of 64 training digits,
one discriminator step then one generator step). It uses one thread and a fixed seed, so the
same file gives the same weights, byte for byte, on the same torch version and kind of CPU. The
weights are written with ``torch.save(generator.state_dict(), ...)`` through a buffer (the bytes do
not depend on the file name), and scored as the grader scores them.

This is the baseline; the final project asks you to improve on it your own way.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import sys
import time
from pathlib import Path

import torch

from assignments.gan.checkpoint import grading_seed, points_fraction, score
from assignments.gan.data import load_digits_pm1
from assignments.gan.models import LATENT_DIM, Discriminator, Generator

SEED = 0
STEPS = 12_000
BATCH_SIZE = 64
LR = 1e-3
BETAS = (0.5, 0.999)


def load_module(path: Path):
    """Import a student's gan.py (or any file) by path."""
    spec = importlib.util.spec_from_file_location("gan_to_train", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def train(losses, steps: int = STEPS, seed: int = SEED, log_every: int = 0) -> Generator:
    """The fixed generator trained against the baseline discriminator with ``losses``'s two losses."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x_train, _, _, _ = load_digits_pm1()
    generator, discriminator = Generator(), Discriminator()
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=LR, betas=BETAS)
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=LR, betas=BETAS)
    rng = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        real = x_train[torch.randint(len(x_train), (BATCH_SIZE,), generator=rng)]
        fake = generator(torch.randn(BATCH_SIZE, LATENT_DIM, generator=rng))

        d_loss = losses.discriminator_loss(discriminator(real), discriminator(fake.detach()))
        d_optimizer.zero_grad()
        d_loss.backward()
        d_optimizer.step()

        g_loss = losses.generator_loss(discriminator(fake))
        g_optimizer.zero_grad()
        g_loss.backward()
        g_optimizer.step()
        if log_every and step % log_every == 0:
            print(f"step {step}: D loss {d_loss.item():.3f}, G loss {g_loss.item():.3f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    return generator.eval()


def state_dict_bytes(generator: Generator) -> bytes:
    buffer = io.BytesIO()  # not the file: torch names the archive's records after the file name
    torch.save(generator.state_dict(), buffer)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("module", type=Path, help="the gan.py whose losses to train with")
    parser.add_argument("--out", type=Path, default=None, help="default: generator.pt next to the module")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--log-every", type=int, default=1000)
    args = parser.parse_args(argv)
    out = args.out or args.module.with_name("generator.pt")
    generator = train(load_module(args.module), steps=args.steps, seed=args.seed, log_every=args.log_every)
    data = state_dict_bytes(generator)
    out.write_bytes(data)
    metrics = score(generator, grading_seed())
    print(f"wrote {out} ({len(data)} bytes, SHA-256 {hashlib.sha256(data).hexdigest()}); "
          f"precision {metrics['precision']:.4f}, recall {metrics['recall']:.4f}, F-score {metrics['f_score']:.4f}; "
          f"{points_fraction(metrics['f_score']):.0%} of the checkpoint's points")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
