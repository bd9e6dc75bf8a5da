"""The ``autograder`` command.

    autograder grade ASSIGNMENT SUBMISSION... --out DIR    grade, write results.json, gradebook.csv, report.html
    autograder report DIR                                   rebuild the HTML report of a graded folder
    autograder check [SUBMISSION] [--assignment NAME] [-- PYTEST ARGS]   public tests, locally
    autograder release [ASSIGNMENT...] [--check]            regenerate (or verify) student templates
    autograder demo [ASSIGNMENT...] --out DIR               grade the example submissions, check verdicts
    autograder gradescope build ASSIGNMENT [--out ZIP]      the Gradescope autograder zip
    autograder list                                          the assignments this checkout has
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from autograder.config import available_assignments, load_config


class _Progress:
    """A rich progress bar (counts, problems, ETA), or one plain line per submission with
    ``--quiet`` / when the output is not a terminal (CI logs)."""

    def __init__(self, console, plain: bool):
        self.console, self.plain = console, plain
        self.bar = self.task = None
        self.problems = 0

    def start(self, total: int, already_done: int) -> None:
        self.console.print(f"{total} submissions: {already_done} already graded (kept), {total - already_done} to grade")
        if self.plain:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.bar = Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("[red]{task.fields[problems]} with problems"), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), console=self.console)
        self.task = self.bar.add_task("grading", total=total - already_done, problems=0)
        self.bar.start()

    def advance(self, result) -> None:
        self.problems += bool(result.error)
        if self.bar is not None:
            self.bar.update(self.task, advance=1, problems=self.problems)
        else:
            flag = f"  [{result.error.splitlines()[0]}]" if result.error else ""
            self.console.print(f"graded {result.submission}: {result.score:g}/{result.max_score:g}{flag}", markup=False)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def check_grade_inputs(submissions: list[Path], out: Path) -> str | None:
    """The one-line reason ``autograder grade`` cannot start with these paths, or None."""
    missing = [str(p) for p in submissions if not p.exists()]
    if missing:
        return f"no such file or folder: {', '.join(missing)}"
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file, not a folder"
    resolved = out.resolve()
    for source in submissions:
        folder = source.resolve()
        if folder.is_dir() and (resolved == folder or resolved.is_relative_to(folder)):
            return (f"--out {out} is inside the submissions folder {source}: a rerun would grade it as a "
                    "student. Choose an output folder outside it.")
    existing = next((p for p in [resolved, *resolved.parents] if p.exists()), None)
    if existing is None or not os.access(existing, os.W_OK | os.X_OK):
        return f"--out {out} cannot be written (no write permission on {existing})"
    return None


def choose_sandbox(mode: str | None, required: bool) -> str | None:
    """Settle the workers' sandbox mode for this batch (passed on to the test processes through
    $AUTOGRADER_SANDBOX) and print it; the reason not to grade, or None."""
    from autograder.sandbox import SANDBOX_DESCRIPTIONS, SANDBOX_ENV, Limits, chosen_sandbox

    if mode:
        os.environ[SANDBOX_ENV] = mode
    try:
        chosen = chosen_sandbox(Limits())
    except ValueError as exc:
        return str(exc)
    if chosen == "none":
        if required:
            return ("--require-sandbox: this machine offers no isolation for student code (run as root, "
                    "allow unprivileged user namespaces: sysctl kernel.unprivileged_userns_clone=1, or use a "
                    "kernel with Landlock ABI 6, Linux 6.12+)")
        print(f"warning: grading without isolation: student code runs as you, with your files ({SANDBOX_DESCRIPTIONS[chosen]})",
              file=sys.stderr)
    else:
        print(f"sandbox: {SANDBOX_DESCRIPTIONS[chosen]}", file=sys.stderr)
    return None


def _cmd_grade(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from autograder.grading import grade_batch
    from autograder.inputs import find_submissions
    from autograder.report import batch_summary, write_report
    from autograder.sandbox import check_worker_user

    config = load_config(args.assignment)
    console = Console(highlight=False)
    problem = check_grade_inputs([Path(s) for s in args.submissions], Path(args.out))
    if problem:
        print(f"autograder grade: {problem}", file=sys.stderr)
        return 2
    if args.worker_user:
        check_worker_user(args.worker_user)
        os.environ["AUTOGRADER_WORKER_USER"] = args.worker_user  # read by the trusted test process
    submissions = find_submissions([Path(s) for s in args.submissions], config.files)
    if not submissions:
        print(f"autograder grade: no submission found in {', '.join(args.submissions)} "
              f"(expected .py, .ipynb or .zip files, or folders)", file=sys.stderr)
        return 2
    problem = choose_sandbox(args.sandbox, args.require_sandbox)
    if problem:
        print(f"autograder grade: {problem}", file=sys.stderr)
        return 2
    progress = _Progress(console, plain=args.quiet or not console.is_terminal)
    try:
        results = grade_batch(config, submissions, Path(args.out), device=args.device, seed=args.seed,
                              tests_dir=Path(args.tests_dir) if args.tests_dir else None, progress=progress,
                              jobs=args.jobs, regrade=args.regrade, scheduler=args.scheduler, per_gpu=args.per_gpu)
    except KeyboardInterrupt as exc:
        progress.stop()
        from autograder.grading import write_gradebook

        write_gradebook(Path(args.out))
        print(f"\ninterrupted: {exc or 'stopped'}. Run the same command again to grade the rest "
              f"(what is graded is kept; the interruption does not count against any submission).", file=sys.stderr)
        return 130
    finally:
        progress.stop()
    summary = batch_summary(results)
    if len(results) <= 40:
        table = Table(title=f"Gradebook: {config.name} ({len(results)} submissions)")
        for column in ("submission", "score", "passed", "problem"):
            table.add_column(column)
        for r in sorted(results, key=lambda r: r.submission):
            passed = sum(t.status == "passed" for t in r.tests)
            table.add_row(r.submission, f"{r.score:g} / {r.max_score:g}", f"{passed}/{len(r.ran)}",
                          (r.error or "").splitlines()[0][:60] if r.error else "")
        console.print(table)
    console.print(f"{summary['count']} submissions: mean {summary['mean']:.2f} / {summary['max_score']:g}, "
                  f"median {summary['median']:g}, {summary['full_marks']} full marks, "
                  f"{summary['with_problem']} with a problem", markup=False)
    for message, count in summary["failures"][:5]:
        console.print(f"  {count:4d} x {message}", markup=False)
    report = None if args.no_report else write_report(Path(args.out))
    console.print(f"Results: {Path(args.out) / '<submission>' / 'results.json'}; gradebook: {Path(args.out) / 'gradebook.csv'}"
                  + (f"; report: {report}" if report else ""), markup=False)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from autograder.report import write_report

    print(f"wrote {write_report(Path(args.out))}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """Build each assignment's examples (reference, blank template, known-bad), grade them and
    compare every verdict with what the example expects."""
    from rich.console import Console
    from rich.table import Table

    from autograder.examples import build_examples, verdict
    from autograder.grading import grade_batch

    console = Console(highlight=False)
    mismatches = 0
    started = time.monotonic()
    for name in args.assignments or available_assignments():
        config = load_config(name)
        out = Path(args.out) / name
        examples = build_examples(config, out / "submissions")
        if not args.all:  # the representative subset: see demo_subset
            examples = demo_subset(config, examples)
        console.print(f"{name}: grading {len(examples)} example submissions "
                      f"({time.monotonic() - started:.0f} s so far)", markup=False)
        progress = _Progress(console, plain=True)
        results = grade_batch(config, [e.path for e in examples], out / "results", device=args.device, regrade=True,
                              progress=progress)
        table = Table(title=f"{name}: example submissions (results in {out / 'results'})")
        for column in ("submission", "score", "failed tests", "as expected"):
            table.add_column(column)
        for example, result in zip(examples, results):
            problem = verdict(example, result)
            mismatches += problem is not None
            failed = [t.name.removeprefix("test_") for t in result.tests if t.status == "failed"]
            shown = "all" if failed and len(failed) == len(result.ran) else ", ".join(failed) or "-"
            table.add_row(example.name, f"{result.score:g} / {result.max_score:g}", shown,
                          "[green]yes[/green]" if problem is None else f"[red]NO: {problem}[/red]")
        console.print(table)
    console.print(("all verdicts as expected" if not mismatches else f"[red]{mismatches} unexpected verdict(s)[/red]")
                  + f" ({time.monotonic() - started:.0f} s)" + ("" if args.all else
                  "; this was the representative subset, `--all` grades every example"))
    return 1 if mismatches else 0


def demo_subset(config, examples):
    """What ``autograder demo`` grades by default, to finish in a few minutes on a 2-core machine:
    the reference, the blank template, and the known-bad submissions marked ``demo = true`` in
    ``mutants.toml`` (cheap ones that show typical feedback). ``--all`` grades every example."""
    from autograder.examples import BLANK, REFERENCE, mutants

    chosen = {REFERENCE, BLANK} | {m["name"] for m in mutants(config) if m.get("demo")}
    return [e for e in examples if e.name in chosen]


def _cmd_check(args: argparse.Namespace) -> int:
    """Run the public tests against a student's file, in this process (debuggers work)."""
    import pytest

    from autograder.templates import template_dir

    config = load_config(args.assignment or _assignment_of_folder(Path.cwd(), args.submission, args.tests_dir))
    tests = Path(args.tests_dir) if args.tests_dir else None
    if tests is None:
        for candidate in (Path.cwd() / "tests", template_dir(config) / "tests"):
            if candidate.is_dir():
                tests = candidate
                break
    if tests is None:
        print("No public tests found: pass --tests-dir", file=sys.stderr)
        return 2
    pytest_args = [str(tests), "-p", "no:cacheprovider", "--assignment", config.name, "--rootdir", str(tests.parent)]
    if args.submission:
        pytest_args += ["--submission", str(Path(args.submission).resolve())]
    if args.isolated:
        pytest_args.append("--isolated")
    return int(pytest.main(pytest_args + list(args.pytest_args)))


