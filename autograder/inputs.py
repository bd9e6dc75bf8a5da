"""Where instructors get submissions from, turned into a list of ``(name, source)`` pairs.

* files or folders given one by one: one submission each, named after the file (without suffix)
  or the folder;
* a folder of such files/folders (what a course website's "download all" gives);
* a Gradescope export ("Download Submissions"): a folder with ``submission_metadata.yml`` and
  one ``submission_<id>/`` folder per submission; named after the submitters' SIDs (or e-mails);
* a folder of GitHub Classroom repositories (``gh classroom clone student-repos``): one git
  checkout per student, named ``<assignment>-<login>``; the login becomes the name.

Names are made safe as folder names, and must be unique: two submissions never share an output.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

SUBMISSION_SUFFIXES = {".py", ".ipynb", ".zip"}
GRADESCOPE_METADATA = "submission_metadata.yml"


@dataclass(frozen=True)
class SubmissionInput:
    name: str
    source: Path


# What the grader writes next to the submissions' folders: no submission may be named like them.
RESERVED_NAMES = {"gradebook.csv", "report.html", "feedback.html", "images", "submissions", "results"}


def safe_name(text: str) -> str:
    """A file-system-safe name that keeps Unicode letters ("Zoë Müller" -> "Zoë_Müller"), in NFC
    so the same name typed on macOS and Linux is one name; never a name of the grader's own files."""
    cleaned = re.sub(r"[^\w.@-]+", "_", unicodedata.normalize("NFC", text)).strip("._")[:120]
    if not cleaned:
        return "submission"
    return f"{cleaned}-submission" if cleaned.lower() in RESERVED_NAMES else cleaned


def unique_names(names: list[str]) -> list[str]:
    """The names, with a numbered suffix (-2, -3...) on the second and later of equal ones
    (case-insensitively: some file systems are), in the order given."""
    taken: set[str] = set()
    out = []
    for name in names:
        candidate, number = name, 1
        while candidate.lower() in taken:
            number += 1
            candidate = f"{name}-{number}"
        taken.add(candidate.lower())
        out.append(candidate)
    return out


def _one(path: Path) -> SubmissionInput:
    return SubmissionInput(safe_name(path.name if path.is_dir() else path.stem), path)


def _gradescope_export(folder: Path) -> list[SubmissionInput]:
    import yaml  # a dependency of jupytext

    metadata = yaml.safe_load((folder / GRADESCOPE_METADATA).read_text(encoding="utf-8")) or {}
    found = []
    for key, info in sorted(metadata.items()):
        source = folder / key
        if not source.exists():
            continue
        submitters = (info or {}).get(":submitters") or []
        ids = [str(s.get(":sid") or s.get(":email") or s.get(":name") or "") for s in submitters]
        ids = [i for i in ids if i]
        found.append(SubmissionInput(safe_name("+".join(ids) if ids else key), source))
    return found


def _classroom_repositories(folder: Path) -> list[SubmissionInput]:
    repos = sorted(p for p in folder.iterdir() if (p / ".git").exists())
    names = [p.name for p in repos]
    # Classroom names every repository "<assignment>-<login>": drop the shared prefix.
    prefix = _common_prefix(names) if len(names) > 1 else ""
    prefix = prefix[: prefix.rfind("-") + 1] if "-" in prefix else ""
    return [SubmissionInput(safe_name(p.name[len(prefix):] or p.name), p) for p in repos]


def _common_prefix(names: list[str]) -> str:
    first, last = min(names), max(names)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def _folder_of_submissions(folder: Path) -> list[SubmissionInput]:
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith((".", "__")))
    return [_one(p) for p in entries if p.is_dir() or p.suffix in SUBMISSION_SUFFIXES]


def describe_folder(folder: Path) -> str:
    if (folder / GRADESCOPE_METADATA).is_file():
        return "Gradescope export"
    if any((p / ".git").exists() for p in folder.iterdir() if p.is_dir()):
        return "GitHub Classroom repositories"
    return "folder of submissions"


def find_submissions(paths: list[Path], expected_files: list[str], *,
                     collection: bool | None = None) -> list[SubmissionInput]:
    """The submissions ``paths`` hold. A single folder is a *collection* (export, classroom,
    folder of submissions) unless it is itself one submission: it holds one of the
    ``expected_files`` (``autoencoder.py``...) at its top level. ``collection`` forces either."""
    paths = [Path(p) for p in paths]
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        is_collection = collection if collection is not None else not any(
            (folder / name).is_file() for name in expected_files)
        if is_collection:
            kind = describe_folder(folder)
            if kind == "Gradescope export":
                found = _gradescope_export(folder)
            elif kind == "GitHub Classroom repositories":
                found = _classroom_repositories(folder)
            else:
                found = _folder_of_submissions(folder)
            return _unique(found)
    return _unique([_one(p) for p in paths])


def _unique(found: list[SubmissionInput]) -> list[SubmissionInput]:
    """Two students whose names clean to the same folder name get distinct names (the batch never
    refuses to start for it). Sources are taken in path order, so a rerun names them the same."""
    ordered = sorted(found, key=lambda s: str(s.source))
    renamed = dict(zip((id(s) for s in ordered), unique_names([s.name for s in ordered])))
    return [SubmissionInput(renamed[id(s)], s.source) for s in found]
