"""Calibrate the training test: ``python grading_tests/colorization/calibrate.py [--submission FILE] 0 1 2 ...``.

For each grading seed given, runs test_training_beats_the_baselines' procedure on a solution (the
reference by default; ``--submission`` takes a student's ``.py`` or ``.ipynb``, e.g. one of
examples/colorization/correct/): train on the grader's photo crops, evaluate on their held-out
crops, and retry with the next training seed (grading seed + 1000 * run) after a run that misses
a bar, up to TRAINING_RUNS runs. Prints one JSON line per grading seed with each run's held-out
L1 over hint propagation's, its PSNR gain and the CPU seconds it took (one torch thread, like the
worker). Instructor-only (lives with the hidden tests). Runs the submission's top-level code in
this process, so only for trusted files.
"""

import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

from test_hidden import (HINT_DRAWS, TRAIN_STEPS, TRAINING_RUNS, grader_hints, load_grader_crops,  # noqa: E402
                         missed_bars, psnr, reference_xdog)

from assignments.colorization.data import to_gray  # noqa: E402
from assignments.colorization.models import hint_propagation_baseline  # noqa: E402
from autograder.checks import training_seed  # noqa: E402
from autograder.submission import load_trusted_solution  # noqa: E402


def main(args: list[str]) -> None:
    path = HERE.parents[1] / "solutions" / "colorization" / "colorize.py"
    if "--submission" in args:
        at = args.index("--submission")
        path = Path(args[at + 1])
        del args[at:at + 2]
    solution = load_trusted_solution(path)
    torch.set_num_threads(1)
    train, held_out = load_grader_crops()
    held_out = held_out.repeat(HINT_DRAWS, 1, 1, 1)
    lineart = torch.stack([reference_xdog(to_gray(image)) for image in held_out])[:, None]
    for grading_seed in map(int, args):
        runs = []
        for run in range(TRAINING_RUNS):
            seed = training_seed(grading_seed, run)
            started = time.process_time()
            torch.manual_seed(seed)
            generator = solution.train_colorizer(train, steps=TRAIN_STEPS, seed=seed)
            rng = torch.Generator().manual_seed(seed)
            hints = torch.stack([grader_hints(image, 10, rng) for image in held_out])
            output = solution.colorize(generator, lineart, hints)
            propagated = hint_propagation_baseline(hints, (32, 32))
            ratio = ((output - held_out).abs().mean() / (propagated - held_out).abs().mean()).item()
            miss = missed_bars(output, held_out, lineart, hints)
            runs.append(dict(seed=seed, ratio=round(ratio, 3), gain=round(psnr(output, held_out) - psnr(propagated, held_out), 2),
                             passed=miss is None, cpu=round(time.process_time() - started)))
            if miss is None:
                break
        print(json.dumps(dict(solution=path.name, grading_seed=grading_seed, passed=runs[-1]["passed"], runs=runs)),
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
