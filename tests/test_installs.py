"""Installs as students and Gradescope make them, into fresh virtual environments built from the
lock alone (nothing of this environment leaks in).

uv stands in for pip here: it reads the same requirement files and installs the same versions,
from a cache shared with nox's environments, so a fresh venv costs seconds instead of a 5 GB copy.
The CPU builds of torch and torchvision that Gradescope installs live on PyTorch's index, which
this machine cannot reach, so the Gradescope test installs the same versions' PyPI builds (and
their CUDA libraries, from runtime.txt); tests/test_lock.py checks that the CPU variant is that
lock minus exactly those libraries, and setup.sh runs `pip check` on the real image."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from autograder.config import load_config

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ["adversarial", "autoencoder", "colorization", "gan", "reinforcement", "segmentation"]
UV = shutil.which("uv")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(UV is None, reason="uv is not installed (.ci/run installs it)")]


def _venv(path: Path) -> Path:
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, str(path)], check=True)
    return path / "bin" / "python"


def _uv_pip(python: Path, *args: str, cwd: Path | None = None) -> None:
    proc = subprocess.run([UV, "pip", *args[:1], "--python", str(python), *args[1:]], cwd=cwd,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _run(command: list[str], cwd: Path, env_bin: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{env_bin}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_the_student_bundle_installs_with_one_command_and_runs_its_tests(tmp_path):
    from autograder.templates import build_student_bundle

    config = load_config("autoencoder")
    zipfile.ZipFile(build_student_bundle(config, tmp_path / "autoencoder.zip")).extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped" / "autoencoder"
    python = _venv(tmp_path / "venv")
    handout = (folder / "README.md").read_text()
    assert "python -m pip install -r requirements.txt ." in handout  # the command the handout gives
    _uv_pip(python, "install", "-r", "requirements.txt", ".", cwd=folder)
    bin_dir = python.parent
    outcomes = {}
    for label, command in {"check": [str(bin_dir / "autograder"), "check", "autoencoder.py"],
                           "check --isolated": [str(bin_dir / "autograder"), "check", "autoencoder.py", "--isolated"],
                           "pytest": [str(python), "-m", "pytest", "-p", "no:cacheprovider"]}.items():
        blank = _run(command, folder, bin_dir)
        assert blank.returncode == 1 and "Traceback" not in blank.stdout + blank.stderr, (label, blank.stdout[-2000:],
                                                                                          blank.stderr[-2000:])
        outcomes[label] = blank
    shutil.copy(ROOT / "solutions" / "autoencoder" / "autoencoder.py", folder / "autoencoder.py")
    for label in ("check --isolated", "pytest"):
        command = [str(bin_dir / "autograder"), "check", "autoencoder.py", "--isolated"] if label != "pytest" else \
            [str(python), "-m", "pytest", "-p", "no:cacheprovider"]
        solved = _run(command, folder, bin_dir)
        assert solved.returncode == 0, (label, solved.stdout[-2000:], solved.stderr[-2000:])
    # The engine the worker ran is the installed copy, not the repository's.
    probe = _run([str(python), "-c", "import autograder, sys; print(autograder.__file__)"], tmp_path, bin_dir)
    assert str(tmp_path / "venv") in probe.stdout, probe.stdout + probe.stderr


def test_every_gradescope_zip_imports_what_it_needs_in_a_clean_venv(tmp_path):
    from autograder.gradescope import build_zip

    cpu = (ROOT / "requirements" / "runtime-cpu.txt").read_text()
    cuda_only = [line for line in (ROOT / "requirements" / "runtime.txt").read_text().splitlines()
                 if re.match(r"(nvidia-|cuda-|triton==)", line)]
    reachable = tmp_path / "requirements-here.txt"  # see the module docstring
    reachable.write_text(cpu.replace("+cpu", "") + "\n".join(cuda_only) + "\n")
    python = _venv(tmp_path / "venv")
    _uv_pip(python, "install", "--no-deps", "-r", str(reachable))
    _uv_pip(python, "check")
    for name in ASSIGNMENTS:
        source = tmp_path / name
        zipfile.ZipFile(build_zip(load_config(name), tmp_path / f"{name}.zip")).extractall(source)
        assert (source / "requirements.txt").read_text() == cpu
        _uv_pip(python, "install", "--no-deps", "--no-build-isolation", "--reinstall-package", "dl-autograder", ".",
                cwd=source)
        collected = _run([str(python), "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          str(source / "grading_tests" / name)], tmp_path, python.parent)
        assert collected.returncode == 0 and re.search(r"\d+ tests? collected", collected.stdout), (
            name, collected.stdout[-2000:], collected.stderr[-2000:])


SYSTEM_PYTHON = Path("/usr/bin/python3.11")  # the distribution's: readable by every user


@pytest.mark.skipif(os.geteuid() != 0 or not SYSTEM_PYTHON.exists() or shutil.which("setpriv") is None,
                    reason="needs root (to become an ordinary user), setpriv and /usr/bin/python3.11")
@pytest.mark.parametrize("mode", ["user", "landlock"])
def test_the_bundle_runs_isolated_as_an_ordinary_user(tmp_path, mode):
    """A student (or an instructor without root) who installed the bundle in a venv of their own:
    `autograder check --isolated` works as user nobody, in the unprivileged sandbox modes (user
    namespaces, or Landlock where the kernel has no user namespaces for them)."""
    from autograder.sandbox import _mode_works

    if not _mode_works(mode):
        pytest.skip(f"this machine cannot start workers in mode {mode}")
    from autograder.templates import build_student_bundle

    home = Path(tempfile.mkdtemp(prefix="autograder-nobody-"))  # outside root's 0700 pytest folder
    try:
        zipfile.ZipFile(build_student_bundle(load_config("autoencoder"), tmp_path / "autoencoder.zip")).extractall(home)
        folder = home / "autoencoder"
        subprocess.run([UV, "venv", "--quiet", "--python", str(SYSTEM_PYTHON), str(home / "venv")], check=True)
        python = home / "venv" / "bin" / "python"
        _uv_pip(python, "install", "-r", "requirements.txt", ".", cwd=folder)
        shutil.copy(ROOT / "solutions" / "autoencoder" / "autoencoder.py", folder / "autoencoder.py")
        subprocess.run(["chown", "-R", "nobody:nogroup", str(home)], check=True)
        env = {"PATH": f"{python.parent}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
               "AUTOGRADER_SANDBOX": mode}  # that mode, or an error
        proc = subprocess.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                               str(python.parent / "autograder"), "check", "autoencoder.py", "--isolated"],
                              cwd=folder, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0 and "score on these tests: 10 / 10" in proc.stdout, (
            proc.stdout[-3000:] + proc.stderr[-3000:])
    finally:
        shutil.rmtree(home, ignore_errors=True)
