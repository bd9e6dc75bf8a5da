"""The submitted generator checkpoint: reading it, checking it, scoring it.

The trust boundary:

* ``read_state_dict`` runs in the **student's** process (the grader calls it there through
  ``worker.import_course``): it unpickles ``generator.pt`` with ``torch.load(weights_only=True)``
  and returns a plain {name: tensor} dict, which crosses to the grader by value.
* ``clean_state_dict`` runs in the **grader's** process and trusts nothing it got: it refuses
  anything but a flat {str: tensor} mapping, strips a leading ``module.`` (``DataParallel``),
  checks the key set and every shape against the fixed ``Generator``, caps the size, and
  returns float32 copies. ``load_generator`` then loads them with ``strict=True`` into the
  grader's own ``Generator``. Nothing the student's process wrote is ever unpickled by the grader.
* ``score`` samples the grader's generator with the grader's seed and measures the reference
  precision/recall; ``points_fraction`` maps the F-score to a share of the points (the declared
  curve, ``SCORE_CURVE``).

Students can run exactly the grader's checks and scoring on their file:

    python -m assignments.gan.checkpoint generator.pt
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import torch

from assignments.gan.data import load_digits_pm1
from assignments.gan.metric import evaluate, sample
from assignments.gan.models import Generator

CHECKPOINT_NAME = "generator.pt"
MAX_FILE_BYTES = 8 * 1024 * 1024  # the fixed generator's state dict is 0.25 MB
MAX_TENSOR_BYTES = 4 * 1024 * 1024
N_SAMPLES = 1500  # generated samples scored against the 1500 training digits
# Points as a function of the F-score (feature space, k = 3): piecewise linear between these
# (F-score, fraction of the points) knots, flat outside. Calibration (grading seed and 10 other
# sampling seeds) is in the grading tests' comments.
SCORE_CURVE = ((0.30, 0.0), (0.70, 1.0))


class CheckpointError(ValueError):
    """The checkpoint cannot be loaded into the fixed generator; the message says why."""


def read_state_dict(path: str = CHECKPOINT_NAME) -> dict:
    """Runs in the student's process: ``generator.pt`` -> {name: tensor}, read with weights_only=True."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no {path.name} in the submission, next to gan.py (or gan.ipynb). Hand in a folder or a zip that "
            f"holds both, with {path.name} saved by torch.save(generator.state_dict(), '{path.name}').")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{path.name} is {size / 2**20:.1f} MB; the fixed generator's weights take 0.25 MB. "
                         "Save generator.state_dict() only, not an optimizer or a whole training state.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise ValueError(
            f"{path.name} could not be read with torch.load(..., weights_only=True) ({type(exc).__name__}: "
            f"{str(exc)[:300]}). Save the state dict, torch.save(generator.state_dict(), '{path.name}'), "
            "not the module itself.") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path.name} holds a {type(state).__name__}, not a state dict. Save "
                         f"torch.save(generator.state_dict(), '{path.name}').")
    return {key: value for key, value in state.items()}


def clean_state_dict(state: object) -> dict[str, torch.Tensor]:
    """Runs in the grader: a checked float32 copy of ``state`` that fits the fixed ``Generator``
    exactly, or ``CheckpointError`` saying what differs."""
    if not isinstance(state, dict):
        raise CheckpointError(f"the checkpoint should be a state dict ({{name: tensor}}), not {type(state).__name__}.")
    expected = Generator().state_dict()
    cleaned: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"the checkpoint should map parameter names to tensors; it holds {key!r}: {type(value).__name__}. "
                "Save generator.state_dict(), not a dictionary of other things.")
        if value.numel() * value.element_size() > MAX_TENSOR_BYTES:
            raise CheckpointError(f"the tensor {key!r} is far larger than any parameter of the fixed generator.")
        name = key.removeprefix("module.")  # saved from nn.DataParallel / DistributedDataParallel
        if name in cleaned:
            raise CheckpointError(f"the parameter {name!r} appears twice (with and without 'module.').")
        cleaned[name] = value
    missing = [k for k in expected if k not in cleaned]
    unexpected = [k for k in cleaned if k not in expected]
    wrong_shape = [f"{k}: {tuple(cleaned[k].shape)} instead of {tuple(v.shape)}"
                   for k, v in expected.items() if k in cleaned and cleaned[k].shape != v.shape]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:10])}{' ...' if len(unexpected) > 10 else ''}")
        if wrong_shape:
            parts.append(f"wrong shapes: {'; '.join(wrong_shape)}")
        raise CheckpointError(
            "the checkpoint does not fit the fixed generator (assignments.gan.models.Generator: "
            f"100 -> 128 -> 256 -> 64): {'; '.join(parts)}. Train that exact module and save its state_dict().")
    for name, value in cleaned.items():
        if not value.is_floating_point():
            raise CheckpointError(f"the parameter {name!r} has dtype {value.dtype}; parameters are floating point.")
        if not torch.isfinite(value).all():
            raise CheckpointError(f"the parameter {name!r} contains NaN or infinite values: training diverged.")
    return {name: cleaned[name].detach().to(device="cpu", dtype=torch.float32).clone() for name in expected}


def load_generator(state: dict[str, torch.Tensor], device: str | torch.device = "cpu") -> Generator:
    """The grader's own fixed ``Generator`` with the checked weights, in eval mode."""
    generator = Generator()
    generator.load_state_dict(state, strict=True)
    return generator.to(device).eval()


def score(generator: Generator, seed: int, device: str | torch.device = "cpu", n: int = N_SAMPLES,
          space: str = "features") -> dict[str, float]:
    """Reference precision, recall and F-score of n samples (the grader's seed) against the training digits."""
    x_train, _, _, _ = load_digits_pm1()
    return evaluate(x_train.to(device), sample(generator, n, seed, device), space=space)


def points_fraction(f: float, curve: tuple = SCORE_CURVE) -> float:
    """The share of the points an F-score earns: piecewise linear through ``curve``, flat outside."""
    (x0, y0), *rest = curve
    if f <= x0:
        return y0
    for x1, y1 in rest:
        if f <= x1:
            return y0 + (y1 - y0) * (f - x0) / (x1 - x0)
        x0, y0 = x1, y1
    return y0


def grading_seed() -> int:
    config = tomllib.loads(Path(__file__).with_name("assignment.toml").read_text(encoding="utf-8"))
    return int(config["grading"]["seed"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a generator checkpoint and score it like the grader.")
    parser.add_argument("checkpoint", nargs="?", default=CHECKPOINT_NAME)
    parser.add_argument("--seed", type=int, default=None, help="sampling seed (default: the grader's)")
    args = parser.parse_args(argv)
    seed = grading_seed() if args.seed is None else args.seed
    try:
        generator = load_generator(clean_state_dict(read_state_dict(args.checkpoint)))
    except (OSError, ValueError) as exc:
        print(f"{args.checkpoint}: {exc}")
        return 1
    metrics = score(generator, seed)
    print(f"{args.checkpoint}: precision {metrics['precision']:.4f}, recall {metrics['recall']:.4f}, "
          f"F-score {metrics['f_score']:.4f} (seed {seed}); "
          f"{points_fraction(metrics['f_score']):.0%} of the checkpoint's points")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
