"""Flakiness of the agent-quality tests, measured (instructors, in the repository checkout).

For each grading seed, runs the protocol of ``evaluation.MOUSE_CHECK`` / ``CARTPOLE_CHECK``
exactly as the hidden tests do (the worker is seeded with the grading seed, then each run
builds the network, trains it with ``train_dqn`` and is scored by the grader's rollouts), but
makes all the runs, to see every score. Prints the scores, the verdicts and a summary: the
margin of the threshold in standard deviations of the per-run scores, the estimated chance that
one run fails and the chance that the m-of-k verdict fails.

    python -m assignments.reinforcement.calibrate --seeds 0-9
    python -m assignments.reinforcement.calibrate --seeds 0-2 --example bad_replay_keeps_last
    python -m assignments.reinforcement.calibrate --seeds 0-9 --example bad_no_terminal_mask_notebook \
        --checks cartpole --stop-early     # only the runs the hidden test makes

``--example`` takes the name of a known-bad submission of examples/reinforcement/mutants.toml;
``--submission`` a trusted .py or .ipynb (one of examples/reinforcement/correct/, say), run in this
process:

    python -m assignments.reinforcement.calibrate --seeds 0-4 --submission examples/reinforcement/correct/student_notebook.ipynb
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from assignments import parse_seeds
from assignments.reinforcement.evaluation import CHECKS, QualityCheck


def load_example(name: str, folder: Path):
    """The reference solution, or a known-bad submission (as a script, whatever its format in
    the manifest), imported as a module."""
    import tomllib

    from autograder.config import load_config
    from autograder.examples import _apply, manifest_path
    from autograder.templates import solution_path

    config = load_config("reinforcement")
    source = solution_path(config).read_text(encoding="utf-8")
    if name != "reference":
        mutants = {m["name"]: m for m in tomllib.loads(manifest_path(config).read_text(encoding="utf-8"))["mutant"]}
        if name not in mutants:
            raise SystemExit(f"unknown example {name!r}: use reference or one of {', '.join(mutants)}")
        source = _apply(source, mutants[name])
    path = folder / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"dqn_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def binomial_tail(p: float, runs: int, needed: int) -> float:
    """P(fewer than ``needed`` of ``runs`` independent runs pass) when one run fails with
    probability ``p``."""
    return sum(math.comb(runs, k) * (1 - p) ** k * p ** (runs - k) for k in range(needed))


def summarise(check: QualityCheck, all_scores: list[float]) -> str:
    mean, sd = statistics.mean(all_scores), statistics.stdev(all_scores)
    z = (mean - check.threshold) / sd
    p_run = 0.5 * math.erfc(z / math.sqrt(2))  # normal approximation of one run's failure
    return (f"runs {len(all_scores)}: min {min(all_scores):.2f} mean {mean:.2f} max {max(all_scores):.2f} sd {sd:.2f}; "
            f"threshold {check.threshold} is {abs(z):.1f} sd {'below' if z >= 0 else 'above'} the mean: "
            f"P(one run fails) ~ {p_run:.1e}, "
            f"P({check.needed}-of-{check.runs} fails) ~ {binomial_tail(p_run, check.runs, check.needed):.1e}")


def main(argv: list[str] | None = None) -> None:
    from autograder.worker import seed_everything

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0-9", help="grading seeds: 'a-b' or a comma list")
    parser.add_argument("--example", default="reference")
    parser.add_argument("--submission", type=Path, help="a trusted solution file instead of --example")
    parser.add_argument("--checks", default="mouse,cartpole")
    parser.add_argument("--stop-early", action="store_true",
                        help="stop each grading seed once its verdict is known, as the hidden tests do")
    args = parser.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    torch.set_num_threads(1)  # as in the grader's worker
    with tempfile.TemporaryDirectory() as folder:
        if args.submission:
            from autograder.submission import load_trusted_solution

            dqn, args.example = load_trusted_solution(args.submission), args.submission.stem
        else:
            dqn = load_example(args.example, Path(folder))
        for name in args.checks.split(","):
            check = CHECKS[name]
            all_scores, failed = [], []
            for seed in seeds:
                seed_everything(seed)  # what the plugin does in the worker before each test
                start = time.monotonic()
                scores = check.run(dqn, seed, stop_early=args.stop_early)
                elapsed = time.monotonic() - start
                all_scores += scores
                shown = ", ".join(f"{s:.2f}" for s in scores)
                verdict = "pass" if check.passed(scores) else "FAIL"
                if verdict == "FAIL":
                    failed.append(seed)
                print(f"{args.example} {name} seed {seed}: [{shown}] {verdict} ({elapsed / len(scores):.1f} s per run)",
                      flush=True)
            print(f"{args.example} {name}: {len(failed)} of {len(seeds)} grading seeds fail {failed}; "
                  f"{summarise(check, all_scores)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
