"""Assignment configuration: ``assignments/<name>/assignment.toml``.

Points, visibility and time budgets of single tests are declared on the tests themselves
(markers); this file holds what is per assignment: the file a submission must contain, default
budgets, limits, the grading seed and where hidden tests' results become visible.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class AssignmentConfig:
    name: str
    title: str
    module: str  # the student's file without extension: autoencoder.py / autoencoder.ipynb
    files: list[str]  # accepted file names, in order of preference
    seed: int = 0
    # Budgets are CPU seconds of the student's worker (one core's work), not wall-clock seconds:
    # see autograder.sandbox.WALL_FACTOR.
    test_seconds: float = 60.0  # default per-test budget (a test may declare its own)
    submission_seconds: float = 600.0  # budget for all the tests of one submission
    import_seconds: float = 60.0  # importing the submission (its top-level code), once
    memory_mb: int = 6144
    threads: int | None = None
    hidden_visibility: str = "after_published"
    course_dir: Path = field(default_factory=Path)

    @property
    def repo_root(self) -> Path:
        return self.course_dir.parent.parent


def assignments_dir() -> Path:
    import assignments

    return Path(assignments.__file__).parent


def available_assignments() -> list[str]:
    return sorted(p.parent.name for p in assignments_dir().glob("*/assignment.toml"))


def load_config(name: str) -> AssignmentConfig:
    path = assignments_dir() / name / "assignment.toml"
    if not path.is_file():
        known = ", ".join(available_assignments()) or "none"
        raise SystemExit(f"Unknown assignment {name!r}. Known assignments: {known}.")
    data = tomllib.loads(path.read_text())
    a, budget, grading = data.get("assignment", {}), data.get("budget", {}), data.get("grading", {})
    module = a.get("module", name)
    return AssignmentConfig(
        name=name,
        title=a.get("title", name),
        module=module,
        files=list(data.get("submission", {}).get("files", [f"{module}.py", f"{module}.ipynb"])),
        seed=int(grading.get("seed", 0)),
        test_seconds=float(budget.get("test_seconds", 60)),
        submission_seconds=float(budget.get("submission_seconds", 600)),
        import_seconds=float(budget.get("import_seconds", 60)),
        memory_mb=int(budget.get("memory_mb", 6144)),
        threads=budget.get("threads"),
        hidden_visibility=grading.get("hidden_visibility", "after_published"),
        course_dir=path.parent,
    )


def find_tests_dir(config: AssignmentConfig, explicit: Path | None = None) -> Path:
    """The grading tests: given explicitly, or ``grading_tests/<name>`` of the checkout."""
    candidates = [explicit] if explicit else [Path.cwd() / "grading_tests" / config.name,
                                               config.repo_root / "grading_tests" / config.name]
    for candidate in candidates:
        if candidate and candidate.is_dir():
            return candidate.resolve()
    raise SystemExit(
        f"No grading tests found for {config.name!r} (looked in {', '.join(map(str, candidates))}). "
        "Pass --tests-dir."
    )
