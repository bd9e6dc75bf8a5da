"""The lock (requirements/) agrees with pyproject.toml, and Gradescope's setup.sh installs nothing
that is not in it. All offline: see autograder/lock.py for how the lock is made."""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker

from autograder.lock import lock_problems, read_lock

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "requirements"


def _copy_project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(LOCKS, tmp_path / "requirements")
    return tmp_path


def test_the_lock_agrees_with_pyproject():
    assert lock_problems(ROOT) == []


def test_a_dependency_added_without_relocking_is_caught(tmp_path):
    root = _copy_project(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('    "numpy>=1.24",\n', '    "numpy>=1.24",\n    "tomli-w>=1",\n'))
    problems = lock_problems(root)
    assert any("made from another pyproject.toml" in p for p in problems), problems
    assert any("tomli-w is not pinned" in p for p in problems), problems


def test_a_pin_outside_the_declared_range_is_caught(tmp_path):
    root = _copy_project(tmp_path)
    grader = root / "requirements" / "grader.txt"
    text, count = re.subn(r"^numpy==[^\s;]+", "numpy==1.0.0", grader.read_text(), flags=re.M)
    assert count
    grader.write_text(text)
    problems = lock_problems(root)
    assert any("numpy==1.0.0 does not meet 'numpy>=1.24'" in p for p in problems), problems
    assert any("runtime.txt: numpy" in p and "differs from grader.txt" in p for p in problems), problems


def test_a_line_that_is_not_an_exact_pin_is_refused(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("torch==2.14.1\nnumpy>=1.24\n")
    with pytest.raises(ValueError, match="not an exact pin"):
        read_lock(lock)


def test_the_cpu_variant_is_the_runtime_lock_without_the_cuda_libraries():
    runtime = {(p.name, p.marker): p.version for p in read_lock(LOCKS / "runtime.txt")}
    cpu = {(p.name, p.marker): p.version for p in read_lock(LOCKS / "runtime-cpu.txt")}
    assert cpu[("torch", None)] == runtime[("torch", None)] + "+cpu"
    assert cpu[("torchvision", None)] == runtime[("torchvision", None)] + "+cpu"
    dropped = {name for name, _ in runtime} - {name for name, _ in cpu}
    assert dropped and all(re.match(r"nvidia-|cuda-|triton$", name) for name in dropped), dropped
    assert all(runtime[key] == version for key, version in cpu.items() if key[0] not in ("torch", "torchvision"))


@pytest.mark.skipif(not os.environ.get("AUTOGRADER_LOCKED_ENV"),
                    reason="not in an environment nox built from the lock (AUTOGRADER_LOCKED_ENV unset)")
def test_this_environment_has_the_locked_versions():
    wrong = []
    for pin in read_lock(ROOT / os.environ["AUTOGRADER_LOCKED_ENV"]):
        if pin.marker and not Marker(pin.marker).evaluate():
            continue
        try:
            installed = metadata.version(pin.name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != pin.version:
            wrong.append(f"{pin.name}: locked {pin.version}, installed {installed}")
    assert not wrong, wrong


def test_gradescope_setup_installs_only_locked_versions(tmp_path):
    from autograder.config import load_config
    from autograder.gradescope import SETUP_SH, build_zip

    assert "ppa:" not in SETUP_SH and "add-apt-repository" not in SETUP_SH
    # The interpreter must be readable by the unprivileged user that runs students' code.
    assert "export UV_PYTHON_INSTALL_DIR=/opt/" in SETUP_SH
    commands = SETUP_SH.replace("\\\n", " ").splitlines()
    installs = [line for line in commands if re.search(r"\bpip install\b", line)]
    assert installs
    for line in installs:
        packages = line.split("pip install", 1)[1].split()
        if "-r" in packages:  # the lock, taken as it is
            assert "--no-deps" in packages and packages[packages.index("-r") + 1] == "requirements.txt", line
        elif packages[-1] == ".":  # the engine itself, nothing resolved
            assert "--no-deps" in packages and "--no-build-isolation" in packages, line
        else:  # a tool: pinned
            named = [p.strip('"') for p in packages if not p.startswith("-")]
            assert named and all("==" in p for p in named), line
    assert any(re.search(r"\bpip check\b", line) for line in commands)
    with zipfile.ZipFile(build_zip(load_config("autoencoder"), tmp_path / "autoencoder.zip")) as zf:
        assert zf.read("requirements.txt").decode() == (LOCKS / "runtime-cpu.txt").read_text()
