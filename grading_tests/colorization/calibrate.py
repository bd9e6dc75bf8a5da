"""Calibrate the training test: ``python grading_tests/colorization/calibrate.py [--submission FILE] 0 1 2 ...``.

Trains a solution (the reference by default; ``--submission`` takes a student's ``.py`` or
``.ipynb``, e.g. one of examples/colorization/correct/) with each training seed exactly as one run of
test_training_beats_the_baselines does (one torch thread, like the worker) and prints the held-out
L1 and PSNR against the hint-propagation baseline. The test's first run uses the grading seed, a
second run (only after a miss) the grading seed + 1000: give both seeds to see what a grading
seed gets. Instructor-only (lives with the hidden tests). Runs the submission's top-level code
in this process, so only for trusted files.
"""

import sys
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parents[1] / "solutions" / "colorization")]

from test_hidden import HINT_DRAWS, TRAIN_STEPS, grader_hints, psnr, reference_xdog  # noqa: E402

from assignments.colorization.data import load_crops, to_gray  # noqa: E402
from assignments.colorization.models import hint_propagation_baseline  # noqa: E402
from autograder.submission import load_trusted_solution  # noqa: E402


args = sys.argv[1:]
if "--submission" in args:
    at = args.index("--submission")
    solution, name = load_trusted_solution(Path(args[at + 1])), Path(args[at + 1]).stem
    del args[at:at + 2]
else:
    import colorize as solution  # noqa: E402

    name = "reference"
torch.set_num_threads(1)
train, held_out = load_crops()
held_out = held_out.repeat(HINT_DRAWS, 1, 1, 1)
lineart = torch.stack([reference_xdog(to_gray(image)) for image in held_out])[:, None]
for seed in map(int, args):
    torch.manual_seed(seed)
    generator = solution.train_colorizer(train, steps=TRAIN_STEPS, seed=seed)
    rng = torch.Generator().manual_seed(seed)
    hints = torch.stack([grader_hints(image, 10, rng) for image in held_out])
    output = solution.colorize(generator, lineart, hints)
    propagated = hint_propagation_baseline(hints, (32, 32))
    l1, l1_p = (output - held_out).abs().mean().item(), (propagated - held_out).abs().mean().item()
    print(f"{name} seed {seed}: L1 {l1:.4f} / propagation {l1_p:.4f} = {l1 / l1_p:.3f}; "
          f"PSNR gain {psnr(output, held_out) - psnr(propagated, held_out):+.2f} dB", flush=True)
