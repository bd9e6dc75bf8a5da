"""Benchmark whole-class grading: ``nox -s benchmark`` (or ``python -m autograder.benchmark``).

Grades N copies of an assignment's sample submissions (reference, blank template, a known-bad
one) several ways, all in the same run, and prints submissions per minute with ratios against
the first configuration (one slot, a fresh interpreter per test process):

* one slot, fresh interpreters (the baseline);
* one slot, test processes forked from a forkserver that imported the engine only;
* one slot, forked from the forkserver as graded today (engine and the grading tests' libraries);
* two slots (or --jobs), prewarmed: scaling on this machine;
* a local Dask cluster with as many workers (loopback), when dask is installed.

Per-submission overhead = wall time per submission minus the time its tests ran (the sum of
the tests' own durations as pytest measured them). Each local configuration runs in a process of
its own, so each starts (and pays for) its own forkserver.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from autograder.config import load_config
from autograder.examples import build_examples
from autograder.grading import grade_batch
from autograder.inputs import SubmissionInput


def _samples(assignment: str, folder: Path, copies: int) -> list[SubmissionInput]:
    config = load_config(assignment)
    examples = build_examples(config, folder / "examples")
    chosen = [e for e in examples if e.name in ("reference", "blank_template")] + \
        [e for e in examples if e.name.startswith("bad_")][:1]
    return [SubmissionInput(f"{e.name}-{i:03d}", e.path) for i in range(copies) for e in chosen][:copies]


def _run(label: str, config, submissions, folder: Path, **options) -> dict:
    out = folder / label.replace(" ", "_").replace(",", "")
    shutil.rmtree(out, ignore_errors=True)
    started = time.monotonic()
    results = grade_batch(config, submissions, out, device="cpu", regrade=True, **options)
    wall = time.monotonic() - started
    tests = sum(t.duration for r in results for t in r.tests)
    return {"label": label, "n": len(results), "wall": wall, "per_minute": 60 * len(results) / wall,
            "per_submission": wall / len(results),
            "overhead": sum(r.execution_time for r in results) / len(results) - tests / len(results),
            "scores": sorted((r.submission, r.score) for r in results)}


def _set_prewarm(value: str) -> None:
    os.environ["AUTOGRADER_PREWARM"] = value


def _run_in_own_process(prewarm: str, label: str, config, submissions, folder: Path, **options) -> dict:
    """_run in a fresh interpreter with AUTOGRADER_PREWARM=prewarm (a forkserver of its own)."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=_set_prewarm,
                             initargs=(prewarm,)) as pool:
        return pool.submit(_run, label, config, submissions, folder, **options).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", default="autoencoder")
    parser.add_argument("-n", "--copies", type=int, default=6, help="submissions graded per configuration")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args(argv)
    config = load_config(args.assignment)
    with tempfile.TemporaryDirectory(prefix="autograder-bench-") as tmp:
        folder = Path(tmp)
        submissions = _samples(args.assignment, folder, args.copies)
        rows = []
        rows.append(_run_in_own_process("0", "1 slot, fresh interpreters", config, submissions, folder, jobs=1))
        rows.append(_run_in_own_process("engine", "1 slot, prewarmed engine only", config, submissions, folder,
                                        jobs=1))
        rows.append(_run_in_own_process("1", "1 slot, prewarmed", config, submissions, folder, jobs=1))
        rows.append(_run_in_own_process("1", f"{args.jobs} slots, prewarmed", config, submissions, folder,
                                        jobs=args.jobs))
        if not args.no_dask:
            try:
                from distributed import LocalCluster
            except ImportError:
                print("(dask not installed: pip install 'dl-autograder[cluster]' to include it)")
            else:
                with LocalCluster(n_workers=args.jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
                    rows.append(_run(f"dask, {args.jobs} local workers", config, submissions, folder,
                                     scheduler=cluster.scheduler_address))
    base = rows[0]
    print(f"\n{args.assignment}: {args.copies} submissions per configuration, {os.cpu_count()} cores")
    print(f"{'configuration':32} {'wall s':>8} {'subs/min':>9} {'speed-up':>9} {'s/sub':>7} {'overhead s/sub':>15}")
    for row in rows:
        print(f"{row['label']:32} {row['wall']:8.1f} {row['per_minute']:9.2f} {base['wall'] / row['wall']:8.2f}x "
              f"{row['per_submission']:7.2f} {row['overhead']:15.2f}")
    same = all(row["scores"] == base["scores"] for row in rows)
    print("same scores in every configuration" if same else "SCORES DIFFER between configurations")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
