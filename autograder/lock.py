"""The locked versions: one set of exact versions for the grader, Gradescope and the students.

Three files in ``requirements/``, all generated from ``pyproject.toml`` by ``nox -s lock`` (which
calls :func:`write_locks`; it needs the package index, nothing else does):

* ``grader.txt``: every dependency and every extra (tests, cluster, mutation testing). The nox
  sessions install from it, so the instructor's grading, the demo and CI run the same versions.
* ``runtime.txt``: what submissions run against (the package's own dependencies), at the same
  versions as ``grader.txt``. The student bundle installs from it.
* ``runtime-cpu.txt``: ``runtime.txt`` with the CPU build of torch and torchvision (Linux x86_64)
  and without the CUDA libraries only the CUDA build pulls in. Gradescope installs from it.

Why uv (``uv pip compile``) and not pip-tools: it resolves a *universal* lock, one file whose
environment markers cover Linux, macOS and Windows and Python 3.11+, so the students' laptops and
the grader read the same file; it is one static binary from PyPI; and nox's uv backend installs
from its cache by hard links, so every nox session's environment costs about one on disk.

Why the CPU variant is derived rather than resolved: the CPU wheels live on PyTorch's own index,
which the machines this project is built on cannot reach. The CPU build of a torch release
declares the CUDA build's dependencies minus the CUDA libraries (``nvidia-*``, ``cuda-*``,
``triton``), so the variant drops exactly the packages that only those libraries or torch
brought in (read from uv's ``# via`` annotations) and pins the ``+cpu`` builds of the same
versions. ``setup.sh`` runs ``pip check`` after installing, so a variant that missed a
dependency fails the image build rather than a student's submission.

The offline agreement check (:func:`lock_problems`, run by the test suite) needs no index: every
requirement of ``pyproject.toml`` is met by a pin, every line is an exact pin, the two runtime
files agree with ``grader.txt``, and the fingerprint of ``pyproject.toml``'s dependency tables
recorded in each file is current (so editing a dependency without relocking fails the suite).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK_DIR = "requirements"
GRADER, RUNTIME, RUNTIME_CPU = "grader.txt", "runtime.txt", "runtime-cpu.txt"
CONSTRAINTS = "constraints.txt"
# The PyTorch wheel index that serves the CPU builds (used by Gradescope's setup.sh).
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CPU_BUILDS = ("torch", "torchvision")
# What the CPU build of torch does not need: the CUDA libraries of the CUDA build.
CUDA_ONLY = re.compile(r"^(nvidia-.*|cuda-.*|triton)$")
_FINGERPRINT = re.compile(r"^# pyproject-dependencies-sha256: ([0-9a-f]{64})$", re.M)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)(?:\s*;\s*(.+))?$")


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503) name
    version: str
    marker: str | None
    via: tuple[str, ...]  # canonical names of what required it ("-r pyproject.toml" for the project)


def dependency_fingerprint(pyproject: Path) -> str:
    """A hash of what the lock is made from: the dependencies, the extras and Python's range."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    tables = {"dependencies": project.get("dependencies", []),
              "optional-dependencies": project.get("optional-dependencies", {}),
              "requires-python": project.get("requires-python", "")}
    return hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()


def read_lock(path: Path) -> list[Pin]:
    """The pins of a lock file (uv's format: ``name==version ; marker`` then ``# via`` lines)."""
    pins: list[Pin] = []
    current: dict | None = None
    lines = path.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        match = _PIN.match(stripped)
        if match:
            if current:
                pins.append(Pin(**current))
            current = {"name": canonicalize_name(match[1]), "version": match[2], "marker": match[3], "via": ()}
        elif current and stripped.startswith("#") and ("# via" in stripped or line.startswith("    #   ")):
            parent = stripped.removeprefix("# via").lstrip("#").strip()
            if parent and not parent.startswith("-c "):  # a constraint file is no requirer
                current["via"] = (*current["via"], parent if parent.startswith("-") else canonicalize_name(parent))
        elif stripped and not stripped.startswith(("#", "--")):
            raise ValueError(f"{path.name}:{index + 1}: not an exact pin: {stripped!r}")
    if current:
        pins.append(Pin(**current))
    return pins


