"""Turning what a student handed in (a .py file, a notebook, a folder or a zip) into a clean
working directory with one importable Python file.

Everything here runs in the trusted process but never executes student code: notebooks are read
as JSON (nbformat), zips are listed and extracted member by member with path and size checks.
"""

from __future__ import annotations

import re
import shutil
import stat
import sys
import types
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.errors import SubmissionError, SubmissionNotFound

# Cells carrying one of these tags are left out of grading (exploration, plots, long training).
SKIP_TAGS = {"skip", "skip-grading", "autograder:skip", "ignore", "otter_ignore", "remove-cell"}
# Cell magics whose body is still Python; any other %%magic cell (bash, html, writefile...) is dropped.
PYTHON_CELL_MAGICS = {"time", "capture", "prun"}
MAX_FILES = 2000
MAX_TOTAL_BYTES = 500 * 1024 * 1024
IGNORED_NAMES = {"__MACOSX", ".git", "__pycache__", ".ipynb_checkpoints", ".DS_Store"}

_SHELL_OR_MAGIC = re.compile(r"^(\s*)([!%]|[A-Za-z_][\w.]*\s*=\s*[!%])")
_HELP = re.compile(r"^\s*[\w.]+\?{1,2}\s*$|^\s*\?{1,2}[\w.]+\s*$")


@dataclass
class PreparedSubmission:
    name: str
    workdir: Path
    entry: str | None = None  # path of the file to import, relative to workdir
    source_kind: str | None = None  # "script" or "notebook"
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # why the submission cannot be graded at all