def _cmd_gradescope(args: argparse.Namespace) -> int:
    from autograder.gradescope import build_zip

    config = load_config(args.assignment)
    out = build_zip(config, Path(args.out or f"dist/gradescope/{config.name}.zip"))
    print(f"wrote {out}: upload it as the autograder of the Gradescope assignment (see README)")
    return 0


def _assignment_of_folder(folder: Path, submission: str | None = None, tests_dir: str | None = None) -> str:
    """The assignment a student's work belongs to: from the pytest.ini of its template folder
    (the current one, or the one holding the tests), else from the submission's file name."""
    import configparser

    for candidate in (folder, Path(tests_dir).resolve().parent if tests_dir else None):
        if candidate is None:
            continue
        ini = configparser.ConfigParser()
        ini.read(candidate / "pytest.ini")
        name = ini.get("pytest", "autograder_assignment", fallback=None)
        if name:
            return name
    names = available_assignments()
    if submission:
        matching = [n for n in names if Path(submission).name in load_config(n).files]
        if len(matching) == 1:
            return matching[0]
    if len(names) == 1:
        return names[0]
    raise SystemExit(f"Which assignment? Pass --assignment (one of: {', '.join(names)}), or run this in your "
                     "assignment folder (the one with pytest.ini).")


def _cmd_release(args: argparse.Namespace) -> int:
    from autograder.templates import check_release, write_release

    names = args.assignments or available_assignments()
    if args.check:
        problems = [p for name in names for p in check_release(load_config(name))]
        for problem in problems:
            print(problem)
        print("templates are up to date" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    import tempfile
    import zipfile

    from autograder.templates import build_student_bundle, public_tests_fail_cleanly

    problems = 0
    for name in names:
        config = load_config(name)
        for path in write_release(config):
            print(f"wrote {path}")
        bundle = build_student_bundle(config, Path(args.out) / f"{name}.zip")
        print(f"wrote {bundle} (no solution code, no hidden test)")
        with tempfile.TemporaryDirectory() as tmp:
            zipfile.ZipFile(bundle).extractall(tmp)
            problem = public_tests_fail_cleanly(Path(tmp) / name)
        print(f"  {problem}" if problem else "  the public tests fail cleanly on the blank template")
        problems += problem is not None
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    grade = sub.add_parser("grade", help="grade submissions (each in an isolated worker)")
    grade.add_argument("assignment")
    grade.add_argument("submissions", nargs="+",
                       help="files (.py/.ipynb/.zip) or folders, one per student; or one folder holding them, "
                            "a Gradescope export, or GitHub Classroom clones")
    grade.add_argument("--out", required=True, help="output folder: <submission>/results.json and gradebook.csv")
    grade.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    grade.add_argument("--seed", type=int, default=None, help="grading seed (default: the assignment's)")
    grade.add_argument("--tests-dir", help="grading tests (default: grading_tests/<assignment>)")
    grade.add_argument("--quiet", action="store_true", help="one line per submission, no progress bar (CI logs)")
    grade.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: cores / worker threads, or per GPU)")
    grade.add_argument("--per-gpu", type=int, default=2, help="submissions sharing one GPU (default 2)")
    grade.add_argument("--regrade", action="store_true", help="grade again the submissions already graded in --out")
    grade.add_argument("--scheduler", help="grade on Dask: a scheduler address, 'local' or 'slurm'")
    grade.add_argument("--no-report", action="store_true", help="do not write report.html and the feedback pages")
    grade.add_argument("--worker-user", help="run student code as this unprivileged user (grader running as root)")
    grade.add_argument("--sandbox", choices=["root", "user", "landlock", "none"],
                       help="how workers are isolated (default: the strongest this machine offers)")
    grade.add_argument("--require-sandbox", action="store_true",
                       help="refuse to grade if student code would run without isolation")
    grade.set_defaults(func=_cmd_grade)

    check = sub.add_parser("check", help="run the public tests on your own work")
    check.add_argument("submission", nargs="?", help="your .py or .ipynb (default: found next to tests/)")
    check.add_argument("--assignment", help="default: from pytest.ini in this folder")
    check.add_argument("--tests-dir")
    check.add_argument("--isolated", action="store_true", help="run your code in a separate process, like the grader")
    check.set_defaults(func=_cmd_check)

    release = sub.add_parser("release", help="regenerate student templates from the solutions")
    release.add_argument("assignments", nargs="*")
    release.add_argument("--check", action="store_true", help="only verify that committed templates are current")
    release.add_argument("--out", default="dist/student", help="where the student bundles (zips) go")
    release.set_defaults(func=_cmd_release)

    demo = sub.add_parser("demo", help="grade the example submissions and check their verdicts")
    demo.add_argument("assignments", nargs="*")
    demo.add_argument("--out", default="grading-output/demo")
    demo.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    demo.add_argument("--all", action="store_true",
                      help="every example (known-bad and independently written correct ones), not the quick subset")
    demo.set_defaults(func=_cmd_demo)

    gradescope = sub.add_parser("gradescope", help="Gradescope: build an assignment's autograder zip")
    gradescope.add_argument("action", choices=["build"])
    gradescope.add_argument("assignment")
    gradescope.add_argument("--out", help="default: dist/gradescope/<assignment>.zip")
    gradescope.set_defaults(func=_cmd_gradescope)

    report = sub.add_parser("report", help="(re)build report.html and the feedback pages of a graded folder")
    report.add_argument("out")
    report.set_defaults(func=_cmd_report)

    listing = sub.add_parser("list", help="list assignments")
    listing.set_defaults(func=lambda a: print("\n".join(available_assignments())) or 0)

    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []  # `autograder check FILE -- -x --pdb`
    args = parser.parse_args(argv[: len(argv) - len(extra) - (1 if "--" in argv else 0)])
    args.pytest_args = extra
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
