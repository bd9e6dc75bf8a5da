"""Loading submissions: scripts, notebooks, folders and zips, and clear messages when they are bad."""

import zipfile

import nbformat
import pytest

from autograder.errors import SubmissionError
from autograder.submission import notebook_to_script, prepare_submission, syntax_error_location

EXPECTED = ["autoencoder.py", "autoencoder.ipynb"]


def make_notebook(*cells):
    nb = nbformat.v4.new_notebook()
    for cell in cells:
        if isinstance(cell, tuple):
            source, tags = cell
            nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags}))
        elif cell.startswith("MD:"):
            nb.cells.append(nbformat.v4.new_markdown_cell(cell[3:]))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(cell))
    return nbformat.writes(nb)


def test_notebook_code_cells_in_order_without_ipython_lines():
    text = make_notebook(
        "%matplotlib inline\n!pip install torch\nimport math",
        "MD:# Title",
        "def f(x):\n    !echo inside\n    return x + 1",
        "files = !ls\nf?\n%time y = f(1)",
        ("raise RuntimeError('long experiment')", ["skip"]),
        "%%bash\necho hi",
        "%%time\nz = f(2)",
    )
    script, notes = notebook_to_script(text)
    namespace = {}
    exec(compile(script, "nb.py", "exec"), namespace)  # the converted script is valid and runs
    assert namespace["z"] == 3 and namespace["f"](1) == 2
    assert "long experiment" not in script and "echo hi" not in script
    assert script.index("import math") < script.index("def f")
    assert any("skip" in n for n in notes) and any("bash" in n for n in notes)
    assert "# %% notebook cell 3" in script


def test_unreadable_notebook_gets_a_clear_message():
    with pytest.raises(SubmissionError, match="not a readable Jupyter notebook"):
        notebook_to_script('{"cells": [', "autoencoder.ipynb")


def test_syntax_error_is_located_in_its_notebook_cell():
    script, _ = notebook_to_script(make_notebook("x = 1", "def broken(:\n    pass"))
    message = syntax_error_location(script, "autoencoder.py")
    assert "notebook cell 2" in message and "SyntaxError" in message


@pytest.mark.parametrize("layout", ["file", "folder", "nested-zip", "other-name"])
def test_entry_file_is_found(tmp_path, layout):
    src = tmp_path / "src"
    src.mkdir()
    if layout == "file":
        source = src / "autoencoder.py"
        source.write_text("x = 1\n")
    elif layout == "folder":
        (src / "autoencoder.py").write_text("x = 1\n")
        (src / "weights.pt").write_bytes(b"\x00")
        source = src
    elif layout == "nested-zip":
        source = tmp_path / "alice.zip"
        with zipfile.ZipFile(source, "w") as zf:
            zf.writestr("alice/autoencoder.ipynb", make_notebook("x = 1"))
            zf.writestr("__MACOSX/alice/._autoencoder.ipynb", "junk")
    else:
        source = src / "TP2 final (1).ipynb"
        source.write_text(make_notebook("x = 1"))
    prepared = prepare_submission(source, tmp_path / "work", EXPECTED, "autoencoder")
    assert prepared.error is None, prepared.error
    assert (prepared.workdir / prepared.entry).read_text().strip().endswith("x = 1")


def test_missing_and_ambiguous_submissions_are_reported(tmp_path):
    prepared = prepare_submission(tmp_path / "nothing.py", tmp_path / "w1", EXPECTED, "autoencoder")
    assert "does not exist" in prepared.error
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "a.py").write_text("")
    (folder / "b.py").write_text("")
    prepared = prepare_submission(folder, tmp_path / "w2", EXPECTED, "autoencoder")
    assert "Expected one of autoencoder.py, autoencoder.ipynb" in prepared.error and "a.py" in prepared.error


def test_zip_with_path_traversal_is_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("autoencoder.py", "x = 1")
        zf.writestr("../../escaped.py", "x = 2")
    prepared = prepare_submission(evil, tmp_path / "work", EXPECTED, "autoencoder")
    assert "unsafe path" in prepared.error
    assert not (tmp_path / "escaped.py").exists()


def test_corrupt_zip_is_reported(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really")
    prepared = prepare_submission(bad, tmp_path / "work", EXPECTED, "autoencoder")
    assert "not a valid zip" in prepared.error


STUB = 'raise NotImplementedError("not implemented yet: replace this line with your code")'


@pytest.mark.parametrize("worked_in", ["notebook", "script"])
def test_with_both_files_the_one_worked_in_is_graded_and_the_other_is_named(tmp_path, worked_in):
    """The template folder ships autoencoder.py and autoencoder.ipynb: the one with the fewest stubs
    left is graded, whichever is newer, and a note says the other was ignored."""
    import os

    folder = tmp_path / "alice"
    folder.mkdir()
    blank = f"def f():\n    {STUB}\n"
    done = "def f():\n    return 1\n"
    (folder / "autoencoder.ipynb").write_text(make_notebook(done if worked_in == "notebook" else blank))
    (folder / "autoencoder.py").write_text(done if worked_in == "script" else blank)
    older = folder / ("autoencoder.ipynb" if worked_in == "notebook" else "autoencoder.py")
    os.utime(older, (1_000_000, 1_000_000))  # the file worked in is the older one: mtime must not decide
    prepared = prepare_submission(folder, tmp_path / "work", EXPECTED, "autoencoder")
    assert "return 1" in (prepared.workdir / prepared.entry).read_text()
    chosen = "autoencoder.ipynb" if worked_in == "notebook" else "autoencoder.py"
    assert prepared.notes[0] == f"graded the {worked_in} {chosen}"
    assert any("was ignored" in note for note in prepared.notes)


def test_local_pytest_uses_the_same_rule(tmp_path):
    from autograder.submission import choose_entry

    (tmp_path / "a.py").write_text(f"def f():\n    {STUB}\n")
    (tmp_path / "a.ipynb").write_text(make_notebook(f"def f():\n    {STUB}\n"))
    chosen, note = choose_entry([tmp_path / "a.py", tmp_path / "a.ipynb"])  # untouched template: the notebook
    assert chosen.name == "a.ipynb" and "a.py was ignored" in note


def test_calibration_scripts_load_a_trusted_notebook_or_script(tmp_path):
    """load_trusted_solution (instructors' calibration scripts only) imports a notebook the way the
    grader converts it (magics dropped, skip-tagged cells left out) and a script; dataclasses work."""
    from autograder.submission import load_trusted_solution

    notebook = tmp_path / "solution.ipynb"
    notebook.write_text(make_notebook("%matplotlib inline\nfrom dataclasses import dataclass",
                                      "@dataclass\nclass Point:\n    x: int\n\ndef double(p):\n    return Point(2 * p.x)",
                                      ("raise RuntimeError('a skipped cell ran')", ["skip"])))
    module = load_trusted_solution(notebook, "calibrated_notebook")
    assert module.double(module.Point(3)) == module.Point(6)
    script = tmp_path / "solution.py"
    script.write_text("VALUE = 41 + 1\n")
    assert load_trusted_solution(script).VALUE == 42
