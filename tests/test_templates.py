"""Templates are generated from solutions; the committed ones must match a fresh generation."""

import ast

import pytest

from autograder.config import available_assignments, load_config
from autograder.templates import (STUB_MESSAGE, TemplateError, check_release, render_release,
                                  solution_path, strip_solutions)

SOLUTION = '''\
import torch
LATENT = 8  # SOLUTION
scale: float = 2.0  # SOLUTION


def f(x):
    """Doubles x."""
    # BEGIN SOLUTION
    y = x * 2
    return y
    # END SOLUTION


class Model:
    def __init__(self):
        # BEGIN SOLUTION NO PROMPT
        self.secret = 1
        # END SOLUTION
        self.kept = 2
    print("answer")  # SOLUTION
'''


def test_markers_are_replaced_like_otter_with_raising_stubs():
    template = strip_solutions(SOLUTION)
    ast.parse(template)
    assert "LATENT = ..." in template and "scale: float = ..." in template
    assert f'    raise NotImplementedError("{STUB_MESSAGE}")' in template
    assert "x * 2" not in template and "secret" not in template and "answer" not in template
    assert "self.kept = 2" in template and '"""Doubles x."""' in template
    assert "    ...\n" in template  # a non-assignment SOLUTION line becomes `...`
    namespace = {}
    exec(template, namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](1)


@pytest.mark.parametrize("broken", [
    "# BEGIN SOLUTION\nx = 1\n",
    "x = 1\n# END SOLUTION\n",
    "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n",
])
def test_unbalanced_markers_are_errors(broken):
    with pytest.raises(TemplateError):
        strip_solutions(broken)


@pytest.mark.parametrize("name", available_assignments())
def test_committed_template_matches_generation_and_leaks_nothing(name):
    """Fails when someone edits a solution without running `nox -s release` (or edits a template)."""
    config = load_config(name)
    assert check_release(config) == []


@pytest.mark.parametrize("name", available_assignments())
def test_course_code_and_solution_import_only_their_own_assignment(name):
    """Student bundles and Gradescope zips ship one assignment's course folder: an import of
    another assignment's code would work in the repository and fail for students."""
    config = load_config(name)
    sources = [solution_path(config), *config.course_dir.rglob("*.py"),
               *(config.repo_root / "grading_tests" / name).glob("*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for module in modules:
                parts = module.split(".")
                assert not (parts[0] == "assignments" and len(parts) > 1 and parts[1] != name), (path, module)


@pytest.mark.parametrize("name", available_assignments())
def test_template_keeps_every_public_name_of_the_solution(name):
    config = load_config(name)
    solution = ast.parse(solution_path(config).read_text())
    template = ast.parse(render_release(config)[f"{config.module}.py"])

    def public_names(tree):
        return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")}

    assert public_names(solution) == public_names(template)


def test_student_bundle_runs_its_public_tests_and_leaks_nothing(tmp_path):
    import subprocess
    import sys
    import zipfile

    from autograder.templates import build_student_bundle, public_tests_fail_cleanly

    config = load_config("autoencoder")
    bundle = build_student_bundle(config, tmp_path / "autoencoder.zip")
    zipfile.ZipFile(bundle).extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped" / "autoencoder"
    assert not list(folder.rglob("test_hidden*")) and not (folder / "solutions").exists()
    assert public_tests_fail_cleanly(folder) is None
    (folder / "autoencoder.py").write_text(solution_path(config).read_text())  # the student finishes
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=folder,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "10 / 10" in done.stdout, done.stdout[-2000:]


def test_a_solution_line_in_released_material_stops_the_bundle(tmp_path, monkeypatch):
    import autograder.templates as templates

    config = load_config("autoencoder")
    real = templates.render_release

    def leaky(cfg):
        files = real(cfg)
        files["README.md"] += "\nHint: `return ((x - x_hat) ** 2).sum(dim=1).mean()`\n"
        return files

    monkeypatch.setattr(templates, "render_release", leaky)
    with pytest.raises(TemplateError, match="contains solution code"):
        templates.build_student_bundle(config, tmp_path / "leaky.zip")