def notebook_to_script(text: str, name: str = "notebook") -> tuple[str, list[str]]:
    """Code cells of a notebook, in order, as a Python script.

    IPython magics, shell escapes (``!pip install``) and help lines are replaced by ``pass`` (so
    an indented block stays valid); cells tagged with one of ``SKIP_TAGS`` are skipped. Each cell
    starts with a ``# %% notebook cell N`` comment so a traceback line can be traced to its cell.
    """
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many types on bad JSON
        raise SubmissionError(
            f"{name} is not a readable Jupyter notebook ({type(exc).__name__}: {exc}). Was it saved "
            "completely? Open it in Jupyter, save it again and resubmit."
        ) from None
    notes: list[str] = []
    parts: list[str] = []
    skipped = 0
    for number, cell in enumerate(nb.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & SKIP_TAGS:
            skipped += 1
            continue
        lines = cell.get("source", "").splitlines()
        if lines and lines[0].lstrip().startswith("%%"):
            magic = lines[0].lstrip()[2:].split()[0] if lines[0].strip() != "%%" else ""
            if magic not in PYTHON_CELL_MAGICS:
                notes.append(f"cell {number} (%%{magic}) is not Python and was left out")
                continue
            lines = lines[1:]
        out = [f"# %% notebook cell {number}"]
        for line in lines:
            match = _SHELL_OR_MAGIC.match(line)
            if match or _HELP.match(line):
                indent = match.group(1) if match else re.match(r"^\s*", line).group(0)
                out.append(f"{indent}pass  # autograder: IPython-only line removed: {line.strip()[:60]}")
            else:
                out.append(line)
        parts.append("\n".join(out))
    if skipped:
        notes.append(f"{skipped} cell(s) tagged to skip were left out")
    return "\n\n".join(parts) + "\n", notes


def load_trusted_solution(path: Path, name: str | None = None):
    """An instructor's own solution file (.py, or .ipynb through ``notebook_to_script``) imported
    into this process as a module, for calibration scripts that measure a solution the way a hidden
    test does. Runs the file's top-level code here: never for students' submissions, which only
    ever run in a worker."""
    path = Path(path)
    source = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        source = notebook_to_script(source, path.name)[0]
    module = types.ModuleType(name or path.stem)
    module.__file__ = str(path)
    sys.modules[module.__name__] = module  # dataclasses and pickle look their module up there
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def notebook_cell_of_line(script: str, line: int) -> tuple[int, int] | None:
    """(cell number, line within the cell) of a line of a script made by ``notebook_to_script``."""
    cell, start = None, 0
    for number, text in enumerate(script.splitlines()[:line], start=1):
        if text.startswith("# %% notebook cell "):
            cell, start = int(text.removeprefix("# %% notebook cell ")), number
    return (cell, line - start) if cell is not None else None


def annotate_notebook_traceback(traceback: str, script: str, entry: str) -> str:
    """Add "(notebook cell C, line L)" to the traceback lines that point into the converted notebook."""
    def add_cell(match: re.Match) -> str:
        where = notebook_cell_of_line(script, int(match.group(2)))
        return match.group(0) + (f" (notebook cell {where[0]}, line {where[1]})" if where else "")

    return re.sub(rf'File "({re.escape(entry)})", line (\d+)', add_cell, traceback)


def syntax_error_location(source: str, filename: str) -> str | None:
    """A readable description of the first syntax error in ``source`` (compiled, never run)."""
    try:
        compile(source, filename, "exec")
    except SyntaxError as exc:
        where = f"line {exc.lineno}"
        if exc.lineno:
            cell = None
            for line in source.splitlines()[: exc.lineno]:
                if line.startswith("# %% notebook cell "):
                    cell = line.removeprefix("# %% notebook cell ")
            if cell:
                where = f"notebook cell {cell} ({where} of the converted script)"
        return f"SyntaxError at {where}: {exc.msg}\n    {(exc.text or '').rstrip()}"
    return None


def _copy_tree(src: Path, dst: Path) -> None:
    count = 0
    total = 0
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if any(part in IGNORED_NAMES for part in rel.parts) or path.is_symlink():
            continue
        target = dst / rel
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        count += 1
        total += path.stat().st_size
        if count > MAX_FILES or total > MAX_TOTAL_BYTES:
            raise SubmissionError("The submission is too large (too many files or bytes).")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _extract_zip(archive: Path, dst: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > MAX_FILES or sum(m.file_size for m in members) > MAX_TOTAL_BYTES:
                raise SubmissionError("The zip file is too large (too many files or bytes).")
            for member in members:
                rel = Path(member.filename)
                if member.is_dir() or any(part in IGNORED_NAMES for part in rel.parts):
                    continue
                if rel.is_absolute() or ".." in rel.parts or stat.S_ISLNK(member.external_attr >> 16):
                    raise SubmissionError(f"The zip file contains an unsafe path: {member.filename!r}")
                target = dst / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as fin, open(target, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
    except zipfile.BadZipFile:
        raise SubmissionError(f"{archive.name} is not a valid zip file.") from None


def unfinished_stubs(path: Path) -> int:
    """How many of the template's ``NotImplementedError`` stubs a script or notebook still has."""
    from autograder.templates import STUB_MESSAGE

    return path.read_text(encoding="utf-8", errors="replace").count(STUB_MESSAGE)


def choose_entry(candidates: list[Path]) -> tuple[Path, str | None]:
    """The one rule, used by grading, ``autograder check``, Gradescope and ``pytest`` in a template
    folder, for a folder holding both the script and the notebook (the template ships both): the
    file the student worked in is graded, i.e. the one with the fewest template stubs left; on a
    tie the more recently modified one; on a tie again the notebook. Returns the file and, when
    another candidate was ignored, a note that says so."""
    if len(candidates) == 1:
        return candidates[0], None
    ranked = sorted(candidates, key=lambda p: (unfinished_stubs(p), -p.stat().st_mtime, p.suffix != ".ipynb"))
    chosen = ranked[0]
    ignored = ", ".join(p.name for p in ranked[1:])
    return chosen, (f"both {chosen.name} and {ignored} were handed in: graded {chosen.name} (it has the fewest "
                    f"unfinished template stubs, or is the newer one); {ignored} was ignored. Hand in one file.")


def _find_entry(root: Path, expected: list[str], notes: list[str] | None = None) -> Path:
    """The file to grade: an expected name if present (see ``choose_entry`` when there are two),
    else the only script or notebook."""
    search_roots = [root]
    children = [p for p in root.iterdir() if p.name not in IGNORED_NAMES]
    if len(children) == 1 and children[0].is_dir():
        search_roots.append(children[0])  # zips often wrap everything in one folder
    for base in search_roots:
        present = [base / name for name in expected if (base / name).is_file()]
        if present:
            chosen, note = choose_entry(present)
            if note and notes is not None:
                notes.append(note)
            return chosen
    for base in search_roots:
        candidates = [
            p for p in base.iterdir()
            if p.is_file() and p.suffix in (".py", ".ipynb") and not p.name.startswith(("test_", "conftest"))
        ]
        if len(candidates) == 1:
            return candidates[0]
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())[:20]
    raise SubmissionNotFound(
        f"Could not find the file to grade. Expected one of {', '.join(expected)}; the submission contains: "
        f"{', '.join(found) if found else 'no files'}."
    )


def prepare_submission(source: Path, workdir: Path, expected: list[str], module: str) -> PreparedSubmission:
    """Copy a submission into ``workdir`` and decide which file to import.

    Never raises for a bad submission: problems are returned in ``error`` for the tests to report.
    """
    source = Path(source)
    name = source.stem if source.is_file() else source.name
    prepared = PreparedSubmission(name=name, workdir=workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if not source.exists():
            raise SubmissionNotFound(f"The submission {source} does not exist.")
        if source.is_dir():
            _copy_tree(source, workdir)
        elif source.suffix == ".zip":
            _extract_zip(source, workdir)
        else:
            shutil.copyfile(source, workdir / source.name)
        entry = _find_entry(workdir, expected, prepared.notes)
        if entry.suffix == ".ipynb":
            text = entry.read_text(encoding="utf-8", errors="replace")
            script, notes = notebook_to_script(text, entry.name)
            prepared.notes += notes
            target = entry.with_name(f"{module}.py")
            if target.exists():
                target = entry.with_name(f"{module}_from_notebook.py")
            target.write_text(script, encoding="utf-8")
            prepared.source_kind = "notebook"
            prepared.notes.insert(0, f"graded the notebook {entry.relative_to(workdir)}")
            entry = target
        else:
            prepared.source_kind = "script"
            prepared.notes.insert(0, f"graded the script {entry.relative_to(workdir)}")
        prepared.entry = str(entry.relative_to(workdir))
        problem = syntax_error_location(entry.read_text(encoding="utf-8", errors="replace"), prepared.entry)
        if problem:
            prepared.notes.append(problem)
    except SubmissionError as exc:
        prepared.error = str(exc)
    return prepared
