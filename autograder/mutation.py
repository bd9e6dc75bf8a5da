"""Mutation testing of the grading tests: does every line of the reference solution matter to them?

    python -m autograder.mutation ASSIGNMENT [--jobs N] [--out DIR] [--timeout S] [--recheck | --resume]
    nox -s mutation -- ASSIGNMENT

Cosmic Ray generates the mutants (one small edit each: an operator swapped, a number changed, a
condition negated, a loop skipped), applies each one to a copy of the reference solution and runs
the assignment's grading tests on it, in the student's in-process local mode and stopping at the
first failure. A mutant the tests fail is *killed*; one they pass *survived*: a student who made
that edit would get full marks.

Cosmic Ray rather than mutmut: it mutates the file on disk and runs any test command, so the
grading tests run on the mutated file exactly as on a student's, through the same ``--submission``
option; mutmut 3 instead rewrites the module into trampolines it imports itself, which does not fit
a file that is graded as a submission. What this module adds around it is what Cosmic Ray cannot
know: only the solution regions (``# BEGIN SOLUTION`` ... ``# END SOLUTION``, what a student
writes) are mutated; mutants listed in ``examples/<name>/equivalent_mutants.toml`` (edits that
cannot change anything the handout specifies) are not run and are reported apart; and the work is
split over ``--jobs`` shards, each with its own copy and Cosmic Ray session, run side by side.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from autograder.config import load_config

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
SOLUTION_LINE = "# SOLUTION"  # otter's one-line marker
# Operators left out: bit operators and shifts on floats and tensors raise TypeError on the first
# call (always killed, they only cost time), and the exception/decorator operators have nothing
# to act on in solution regions.
EXCLUDED_OPERATORS = (
    r"core/ReplaceBinaryOperator_.*_(BitOr|BitAnd|BitXor|LShift|RShift)",
    r"core/ReplaceBinaryOperator_(BitOr|BitAnd|BitXor|LShift|RShift)_.*",
    r"core/ExceptionReplacer",
    r"core/RemoveDecorator",
)


@dataclass
class Mutant:
    """One mutation and what became of it."""

    job_id: str
    operator: str
    line: int  # first changed line of the solution file
    old: str  # the changed lines before ...
    new: str  # ... and after the edit (stripped), as in mutants.toml's [[mutant.replace]]
    outcome: str = "pending"  # killed | survived | timeout | equivalent | pending
    why: str = ""  # for an equivalent mutant: why it cannot matter


def solution_lines(source: str) -> set[int]:
    """1-based numbers of the lines inside solution regions (the markers themselves excluded) and
    of the lines marked ``# SOLUTION``."""
    inside, lines = False, set()
    for number, text in enumerate(source.splitlines(), start=1):
        stripped = text.strip()
        if stripped.startswith(BEGIN):
            inside = True
        elif stripped.startswith(END):
            inside = False
        elif inside or stripped.endswith(SOLUTION_LINE):
            lines.add(number)
    return lines


