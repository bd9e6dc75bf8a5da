"""Example submissions for the demo and for the project's tests.

For each assignment, ``examples/<name>/mutants.toml`` describes known-bad submissions as small
edits of the reference solution (so they follow it when it changes: an edit whose ``old`` text
is no longer in the solution is an error, not a silently passing example), each with the tests
it must fail. ``build_examples`` writes, into a folder:

* ``reference.py``: the solution, which must score full marks;
* ``blank_template.ipynb``: the generated student template, which must score zero;
* one file per mutant, as a script or a notebook, which must fail exactly ``expect_fail``;
* every file or folder of ``examples/<name>/correct/``: correct solutions written independently
  of the reference, from the handout and the template alone (scripts and real notebooks, in
  other styles), which must score full marks like the reference. Their names start ``correct_``.

When ``solutions/<name>/`` holds files besides the solution (a trained checkpoint the students hand
in with their code), every example is a folder instead: the script or notebook under the module's
name, with copies of those files; the blank template gets none (students start without them).
"""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from autograder.config import AssignmentConfig
from autograder.templates import render_release, script_to_notebook, solution_path

REFERENCE = "reference"
BLANK = "blank_template"
ALL_TESTS = "*"


@dataclass
class Example:
    name: str
    path: Path
    description: str
    expect_fail: list[str] = field(default_factory=list)  # test names, or ["*"] for every test


def manifest_path(config: AssignmentConfig) -> Path:
    return config.repo_root / "examples" / config.name / "mutants.toml"


def mutants(config: AssignmentConfig) -> list[dict]:
    manifest = manifest_path(config)
    return tomllib.loads(manifest.read_text(encoding="utf-8")).get("mutant", []) if manifest.is_file() else []


def correct_dir(config: AssignmentConfig) -> Path:
    return config.repo_root / "examples" / config.name / "correct"


def independent_solutions(config: AssignmentConfig) -> list[Path]:
    """The independently written correct solutions (files or folders), in name order."""
    folder = correct_dir(config)
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def example_names(config: AssignmentConfig) -> list[str]:
    """The names ``build_examples`` gives: the reference, the blank template, each mutant, then each
    independently written correct solution."""
    return [REFERENCE, BLANK, *(m["name"] for m in mutants(config)),
            *(f"correct_{p.stem}" for p in independent_solutions(config))]


def _apply(source: str, mutant: dict) -> str:
    for edit in mutant.get("replace", []):
        old, new = edit["old"], edit["new"]
        count = source.count(old)
        if count != 1:
            raise ValueError(f"mutant {mutant['name']}: the text to replace occurs {count} times in the solution "
                             f"(expected once): {old[:80]!r}")
        source = source.replace(old, new)
    return mutant.get("prepend", "") + source + mutant.get("append", "")


def build_examples(config: AssignmentConfig, dest: Path) -> list[Example]:
    dest.mkdir(parents=True, exist_ok=True)
    solution = solution_path(config).read_text(encoding="utf-8")
    template = render_release(config)[f"{config.module}.ipynb"]
    examples = [
        Example(REFERENCE, dest / f"{REFERENCE}.py", "the reference solution: full marks"),
        Example(BLANK, dest / f"{BLANK}.ipynb", "the student template as released: zero", [ALL_TESTS]),
    ]
    examples[0].path.write_text(solution, encoding="utf-8")
    examples[1].path.write_text(template, encoding="utf-8")
    for mutant in mutants(config):
        script = _apply(solution, mutant)
        if mutant.get("format", "py") == "ipynb":
            path = dest / f"{mutant['name']}.ipynb"
            path.write_text(script_to_notebook(script), encoding="utf-8")
        else:
            path = dest / f"{mutant['name']}.py"
            path.write_text(script, encoding="utf-8")
        examples.append(Example(mutant["name"], path, mutant.get("description", ""), list(mutant["expect_fail"])))
    extra = solution_files(config)
    if extra:
        examples = [_as_folder(config, example, [] if example.name == BLANK else extra) for example in examples]
    for solution in independent_solutions(config):  # copied as they are: they bring their own files
        target = dest / f"correct_{solution.stem}{'' if solution.is_dir() else solution.suffix}"
        if solution.is_dir():
            shutil.copytree(solution, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(solution, target)
        examples.append(Example(f"correct_{solution.stem}", target,
                                "a correct solution written from the handout alone: full marks"))
    return examples


def solution_files(config: AssignmentConfig) -> list[Path]:
    """Files next to the reference solution that students hand in with it (a checkpoint...)."""
    solution = solution_path(config)
    return sorted(p for p in solution.parent.iterdir()
                  if p.is_file() and p != solution and not p.name.startswith("."))


def _as_folder(config: AssignmentConfig, example: Example, extra: list[Path]) -> Example:
    folder = example.path.with_suffix("")
    folder.mkdir(exist_ok=True)
    example.path.replace(folder / f"{config.module}{example.path.suffix}")
    for path in extra:
        shutil.copyfile(path, folder / path.name)
    return Example(example.name, folder, example.description, example.expect_fail)


def failing_tests(result) -> set[str]:
    return {t.name for t in result.tests if t.status == "failed"}


def verdict(example: Example, result) -> str | None:
    """None if the graded result is what the example expects, else what differs. Skipped tests
    (a CUDA test on a machine without a GPU) are worth nothing and expected of no one."""
    failed = failing_tests(result)
    every = {t.name for t in result.tests if t.status != "skipped"}
    if not every:
        return "no test ran"
    expected = every if example.expect_fail == [ALL_TESTS] else set(example.expect_fail)
    if failed != expected:
        return (f"expected to fail {sorted(expected)}, failed {sorted(failed)} "
                f"(unexpected failures: {sorted(failed - expected)}, unexpected passes: {sorted(expected - failed)})")
    if not example.expect_fail and result.score != result.max_score:
        return f"{example.name} scored {result.score} of {result.max_score}, not full marks"
    if example.expect_fail == [ALL_TESTS] and result.score != 0:
        return f"expected zero, scored {result.score}"
    return None
