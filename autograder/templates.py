"""Student templates, generated from the reference solutions (the single source of truth).

Solutions use otter-grader's markers, so otter users feel at home:

* ``# BEGIN SOLUTION`` ... ``# END SOLUTION``: the block becomes a stub that raises
  ``NotImplementedError`` (``# BEGIN SOLUTION NO PROMPT``: the block is simply removed);
* ``value = expression  # SOLUTION``: becomes ``value = ...``; any other line ending in
  ``# SOLUTION`` becomes ``...``.

otter-grader's own ``replace_solutions`` is not used: it can only emit ``...`` (a function whose
body is ``...`` returns None, which gives students a confusing failure far from the cause), and
otter-grader pulls in a large dependency tree (nbconvert, pandas, docker clients) that a grader
image does not need. The markers and their meaning are the same.

A release of an assignment is: the template as a script and as a notebook (jupytext), the public
tests (test files whose tests are all marked public), a pytest.ini so that ``pytest`` finds the
student's file, and the handout.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jupytext

from autograder.config import AssignmentConfig

STUB_MESSAGE = "not implemented yet: replace this line with your code"
_BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION(\s+NO PROMPT)?\s*$")
_END = re.compile(r"^\s*# END SOLUTION\s*$")
_LINE = re.compile(r"^(\s*)(.*?)\s*# SOLUTION\s*$")
_ASSIGNMENT = re.compile(r"^([\w.\[\], ]+?\s*(?::[^=]+)?=)(?!=)\s*.+$")
MARKER_WORDS = ("BEGIN SOLUTION", "END SOLUTION", "# SOLUTION")


class TemplateError(ValueError):
    pass


def strip_solutions(source: str) -> str:
    """Replace every solution region of ``source`` by a stub (see the module docstring)."""
    out: list[str] = []
    in_block = False
    for number, line in enumerate(source.splitlines(), start=1):
        begin = _BEGIN.match(line)
        if begin:
            if in_block:
                raise TemplateError(f"line {number}: BEGIN SOLUTION inside another solution block")
            in_block = True
            if not begin.group(2):
                out.append(f'{begin.group(1)}raise NotImplementedError("{STUB_MESSAGE}")')
            continue
        if _END.match(line):
            if not in_block:
                raise TemplateError(f"line {number}: END SOLUTION without BEGIN SOLUTION")
            in_block = False
            continue
        if in_block:
            continue
        single = _LINE.match(line)
        if single:
            indent, code = single.groups()
            assignment = _ASSIGNMENT.match(code)
            out.append(f"{indent}{assignment.group(1)} ..." if assignment else f"{indent}...")
            continue
        out.append(line)
    if in_block:
        raise TemplateError("a BEGIN SOLUTION block is never closed")
    return "\n".join(out) + "\n"


def script_to_notebook(script: str) -> str:
    """A jupytext percent-format script as an .ipynb document (deterministic)."""
    notebook = jupytext.reads(script, fmt="py:percent")
    for number, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{number}"  # nbformat's default ids are random: keep regeneration stable
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return jupytext.writes(notebook, fmt="ipynb")


def solution_path(config: AssignmentConfig) -> Path:
    return config.repo_root / "solutions" / config.name / f"{config.module}.py"


def template_dir(config: AssignmentConfig) -> Path:
    return config.repo_root / "student_template" / config.name


def public_test_files(config: AssignmentConfig) -> list[Path]:
    return sorted((config.repo_root / "grading_tests" / config.name).glob("test_public*.py"))


def _check_public(path: Path) -> None:
    """Every test in a file given to students must be marked public; none may be hidden."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            marks = {ast.unparse(d) for d in node.decorator_list}
            if "pytest.mark.public" not in marks or any("hidden" in m for m in marks):
                raise TemplateError(f"{path.name}::{node.name} is in a public test file but is not marked public")


def render_release(config: AssignmentConfig) -> dict[str, str]:
    """Every file of the student template, as {relative path: content}."""
    solution = solution_path(config).read_text(encoding="utf-8")
    script = strip_solutions(solution)
    ast.parse(script)  # the template must stay valid Python
    files = {
        f"{config.module}.py": script,
        f"{config.module}.ipynb": script_to_notebook(script),
        "pytest.ini": (
            "# Lets `pytest` (run in this folder) test your notebook or script with the public tests.\n"
            "# If both the script and the notebook are here, the one you worked in (fewest template stubs\n"
            "# left, else the newer) is tested, as the grader does. See README.md.\n"
            f"[pytest]\nautograder_assignment = {config.name}\ntestpaths = tests\naddopts = -p no:cacheprovider\n"
        ),
    }
    handout = config.course_dir / "README.md"
    if handout.is_file():
        files["README.md"] = handout.read_text(encoding="utf-8")
    for test_file in public_test_files(config):
        _check_public(test_file)
        files[f"tests/{test_file.name}"] = test_file.read_text(encoding="utf-8")
    return files


def write_release(config: AssignmentConfig) -> list[Path]:
    target = template_dir(config)
    written = []
    for rel, content in render_release(config).items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def check_release(config: AssignmentConfig) -> list[str]:
    """Differences between the committed template and a fresh generation, and any leak."""
    problems = []
    target = template_dir(config)
    for rel, content in render_release(config).items():
        path = target / rel
        if not path.is_file():
            problems.append(f"{path}: missing (run `nox -s release`)")
        elif path.read_text(encoding="utf-8") != content:
            problems.append(f"{path}: differs from what the solution generates (run `nox -s release`)")
    for path in target.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".ipynb"):
            text = path.read_text(encoding="utf-8")
            if any(word in text for word in MARKER_WORDS):
                problems.append(f"{path}: contains a solution marker")
            if "pytest.mark.hidden" in text:
                problems.append(f"{path}: contains a hidden test")
    return problems


