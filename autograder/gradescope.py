"""Gradescope: build an assignment's autograder zip, and grade inside Gradescope's container.

Gradescope unzips the zip into ``/autograder/source``, runs ``setup.sh`` once (as root, Ubuntu
22.04) when the image is built, then for each submission runs ``run_autograder``, which must write
``/autograder/results/results.json``. The student's files are in ``/autograder/submission``.

    autograder gradescope build autoencoder --out dist/gradescope/autoencoder.zip
    python -m autograder.gradescope run --root /autograder --assignment autoencoder   (run_autograder)

The zip holds the engine, the course code and the assignment's grading tests: never the
reference solution nor the example submissions (they contain pieces of it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pwd
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

from autograder.config import AssignmentConfig, load_config
from autograder.grading import grade_submission
from autograder.lock import CPU_INDEX, LOCK_DIR, RUNTIME_CPU
from autograder.results import write_atomic

WORKER_USER = "autograder-student"  # created by setup.sh; runs the students' code
VENV = "/opt/autograder-venv"  # outside /autograder, which is hidden from the worker
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints"}

UV_VERSION = "0.13.9"
PYTHON_VERSION = "cpython-3.11.18"  # a build uv 0.13.9 ships; the project needs Python 3.11+

SETUP_SH = f"""#!/usr/bin/env bash
# Gradescope runs this once, as root, on Ubuntu 22.04, when it builds the autograder image.
# Every package comes from the lock (requirements.txt = requirements/runtime-cpu.txt): exact
# versions, installed without resolving (--no-deps), then checked for consistency (pip check).
set -euo pipefail
cd /autograder/source
apt-get update
apt-get install -y --no-install-recommends python3-pip util-linux libseccomp2
# Ubuntu 22.04's Python is 3.10; it only runs uv (pinned), which installs a pinned standalone
# CPython 3.11 for the grader: no PPA. Not under /root (uv's default), which the unprivileged
# user that runs the students' code could not read.
export UV_PYTHON_INSTALL_DIR=/opt/autograder-python
python3 -m pip install "uv=={UV_VERSION}"
python3 -m uv python install {PYTHON_VERSION}
python3 -m uv venv --managed-python --python {PYTHON_VERSION} {VENV}
# The CPU builds of torch and torchvision are on PyTorch's index; every other package on PyPI.
# --compile-bytecode: the worker's file system is read-only, it could not cache compiled modules.
python3 -m uv pip install --python {VENV}/bin/python --no-deps --compile-bytecode \\
    --index-strategy unsafe-best-match --extra-index-url {CPU_INDEX} -r requirements.txt
python3 -m uv pip check --python {VENV}/bin/python
# Installed as a copy (not editable): the students' worker never needs /autograder/source.
python3 -m uv pip install --python {VENV}/bin/python --no-deps --no-build-isolation --compile-bytecode .
id -u {WORKER_USER} >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin {WORKER_USER}
"""

RUN_AUTOGRADER = f"""#!/usr/bin/env bash
# Gradescope runs this for every submission, as root. It always leaves a valid results.json.
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_PYTHON:-{VENV}/bin/python}}"
mkdir -p "$ROOT/results"
# Only root (the grader) may read the grading tests or write the results.
chmod 700 "$ROOT/source" "$ROOT/results" 2>/dev/null || true
"$PYTHON" -m autograder.gradescope run --root "$ROOT" --assignment "$(cat "$ROOT/source/ASSIGNMENT")"
if [ ! -s "$ROOT/results/results.json" ]; then
  cat > "$ROOT/results/results.json" <<'JSON'
{{"score": 0, "execution_time": 0, "output": "The autograder could not run (the grader itself failed, not your submission). Please tell your instructor.", "output_format": "md", "tests": [], "extra_data": {{"submission": "submission", "assignment": "unknown", "seed": null, "device": null, "versions": {{}}, "max_score": 0, "error": "run_autograder fallback"}}}}
JSON
fi
"""


def _requirements(root: Path) -> str:
    """The Gradescope image's requirements: the CPU variant of the lock, as it is."""
    return (root / LOCK_DIR / RUNTIME_CPU).read_text(encoding="utf-8")