def changed_lines(original: str, mutated: str) -> tuple[list[int], str, str]:
    """The 1-based original line numbers an edit touches, and the old and new text of those lines."""
    a, b = original.splitlines(), mutated.splitlines()
    touched, old, new = [], [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        touched += list(range(i1 + 1, max(i2, i1 + 1) + 1))
        old += [line.strip() for line in a[i1:i2]]
        new += [line.strip() for line in b[j1:j2]]
    return touched, "\n".join(old), "\n".join(new)


def load_equivalents(path: Path) -> list[dict]:
    """``[[equivalent]]`` entries: ``old``, ``new`` (stripped changed lines, or a list of such
    alternatives; without ``new``, every edit of ``old``) and ``why``."""
    if not path.exists():
        return []
    entries = tomllib.loads(path.read_text(encoding="utf-8")).get("equivalent", [])
    for entry in entries:
        if not {"old", "why"} <= set(entry) or not str(entry["why"]).strip():
            raise ValueError(f"{path}: every [[equivalent]] needs old, a non-empty why and (unless every edit of "
                             f"that line is equivalent, as for a logging call) new: {entry}")
    return entries


def _equivalent(entry: dict, old: str, new: str) -> bool:
    """Whether a mutant (its changed lines, stripped) is one ``entry`` lists; an entry without
    ``new`` covers every edit of its ``old`` lines, one with a list of ``new`` each of them."""
    if entry["old"].strip() != old:
        return False
    if "new" not in entry:
        return True
    alternatives = [entry["new"]] if isinstance(entry["new"], str) else entry["new"]
    return new in {alternative.strip() for alternative in alternatives}


def _cosmic_config(module: str, test_command: str, timeout: float) -> str:
    from cosmic_ray.config import serialize_config

    return serialize_config({
        "module-path": module,
        "timeout": timeout,
        "excluded-modules": [],
        "test-command": test_command,
        "distributor": {"name": "local"},
    })


def _solution(name: str) -> Path:
    config = load_config(name)
    return config.repo_root / "solutions" / name / f"{config.module}.py"


def equivalents_path(name: str) -> Path:
    return load_config(name).repo_root / "examples" / name / "equivalent_mutants.toml"


def _test_command(name: str) -> str:
    tests = load_config(name).repo_root / "grading_tests" / name
    return (f"{sys.executable} -m pytest {tests} -x -q -p no:cacheprovider --assignment {name} "
            f"--submission {_solution(name).name} --grading-device cpu")


def _enumerate(folder: Path, module: str):
    """A fresh Cosmic Ray session in ``folder`` for ``module`` (relative to it): its open WorkDB,
    and its work items keyed by operator and occurrence (job ids are random, these are not)."""
    from cosmic_ray.commands import init
    from cosmic_ray.work_db import WorkDB

    db = WorkDB(str(folder / "session.sqlite"), WorkDB.Mode.create)
    cwd = os.getcwd()
    os.chdir(folder)  # Cosmic Ray stores the module path as given: relative, so each shard mutates its own copy
    try:
        init([Path(module)], db, {})
    finally:
        os.chdir(cwd)
    items = {f"{item.mutations[0].operator_name}:{item.mutations[0].occurrence}": item for item in db.pending_work_items}
    return db, items


def classify(source: str, items: dict, equivalents: list[dict]) -> tuple[list[Mutant], dict[str, str]]:
    """The mutants to report (in file order) and, for every other work item, why it is not run."""
    import re

    from cosmic_ray.mutating import mutate_code
    from cosmic_ray.plugins import get_operator

    editable = solution_lines(source)
    excluded = re.compile("|".join(f"(?:{pattern})$" for pattern in EXCLUDED_OPERATORS))
    mutants, skipped, seen = [], {}, set()
    for key, item in sorted(items.items(), key=lambda kv: (kv[1].mutations[0].start_pos, kv[0])):
        spec = item.mutations[0]
        if excluded.match(spec.operator_name):
            skipped[key] = "operator left out"
            continue
        mutated = mutate_code(source, get_operator(spec.operator_name)(**spec.operator_args), spec.occurrence)
        touched, old, new = changed_lines(source, mutated) if mutated else ([], "", "")
        if not touched or not set(touched) <= editable:
            skipped[key] = "outside the solution regions"
        elif mutated in seen:
            skipped[key] = "same code as another mutant"
        else:
            seen.add(mutated)
            mutant = Mutant(key, spec.operator_name, touched[0], old, new)
            why = next((e["why"] for e in equivalents if _equivalent(e, old, new)), None)
            if why is not None:
                mutant.outcome, mutant.why = "equivalent", why
                skipped[key] = "equivalent"
            mutants.append(mutant)
    return mutants, skipped


def previously_killed(report: Path) -> set[tuple[str, str, str]]:
    """The identities (see ``_identity``) of the mutants a previous run's report.json records as
    killed or timed out: ``--recheck`` does not run them again. This assumes the tests only became
    stricter since; a full run (without --recheck) is the measure."""
    if not report.is_file():
        return set()
    mutants = json.loads(report.read_text(encoding="utf-8")).get("mutants", [])
    return {_identity(Mutant(**m)) for m in mutants if m.get("outcome") in ("killed", "timeout")}


def _identity(mutant: Mutant) -> tuple:
    """What makes a mutant the same one in two runs: the same operator at the same occurrence and
    line, with the same text before and after (the same edit on a repeated line, such as a loss
    total in two training loops, is two mutants). A changed solution file changes lines or
    occurrences, and its mutants are run again."""
    return mutant.job_id, mutant.line, mutant.old, mutant.new


def plan(name: str, out: Path, jobs: int, timeout: float, carried: set | None = None) -> list[Mutant]:
    """Create ``jobs`` shard folders under ``out``, each with a copy of the solution folder, a
    Cosmic Ray config and session in which all but that shard's share of the mutants is marked
    as not to run. Mutants in ``carried`` (see ``previously_killed``) count as killed, unrun."""
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    solution = _solution(name)
    source = solution.read_text(encoding="utf-8")
    equivalents = load_equivalents(equivalents_path(name))
    for shard_folder in out.glob("shard-*"):
        shutil.rmtree(shard_folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / "solution.sha256").write_text(_digest(source))
    mutants: list[Mutant] = []
    for shard in range(jobs):
        folder = out / f"shard-{shard}"
        shutil.copytree(solution.parent, folder)
        (folder / "cosmic-ray.toml").write_text(_cosmic_config(solution.name, _test_command(name), timeout))
        db, items = _enumerate(folder, solution.name)
        try:
            if shard == 0:
                mutants, skipped = classify(source, items, equivalents)
                for mutant in mutants:
                    if mutant.outcome == "pending" and _identity(mutant) in (carried or ()):
                        mutant.outcome, mutant.why = "killed", "killed in the previous run (--recheck)"
                        skipped[mutant.job_id] = "killed before"
                to_run = [m.job_id for m in mutants if m.outcome == "pending"]
            mine = set(to_run[shard::jobs])
            for key, item in items.items():
                if key not in mine:
                    reason = skipped.get(key, "another shard's")
                    db.set_result(item.job_id, WorkResult(output=reason, worker_outcome=WorkerOutcome.SKIPPED))
        finally:
            db.close()
    return mutants


def _digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def replan(name: str, out: Path) -> tuple[list[Mutant], int]:
    """The mutants and the number of shards of the run under ``out``, rebuilt from its Cosmic Ray
    sessions without changing them (``--resume``: their pending work items are run next)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome

    jobs = len(list(out.glob("shard-*/session.sqlite")))
    if not jobs:
        raise SystemExit(f"nothing to resume in {out}: run without --resume first")
    with use_db(out / "shard-0" / "session.sqlite", WorkDB.Mode.open) as db:
        items = {f"{item.mutations[0].operator_name}:{item.mutations[0].occurrence}": item for item in db.work_items}
        killed_before = {f"{item.mutations[0].operator_name}:{item.mutations[0].occurrence}"
                         for item, result in db.completed_work_items
                         if result.worker_outcome == WorkerOutcome.SKIPPED and result.output == "killed before"}
    solution = _solution(name)
    source = solution.read_text(encoding="utf-8")
    recorded = out / "solution.sha256"
    if not recorded.is_file() or recorded.read_text().strip() != _digest(source):
        raise SystemExit(f"{solution} changed since the run in {out} started: run again without --resume")
    for shard in range(jobs):  # a mutant interrupted half-way leaves its edit in the shard's copy
        shutil.copyfile(solution, out / f"shard-{shard}" / solution.name)
    mutants, _ = classify(source, items, load_equivalents(equivalents_path(name)))
    for mutant in mutants:
        if mutant.job_id in killed_before:
            mutant.outcome, mutant.why = "killed", "killed in the previous run (--recheck)"
    return mutants, jobs


def baseline(name: str, out: Path) -> float:
    """Run the grading tests on the unmutated copy: they must pass, or no verdict means anything."""
    folder = out / "shard-0"
    started = time.monotonic()
    run = subprocess.run(_test_command(name).split(), cwd=folder, capture_output=True, text=True,
                         env=_env())
    if run.returncode != 0:
        raise SystemExit(f"the grading tests fail on the unmutated reference solution:\n{run.stdout[-3000:]}")
    return time.monotonic() - started


def _env() -> dict:
    # One thread per shard: the shards are the parallelism, and torch's own threads would fight them.
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def execute(out: Path, jobs: int) -> None:
    """Run every shard's Cosmic Ray session, side by side."""
    processes = [subprocess.Popen([sys.executable, "-m", "cosmic_ray.cli", "exec", "cosmic-ray.toml", "session.sqlite"],
                                  cwd=out / f"shard-{shard}", env=_env(), stdout=subprocess.DEVNULL)
                 for shard in range(jobs)]
    for process in processes:
        if process.wait() != 0:
            raise SystemExit(f"cosmic-ray exec failed (exit {process.returncode}) in {out}")


def collect(out: Path, mutants: list[Mutant], jobs: int) -> list[Mutant]:
    """Read every shard's results into ``mutants`` (by operator and occurrence)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    by_key = {m.job_id: m for m in mutants}
    for shard in range(jobs):
        with use_db(out / f"shard-{shard}" / "session.sqlite", WorkDB.Mode.open) as db:
            for item, result in db.completed_work_items:
                if result.worker_outcome == WorkerOutcome.SKIPPED:
                    continue
                spec = item.mutations[0]
                mutant = by_key.get(f"{spec.operator_name}:{spec.occurrence}")
                if mutant is None:
                    continue
                if result.output == "timeout":
                    mutant.outcome = "timeout"
                elif result.test_outcome == TestOutcome.SURVIVED:
                    mutant.outcome = "survived"
                else:
                    mutant.outcome = "killed"
    return mutants


def summarise(name: str, mutants: list[Mutant], seconds: float) -> dict:
    count = {outcome: sum(m.outcome == outcome for m in mutants)
             for outcome in ("killed", "timeout", "survived", "equivalent", "pending")}
    scored = count["killed"] + count["timeout"] + count["survived"]
    count["rechecked"] = sum(m.why.startswith("killed in the previous run") for m in mutants)
    return {"assignment": name, "mutants": len(mutants), **count,
            "score": round(100 * (count["killed"] + count["timeout"]) / scored, 1) if scored else None,
            "seconds": round(seconds)}


def write_report(out: Path, summary: dict, mutants: list[Mutant]) -> Path:
    survivors = [m for m in mutants if m.outcome == "survived"]
    rechecked = sum(m.why.startswith("killed in the previous run") for m in mutants)
    lines = [f"# Mutation testing: {summary['assignment']}", "",
             "| mutants | killed | timed out | survived | equivalent | not run | score | run time |",
             "|---|---|---|---|---|---|---|---|",
             f"| {summary['mutants']} | {summary['killed']} | {summary['timeout']} | {summary['survived']} | "
             f"{summary['equivalent']} | {summary['pending']} | {summary['score']}% | {summary['seconds']} s |", "",
             "Score: killed and timed-out mutants over all but the equivalent ones."
             + (f" {rechecked} of the killed ones were killed in the previous run and not run again (--recheck)."
                if rechecked else ""), "",
             f"## Survivors ({len(survivors)})", "",
             "Each one is an edit a student could make and still get full marks: kill it with a test, or",
             "list it in `examples/<name>/equivalent_mutants.toml` with why it cannot matter.", ""]
    for m in survivors:
        lines += [f"- line {m.line}, `{m.operator}`", "  ```", f"  - {m.old}", f"  + {m.new}", "  ```"]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "report.json").write_text(json.dumps({"summary": summary, "mutants": [asdict(m) for m in mutants]},
                                                indent=1), encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="shards run side by side")
    parser.add_argument("--out", type=Path, default=None, help="default: build/mutation/ASSIGNMENT")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per mutant (default: 3x the unmutated run, at least 60)")
    parser.add_argument("--recheck", action="store_true",
                        help="run only the mutants the previous report did not record as killed (after adding tests)")
    parser.add_argument("--resume", action="store_true",
                        help="go on with an interrupted run where it stopped (same shards, same time-out)")
    opts = parser.parse_args(argv)
    if opts.resume and opts.recheck:
        parser.error("--resume goes on with the run that was interrupted, --recheck or not: give it alone")
    out = (opts.out or load_config(opts.assignment).repo_root / "build" / "mutation" / opts.assignment).resolve()
    started = time.monotonic()
    if opts.resume:
        mutants, opts.jobs = replan(opts.assignment, out)
        print(f"{opts.assignment}: going on with the run in {out} ({len(mutants)} mutants, {opts.jobs} shard(s))",
              flush=True)
    else:
        carried = previously_killed(out / "report.json") if opts.recheck else set()
        mutants = plan(opts.assignment, out, opts.jobs, timeout=opts.timeout or 600.0, carried=carried)
        reference_seconds = baseline(opts.assignment, out)
        timeout = opts.timeout or max(60.0, 3 * reference_seconds)
        if opts.timeout is None:
            for shard in range(opts.jobs):
                config_file = out / f"shard-{shard}" / "cosmic-ray.toml"
                config_file.write_text(_cosmic_config(_solution(opts.assignment).name, _test_command(opts.assignment),
                                                      timeout))
        to_run = sum(m.outcome == "pending" for m in mutants)
        print(f"{opts.assignment}: {len(mutants)} mutants in the solution regions, {to_run} to run on {opts.jobs} "
              f"shard(s); the unmutated tests take {reference_seconds:.0f} s (time-out {timeout:.0f} s)", flush=True)
    execute(out, opts.jobs)
    collect(out, mutants, opts.jobs)
    summary = summarise(opts.assignment, mutants, time.monotonic() - started)
    report = write_report(out, summary, mutants)
    print(report.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