BUNDLE_CONFTEST = '''"""Loads the grading plugin for the public tests, unless it is already installed (pip install)."""
from importlib.metadata import entry_points

if not any(ep.value == "autograder.plugin" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["autograder.plugin"]
'''


def bundle_pyproject(root: Path) -> str:
    """The student bundle's pyproject.toml: the same package (engine and course code, the
    ``autograder`` command, the pytest plugin) and dependencies as the course repository's, so
    ``pip install -r requirements.txt .`` in the unzipped folder installs it at the locked versions."""
    import json
    import tomllib

    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    meta = project["project"]
    return "\n".join([
        "# The course package for students: the engine that runs the public tests and the course code.",
        "# Install from this folder with: python -m pip install -r requirements.txt .",
        "[build-system]",
        'requires = ["setuptools>=68"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f"name = {json.dumps(meta['name'])}",
        f"version = {json.dumps(meta['version'])}",
        f"requires-python = {json.dumps(meta['requires-python'])}",
        "dependencies = [" + ", ".join(json.dumps(d) for d in meta["dependencies"]) + "]",
        "",
        "[project.scripts]",
        *(f"{name} = {json.dumps(target)}" for name, target in meta["scripts"].items()),
        "",
        "[project.entry-points.pytest11]",
        *(f"{name} = {json.dumps(target)}" for name, target in meta["entry-points"]["pytest11"].items()),
        "",
        "[tool.setuptools.packages.find]",
        'include = ["autograder*", "assignments*"]',
        "",
        "[tool.setuptools.package-data]",
        *(f"{name} = {json.dumps(globs)}" for name, globs in project["tool"]["setuptools"]["package-data"].items()),
        "",
    ])


def build_student_bundle(config: AssignmentConfig, out: Path) -> Path:
    """A zip for students: the template (script and notebook), the public tests, the handout,
    the course code they import, and the engine that runs the public tests. Never a solution
    region or a hidden test (checked here, on the zip's content)."""
    import zipfile

    base = config.name
    files: dict[str, str | bytes] = {f"{base}/{rel}": content for rel, content in render_release(config).items()}
    files[f"{base}/conftest.py"] = BUNDLE_CONFTEST
    root = config.repo_root
    # The locked versions (requirements/, see autograder/lock.py): the grader's own.
    files[f"{base}/requirements.txt"] = (root / "requirements" / "runtime.txt").read_text(encoding="utf-8")
    files[f"{base}/requirements-cpu.txt"] = (root / "requirements" / "runtime-cpu.txt").read_text(encoding="utf-8")
    files[f"{base}/pyproject.toml"] = bundle_pyproject(root)
    sources = [root / "assignments" / "__init__.py", *sorted(config.course_dir.rglob("*")),
               *sorted((root / "autograder").rglob("*"))]
    for path in sources:
        if path.is_file() and "__pycache__" not in path.parts:
            data = path.read_bytes()  # course code, and binary files such as pinned weights
            try:
                files[f"{base}/{path.relative_to(root)}"] = data.decode("utf-8")
            except UnicodeDecodeError:
                files[f"{base}/{path.relative_to(root)}"] = data
    # Lines the course code or the engine contain are public anyway (a common idiom such as
    # `with torch.no_grad():`), so only the solution's other lines count as a leak.
    public = {line.strip() for path in sources if path.suffix == ".py" and "__pycache__" not in path.parts
              for line in path.read_text(encoding="utf-8").splitlines()}
    solution_lines = [line for line in _solution_only_lines(solution_path(config).read_text(encoding="utf-8"))
                      if line not in public]
    for name, content in files.items():
        if isinstance(content, bytes):
            continue
        leaked = [line for line in solution_lines if line in content]
        if leaked:
            raise TemplateError(f"{name} contains solution code: {leaked[0]!r}")
        if "pytest.mark.hidden" in content and "/tests/" in name:
            raise TemplateError(f"{name} contains a hidden test")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in sorted(files.items()):
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), content)
    return out


def _solution_only_lines(solution: str) -> list[str]:
    """Distinctive lines that exist only inside solution regions (what must never be released)."""
    lines, inside = [], False
    for line in solution.splitlines():
        if _BEGIN.match(line):
            inside = True
            continue
        if _END.match(line):
            inside = False
            continue
        code = line.strip().removesuffix("# SOLUTION").strip() if _LINE.match(line) else line.strip()
        if (inside or _LINE.match(line)) and len(code) > 20 and not code.startswith("#"):
            lines.append(code)
    return lines


def public_tests_fail_cleanly(bundle_dir: Path) -> str | None:
    """Run the public tests of an unzipped bundle on its blank template: every test must fail
    (pytest exit code 1), none may error or crash the run. Returns the problem, or None."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=bundle_dir,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 1 or " error" in proc.stdout.splitlines()[-1] or " passed" in proc.stdout.splitlines()[-1]:
        return f"public tests on the blank template: exit code {proc.returncode}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return None