def lock_problems(root: Path = ROOT) -> list[str]:
    """Why the lock files do not agree with ``pyproject.toml`` (empty when they do). Offline."""
    folder = root / LOCK_DIR
    problems: list[str] = []
    try:
        locks = {name: read_lock(folder / name) for name in (GRADER, RUNTIME, RUNTIME_CPU)}
    except (OSError, ValueError) as error:
        return [f"lock files unreadable: {error}"]
    fingerprint = dependency_fingerprint(root / "pyproject.toml")
    for name in locks:
        found = _FINGERPRINT.search((folder / name).read_text(encoding="utf-8"))
        if not found or found[1] != fingerprint:
            problems.append(f"{LOCK_DIR}/{name} was made from another pyproject.toml: run `nox -s lock`")
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    grader = _by_name(locks[GRADER])
    wanted = {GRADER: [*project["dependencies"], *(r for extra in project.get("optional-dependencies", {}).values()
                                                     for r in extra)],
              RUNTIME: project["dependencies"], RUNTIME_CPU: project["dependencies"]}
    for name, requirements in wanted.items():
        pins = _by_name(locks[name])
        for text in requirements:
            requirement = Requirement(text)
            candidates = pins.get(canonicalize_name(requirement.name), [])
            if not candidates:
                problems.append(f"{LOCK_DIR}/{name}: {requirement.name} is not pinned")
            for pin in candidates:
                if not requirement.specifier.contains(Version(pin.version), prereleases=True):
                    problems.append(f"{LOCK_DIR}/{name}: {pin.name}=={pin.version} does not meet {text!r}")
    for pin in locks[RUNTIME]:
        if pin.version not in {p.version for p in grader.get(pin.name, [])}:  # markers may be narrower
            problems.append(f"{LOCK_DIR}/{RUNTIME}: {pin.name}=={pin.version} differs from {GRADER}")
    expected_cpu = derive_cpu(locks[RUNTIME])
    if [(p.name, p.version, p.marker) for p in locks[RUNTIME_CPU]] != [(p.name, p.version, p.marker)
                                                                         for p in expected_cpu]:
        problems.append(f"{LOCK_DIR}/{RUNTIME_CPU} is not {RUNTIME} with the CPU builds: run `nox -s lock`")
    return problems


def _by_name(pins: list[Pin]) -> dict[str, list[Pin]]:
    table: dict[str, list[Pin]] = {}
    for pin in pins:
        table.setdefault(pin.name, []).append(pin)
    return table


def derive_cpu(pins: list[Pin]) -> list[Pin]:
    """The CPU variant of a runtime lock: the CUDA libraries and what only they (or torch) pulled
    in are dropped, torch and torchvision get their ``+cpu`` builds."""
    dropped = {p.name for p in pins if CUDA_ONLY.match(p.name)}
    changed = True
    while changed:  # packages needed only by dropped ones (or by torch for CUDA) go too
        changed = False
        for pin in pins:
            if pin.name not in dropped and pin.via and set(pin.via) <= dropped | {"torch"} \
                    and any(parent in dropped for parent in pin.via):
                dropped.add(pin.name)
                changed = True
    kept = []
    for pin in pins:
        if pin.name in dropped:
            continue
        version = f"{pin.version.split('+')[0]}+cpu" if pin.name in CPU_BUILDS else pin.version
        kept.append(Pin(pin.name, version, pin.marker, pin.via))
    return kept


def _render(pins: list[Pin], header: str) -> str:
    lines = [header.rstrip("\n")]
    for pin in pins:
        lines.append(f"{pin.name}=={pin.version}" + (f" ; {pin.marker}" if pin.marker else ""))
        lines.extend(f"    # via {parent}" for parent in pin.via)
    return "\n".join(lines) + "\n"


def write_locks(root: Path = ROOT, uv: str | None = None) -> None:
    """Resolve the locks with uv (needs the package index) and derive the CPU variant."""
    uv = uv or shutil.which("uv")
    if not uv:
        raise SystemExit("uv is not installed: python -m pip install uv")
    folder = root / LOCK_DIR
    fingerprint = f"# pyproject-dependencies-sha256: {dependency_fingerprint(root / 'pyproject.toml')}\n"
    common = [uv, "pip", "compile", "pyproject.toml", "--universal", "--python-version", "3.11",
              "--constraint", f"{LOCK_DIR}/{CONSTRAINTS}", "--no-header", "--quiet"]
    grader = subprocess.run([*common, "--all-extras"], cwd=root, check=True, capture_output=True, text=True).stdout
    (folder / GRADER).write_text(
        "# The grader's environment: every dependency and extra of pyproject.toml, for every nox session.\n"
        "# Generated by `nox -s lock` (uv pip compile --universal); do not edit.\n" + fingerprint + grader)
    runtime = subprocess.run([*common, "--constraint", f"{LOCK_DIR}/{GRADER}"], cwd=root, check=True,
                             capture_output=True, text=True).stdout
    (folder / RUNTIME).write_text(
        "# What submissions run against: pyproject.toml's dependencies, at grader.txt's versions.\n"
        "# Used by the student bundle. Generated by `nox -s lock`; do not edit.\n" + fingerprint + runtime)
    cpu = derive_cpu(read_lock(folder / RUNTIME))
    (folder / RUNTIME_CPU).write_text(_render(cpu, (
        "# runtime.txt with the CPU builds of torch and torchvision and without the CUDA libraries.\n"
        f"# Install with: pip install --no-deps --extra-index-url {CPU_INDEX} -r runtime-cpu.txt\n"
        "# Used by Gradescope's setup.sh. Generated by `nox -s lock` (see autograder/lock.py); do not edit.\n"
        + fingerprint)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.lock", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that the lock agrees with pyproject.toml")
    args = parser.parse_args(argv)
    if not args.check:
        write_locks()
    problems = lock_problems()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