def _add_tree(zf: zipfile.ZipFile, folder: Path, arcbase: str) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not (set(path.parts) & EXCLUDED_PARTS) and path.suffix != ".pyc":
            zf.write(path, f"{arcbase}/{path.relative_to(folder)}")


def _add_text(zf: zipfile.ZipFile, name: str, text: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.external_attr = (0o755 if executable else 0o644) << 16
    zf.writestr(info, text)


def build_zip(config: AssignmentConfig, out: Path) -> Path:
    """Write the Gradescope autograder zip of an assignment."""
    root = config.repo_root
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        _add_text(zf, "setup.sh", SETUP_SH, executable=True)
        _add_text(zf, "run_autograder", RUN_AUTOGRADER, executable=True)
        _add_text(zf, "requirements.txt", _requirements(root))
        _add_text(zf, "ASSIGNMENT", config.name + "\n")
        zf.write(root / "pyproject.toml", "pyproject.toml")
        zf.write(root / "README.md", "README.md")
        _add_tree(zf, root / "autograder", "autograder")
        zf.write(root / "assignments" / "__init__.py", "assignments/__init__.py")
        _add_tree(zf, config.course_dir, f"assignments/{config.name}")
        _add_tree(zf, root / "grading_tests" / config.name, f"grading_tests/{config.name}")
    return out


def _metadata(root: Path) -> dict:
    """What results may record of submission_metadata.json (no names or e-mails)."""
    try:
        data = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    assignment = data.get("assignment") or {}
    return {"submission_id": data.get("id"), "created_at": data.get("created_at"),
            "assignment_id": assignment.get("id"), "due_date": assignment.get("due_date"),
            "previous_submissions": len(data.get("previous_submissions") or [])}


def _failure_results(assignment: str, message: str, started: float) -> dict:
    return {
        "score": 0, "execution_time": round(time.monotonic() - started, 3), "output_format": "md",
        "output": f"The autograder failed while grading this submission (not a problem with your code). "
                  f"Please tell your instructor.\n\n```\n{message[-3000:]}\n```",
        "tests": [],
        "extra_data": {"submission": "submission", "assignment": assignment, "seed": None, "device": None,
                       "versions": {"python": platform.python_version()}, "max_score": 0, "error": message[-3000:]},
    }


def run(root: Path, assignment: str) -> dict:
    """Grade ``root/submission`` and write ``root/results/results.json``. Never raises."""
    started = time.monotonic()
    results_path = root / "results" / "results.json"
    try:
        config = load_config(assignment)
        if os.geteuid() == 0 and "AUTOGRADER_WORKER_USER" not in os.environ:
            try:
                pwd.getpwnam(WORKER_USER)
                os.environ["AUTOGRADER_WORKER_USER"] = WORKER_USER
            except KeyError:
                pass  # no such user (a local dry run): namespaces still hide /autograder
        os.environ["AUTOGRADER_HIDDEN_PATHS"] = os.pathsep.join(
            [str(root / "source"), str(root / "results")]
            + [p for p in os.environ.get("AUTOGRADER_HIDDEN_PATHS", "").split(os.pathsep) if p])
        with tempfile.TemporaryDirectory(prefix="gradescope-") as out:
            result = grade_submission(config, root / "submission", Path(out), device="cpu",
                                      tests_dir=root / "source" / "grading_tests" / config.name)
        data = result.to_gradescope()
        data["extra_data"]["gradescope"] = _metadata(root)
    except BaseException:  # noqa: BLE001 - whatever happens, Gradescope gets a valid results.json
        data = _failure_results(assignment, traceback.format_exc(), started)
    write_atomic(results_path, json.dumps(data, indent=2))
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="grade /autograder/submission (what run_autograder does)")
    run_parser.add_argument("--root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    run_parser.add_argument("--assignment", required=True)
    build_parser = sub.add_parser("build", help="write the autograder zip of an assignment")
    build_parser.add_argument("assignment")
    build_parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.command == "run":
        data = run(Path(args.root), args.assignment.strip())
        print(f"score {data['score']}: results in {Path(args.root) / 'results' / 'results.json'}")
        return 0
    config = load_config(args.assignment)
    out = Path(args.out or f"dist/gradescope/{config.name}.zip")
    print(f"wrote {build_zip(config, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
