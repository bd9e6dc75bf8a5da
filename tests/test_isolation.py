"""Hostile and broken submissions against the real grading driver.

A small grading-test folder (below) is used so each case costs seconds; the same protections
are exercised on the real autoencoder tests in test_autoencoder_examples.py.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.config import load_config
from autograder.grading import grade_batch, grade_submission
from autograder.results import read_results_json

pytestmark = pytest.mark.slow

GRADING_TESTS = '''
import os
import pytest
import torch

@pytest.mark.points(1)
@pytest.mark.public
def test_double(sub):
    """double(x) returns 2 x."""
    x = torch.arange(4.0)
    assert torch.allclose(sub.double(x), 2 * x), "double(x) should be 2 * x"

@pytest.mark.points(1)
@pytest.mark.hidden
def test_double_equals(sub):
    assert sub.double(3) == 6, "double(3) should be 6"

@pytest.mark.points(1)
@pytest.mark.hidden
@pytest.mark.budget(3)
def test_slow(sub):
    """slow() returns within 3 seconds."""
    assert sub.slow() == 1

@pytest.mark.points(1)
@pytest.mark.public
def test_after_slow(sub):
    assert sub.double(5) == 10

@pytest.mark.points(1)
@pytest.mark.hidden
def test_cannot_see_grader(sub):
    """The student's process cannot see the grader's files or environment."""
    assert sub.peek() == [], "saw " + repr(sub.peek())
'''

GOOD = '''
import os
def double(x):
    return 2 * x
def slow():
    return 1
def peek():
    seen = []
    for folder in (".", ".."):
        try:
            names = os.listdir(folder)
        except PermissionError:  # Landlock: the parent folder cannot even be listed
            continue
        seen += [name for name in names if "raw-results" in name or name.startswith(("test_grading", "grader-"))]
    seen += [k for k in os.environ if "SECRET" in k]
    return seen
'''


@pytest.fixture(scope="module")
def tests_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grading_tests")
    (folder / "test_grading.py").write_text(GRADING_TESTS)
    return folder


@pytest.fixture(scope="module")
def config():
    cfg = load_config("autoencoder")
    cfg.submission_seconds = 60
    return cfg


def grade(config, tests_dir, tmp_path, source: str, name="student.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    result = grade_submission(config, path, tmp_path / "out", device="cpu", tests_dir=tests_dir)
    results_file = tmp_path / "out" / path.stem / "results.json"
    assert results_file.is_file()
    data = json.loads(results_file.read_text())
    assert {"score", "tests", "output", "execution_time"} <= set(data)
    return result, {t.name: t for t in result.tests}


def test_good_submission_scores_everything(config, tests_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_SECRET_TOKEN", "do-not-leak")
    result, tests = grade(config, tests_dir, tmp_path, GOOD)
    assert result.score == 5, {n: t.output for n, t in tests.items()}
    assert result.versions["isolated"] is True and result.versions["worker"]["pid"] > 0
    assert tests["test_cannot_see_grader"].visibility == "after_published"
    assert tests["test_double"].visibility == "visible"


@pytest.mark.parametrize("exit_call", ["import sys; sys.exit(0)", "import os; os._exit(0)", "raise SystemExit(0)"])
def test_exiting_at_import_gains_nothing(config, tests_dir, tmp_path, exit_call):
    result, tests = grade(config, tests_dir, tmp_path, GOOD + "\n" + exit_call + "\n")
    assert result.score == 0
    assert all("could not be imported" in t.output for t in tests.values()), tests["test_double"].output


def test_monkeypatching_the_grader_libraries_gains_nothing(config, tests_dir, tmp_path):
    cheat = '''
    import builtins, torch, numpy, pytest
    torch.allclose = lambda *a, **k: True
    torch.equal = lambda *a, **k: True
    torch.testing.assert_close = lambda *a, **k: None
    numpy.allclose = lambda *a, **k: True
    pytest.fail = lambda *a, **k: None
    builtins.AssertionError = Exception
    def double(x):
        return x + 1
    def slow():
        return 1
    def peek():
        return []
    '''
    result, tests = grade(config, tests_dir, tmp_path, cheat)
    assert tests["test_double"].status == "failed" and tests["test_double_equals"].status == "failed"
    assert "double(x) should be 2 * x" in tests["test_double"].output


def test_always_equal_objects_gain_nothing(config, tests_dir, tmp_path):
    cheat = '''
    class Anything:
        def __eq__(self, other): return True
        def __bool__(self): return True
        def __array__(self, *a, **k): raise RuntimeError
    def double(x):
        return Anything()
    def slow():
        return Anything()
    def peek():
        return []
    '''
    result, tests = grade(config, tests_dir, tmp_path, cheat)
    assert result.score == 1  # only test_cannot_see_grader
    assert "not a tensor or plain value" in tests["test_double"].output


def test_fake_output_and_fake_results_gain_nothing(config, tests_dir, tmp_path):
    cheat = GOOD.replace("return 2 * x", "return 0") + '''
import json, os, sys
print("PASSED " * 1000)
print("=== 5 passed in 0.01s ===")
fake = {"score": 100, "tests": []}
for path in ("results.json", "../results.json", "/tmp/results.json", os.path.expanduser("~/results.json")):
    try:
        open(path, "w").write(json.dumps(fake))
    except OSError:
        pass
'''
    result, tests = grade(config, tests_dir, tmp_path, cheat)
    assert result.score == 2  # test_slow and test_cannot_see_grader do not use double()
    assert tests["test_double"].status == "failed"


def test_shadowing_modules_in_the_submission_folder_gain_nothing(config, tests_dir, tmp_path):
    folder = tmp_path / "alice"
    folder.mkdir()
    (folder / "autoencoder.py").write_text(textwrap.dedent(GOOD).replace("return 2 * x", "return 0"))
    (folder / "conftest.py").write_text("import pytest\n@pytest.fixture(autouse=True)\ndef win(): pytest.skip()\n")
    (folder / "pytest.py").write_text("raise SystemExit(0)\n")
    (folder / "torch.py").write_text("allclose = lambda *a, **k: True\n")
    result = grade_submission(config, folder, tmp_path / "out", device="cpu", tests_dir=tests_dir)
    tests = {t.name: t for t in result.tests}
    assert tests["test_double"].status == "failed" and result.score == 2


def test_infinite_loops_time_out_and_later_tests_still_run(config, tests_dir, tmp_path):
    result, tests = grade(config, tests_dir, tmp_path, GOOD.replace("    return 1", "    while True:\n        pass"))
    assert tests["test_slow"].status == "failed" and "time budget" in tests["test_slow"].output
    assert tests["test_slow"].duration < 15
    assert tests["test_after_slow"].status == "passed"
    assert result.score == 4


def test_children_and_output_floods_are_contained(config, tests_dir, tmp_path):
    cheat = GOOD + '''
import subprocess, sys, threading
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
threading.Thread(target=lambda: [print("x" * 10000) for _ in range(10**9)], daemon=True).start()
'''
    result, tests = grade(config, tests_dir, tmp_path, cheat)
    assert result.score == 5


def test_broken_submissions_get_zero_and_a_message_and_the_batch_goes_on(config, tests_dir, tmp_path):
    sources = {
        "syntax.py": "def double(x)\n    return 2 * x\n",
        "importerror.py": "import numpyy\n",
        "wrongnames.py": "def triple(x):\n    return 3 * x\n",
        "empty.py": "",
        "notebook.ipynb": '{"cells": [',
        "good.py": textwrap.dedent(GOOD),
    }
    paths = []
    for name, text in sources.items():
        (tmp_path / name).write_text(text)
        paths.append(tmp_path / name)
    failing_slow = textwrap.dedent(GOOD).replace("    return 1", "    raise ValueError('caf\u00e9')")
    (tmp_path / "cp1252.py").write_bytes(("# r\u00e9sum\u00e9 of my work\n" + failing_slow).encode("cp1252"))
    paths.append(tmp_path / "cp1252.py")
    paths.append(tmp_path / "missing.py")
    results = {r.submission: r for r in grade_batch(config, paths, tmp_path / "out", device="cpu", tests_dir=tests_dir)}
    assert results["good"].score == 5
    for name in ("syntax", "importerror", "wrongnames", "empty", "notebook", "missing"):
        assert results[name].score == 0 and len(results[name].tests) == 5, name
    first = {name: results[name].tests[0].output for name in results}
    assert "SyntaxError" in first["syntax"]
    assert "No module named 'numpyy'" in first["importerror"] and "not installed where" in first["importerror"]
    # One problem line for the gradebook and the batch summary, not only the same message on every test.
    assert "No module named 'numpyy'" in results["importerror"].error
    assert results["good"].error is None
    assert "does not define `double`" in first["wrongnames"]
    assert "not a readable Jupyter notebook" in first["notebook"]
    assert "does not exist" in first["missing"]
    # A script saved in cp1252 with an accent in a string: Python refuses it, the grader (which reads
    # it leniently for its messages) says why on every test and scores every test.
    assert results["cp1252"].score == 0 and len(results["cp1252"].tests) == 5
    assert "codec can't decode" in first["cp1252"], first["cp1252"]
    gradebook = (tmp_path / "out" / "gradebook.csv").read_text().splitlines()
    assert len(gradebook) == 1 + len(paths) and gradebook[0].startswith("submission,score,max_score")
    for name in results:
        assert read_results_json(tmp_path / "out" / name / "results.json").submission == name


def test_regrading_gives_the_same_verdict(config, tests_dir, tmp_path):
    randomish = GOOD.replace("return 2 * x", "import torch\n    return 2 * x if torch.rand(()) < 0.5 else 0")
    first, _ = grade(config, tests_dir, tmp_path / "a", randomish) if (tmp_path / "a").mkdir() is None else None
    second, _ = grade(config, tests_dir, tmp_path / "b", randomish) if (tmp_path / "b").mkdir() is None else None
    assert [t.status for t in first.tests] == [t.status for t in second.tests]
    assert first.seed == second.seed == config.seed


def test_worker_user_misconfiguration_stops_early():
    from autograder.sandbox import check_worker_user

    check_worker_user(None)
    with pytest.raises(SystemExit, match="--worker-user"):
        check_worker_user("no-such-user-here")


def test_memory_hogs_fail_their_test_only(config, tests_dir, tmp_path):
    hog = GOOD.replace("def slow():\n    return 1", "def slow():\n    import torch\n    return torch.ones(4 * 10**9).sum()")
    result, tests = grade(config, tests_dir, tmp_path, hog)
    assert tests["test_slow"].status == "failed" and "memory" in tests["test_slow"].output.lower()
    assert result.score == 4


PROBE_TEST = '''
import pytest

@pytest.mark.points(1)
@pytest.mark.public
def test_probe(sub):
    report = sub.probe()
    assert report == {"solutions": "denied", "grading_tests": "denied", "write_repo": "denied",
                      "other_submission": "denied", "results": "denied", "write_workdir": "ok",
                      "network": "denied", "git": "denied", "examples": "denied", "write_dev": "denied",
                      "write_proc_sys": "denied", "write_sys": "denied", "write_tmp": "denied",
                      "grader_process": "denied", "shm_left_by_others": "denied", "write_shm": "WRITE_SHM"}, report
'''

PROBE = '''
import os, socket

def attempt(action):
    try:
        action()
        return "ok"
    except OSError:
        return "denied"

def probe():
    return {{
        "solutions": attempt(lambda: os.listdir({solutions!r})),
        "grading_tests": attempt(lambda: open({hidden_test!r}).read()),
        "write_repo": attempt(lambda: open({repo_file!r}, "w").write("pwned")),
        "other_submission": attempt(lambda: open({other!r}).read()),
        "results": attempt(lambda: os.listdir({out!r})),
        "write_workdir": attempt(lambda: open("scratch.txt", "w").write("fine")),
        "network": attempt(lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2)),
        "git": attempt(lambda: os.listdir({git!r})),
        "examples": attempt(lambda: os.listdir({examples!r})),
        "write_dev": attempt(lambda: open("/dev/planted", "w").write("x")),
        "write_proc_sys": attempt(lambda: open("/proc/sys/kernel/hostname", "w").write("x")),
        "write_sys": attempt(lambda: open("/sys/fs/cgroup/planted", "w").write("x")),
        "write_tmp": attempt(lambda: open("/tmp/planted-by-a-student", "w").write("x")),
        "grader_process": attempt(lambda: os.kill({grader_pid}, 0)),
        "shm_left_by_others": attempt(lambda: open("/dev/shm/{shm_name}").read()),
        "write_shm": attempt(lambda: open("/dev/shm/mine", "w").write("x")),
    }}
'''


@pytest.mark.parametrize("mode", ["root", "user", "landlock"])
def test_namespaces_hide_the_graders_folders_and_block_writes_and_network(config, tmp_path, monkeypatch, mode):
    """Workers run in namespaces, set up by a root grader (CI, Gradescope, containers) or, without
    root, inside an unprivileged user namespace: the grader's folders and other students' files
    are hidden, the file system is read-only, /dev/shm is the worker's own, grader processes are
    out of sight, and there is no network. Without namespaces, Landlock gives the same answers,
    but /dev/shm is closed instead of private."""
    import socket

    from autograder.sandbox import SANDBOX_ENV, _mode_works

    if not _mode_works(mode):
        pytest.skip(f"this machine cannot start workers in {mode} namespaces")
    monkeypatch.setenv(SANDBOX_ENV, mode)  # the grading process inherits it
    tests = tmp_path / "probe_tests"
    tests.mkdir()
    (tests / "test_probe.py").write_text(PROBE_TEST.replace("WRITE_SHM", "denied" if mode == "landlock" else "ok"))
    subs = tmp_path / "submissions"
    subs.mkdir()
    (subs / "bob.py").write_text("secret = 1\n")
    out = tmp_path / "out"
    out.mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    repo = config.repo_root
    shm_name = f"left-by-another-student-{os.getpid()}"
    (subs / "alice.py").write_text(PROBE.format(
        solutions=str(repo / "solutions"), hidden_test=str(repo / "grading_tests" / "autoencoder" / "test_hidden.py"),
        repo_file=str(repo / "README.md"), other=str(subs / "bob.py"), out=str(out),
        port=listener.getsockname()[1], git=str(repo / ".git"), examples=str(repo / "examples"),
        grader_pid=os.getpid(), shm_name=shm_name))
    readme = (repo / "README.md").read_text()
    Path("/dev/shm", shm_name).write_text("secret")  # what an earlier worker (or anyone) left in the machine's /dev/shm
    try:
        result = grade_submission(config, subs / "alice.py", out, device="cpu", tests_dir=tests)
    finally:
        listener.close()
        Path("/dev/shm", shm_name).unlink()
    assert (repo / "README.md").read_text() == readme
    assert not Path("/dev/planted").exists() and not Path("/tmp/planted-by-a-student").exists()
    assert not Path("/dev/shm/mine").exists()
    assert result.score == 1, result.tests[0].output
    assert result.versions["sandbox"].startswith({"root": "namespaces (root", "user": "user namespaces",
                                                  "landlock": "Landlock"}[mode])


def test_grader_failures_are_not_blamed_on_the_student(monkeypatch, tmp_path):
    from autograder import remote
    from autograder.errors import GraderError

    def broken(*args, **kwargs):
        raise OSError("no such interpreter")

    monkeypatch.setattr(remote, "WorkerProcess", broken)
    session = remote.Session(remote.SubprocessBackend(tmp_path), entry="student.py")
    with pytest.raises(GraderError, match="not a problem with your submission"):
        session.hello()


def test_sandbox_switches_to_the_worker_user_after_mounting(tmp_path):
    """The mechanism behind --worker-user on a root grader, shown with a shell instead of Python
    (here the interpreter lives under /root, which an unprivileged user cannot enter)."""
    import os
    import shutil
    import subprocess

    from autograder.sandbox import _mode_works, _namespace_prefix

    if not _mode_works("root"):
        pytest.skip("needs a root grader with Linux namespaces")
    secret = tmp_path / "source"
    secret.mkdir(mode=0o700)
    (secret / "test_hidden.py").write_text("hidden")
    workdir = tmp_path / "work"
    workdir.mkdir()
    shutil.chown(workdir, user="nobody")
    os.chmod(tmp_path, 0o755)
    command = _namespace_prefix((), workdir, user="nobody") + [
        "sh", "-c", f"id -u; cat {secret}/test_hidden.py 2>/dev/null || echo denied; touch mine && echo wrote"]
    out = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=30).stdout.split()
    assert out == ["65534", "denied", "wrote"]


def test_worker_user_end_to_end(config, tests_dir, tmp_path):
    from autograder.sandbox import check_worker_user

    try:
        check_worker_user("nobody")
    except SystemExit as exc:
        pytest.skip(str(exc).splitlines()[0])
    import os

    os.environ["AUTOGRADER_WORKER_USER"] = "nobody"
    try:
        result, _ = grade(config, tests_dir, tmp_path, GOOD)
    finally:
        del os.environ["AUTOGRADER_WORKER_USER"]
    assert result.score == 5


def test_a_notebook_that_trains_at_import_gets_one_clear_message_naming_its_cell(config, tests_dir, tmp_path):
    """Importing has its own budget; when it runs out, every test says which notebook cell was
    running and how to tag it `skip`, and the submission is not imported again for every test."""
    import time

    import nbformat

    config = load_config("autoencoder")
    config.import_seconds = 3
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# My practical"),
                      nbformat.v4.new_code_cell(textwrap.dedent(GOOD)),
                      nbformat.v4.new_code_cell("step = 0\nwhile True:  # 'training'\n    step += 1")]
    path = tmp_path / "trains_at_import.ipynb"
    nbformat.write(notebook, path)
    started = time.monotonic()
    result = grade_submission(config, path, tmp_path / "out", device="cpu", tests_dir=tests_dir)
    elapsed = time.monotonic() - started
    assert result.score == 0 and len(result.tests) == 5
    for test in result.tests:
        assert "Importing your submission took more than the 3 s of CPU time" in test.output, test.output
        assert "notebook cell 3, line 3" in test.output and "`skip`" in test.output, test.output
    assert elapsed < 60  # imported once (about 3 s), not once per test


def test_the_worker_sees_of_the_checkout_only_the_packages_it_imports(tmp_path):
    """Everything in the repository but autograder/ and assignments/ is hidden (.git, solutions,
    grading tests, examples, output folders...), and a virtual environment inside the checkout
    stays visible, or the worker could not run."""
    from autograder.plugin import _around, checkout_hidden_paths

    root = tmp_path / "course"
    for folder in ("autograder", "assignments", "solutions", ".git", "grading-output/alice", ".nox/tests/lib",
                   ".nox/demo"):
        (root / folder).mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    hidden = checkout_hidden_paths(root)
    assert {p.name for p in hidden} == {"solutions", ".git", "grading-output", ".nox", "pyproject.toml"}
    venv = root / ".nox" / "tests"
    kept = [q for p in hidden for q in _around(p, [venv])]
    assert root / ".nox" / "demo" in kept and venv not in kept and root / ".nox" not in kept


def test_require_sandbox_refuses_to_grade_unprotected(tmp_path, capsys, monkeypatch):
    from autograder.cli import main
    from autograder.sandbox import SANDBOX_ENV

    monkeypatch.delenv(SANDBOX_ENV, raising=False)
    (tmp_path / "alice.py").write_text("x = 1\n")
    code = main(["grade", "autoencoder", str(tmp_path / "alice.py"), "--out", str(tmp_path / "out"),
                 "--sandbox", "none", "--require-sandbox"])
    assert code == 2 and "--require-sandbox" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["root", "user", "landlock"])
@pytest.mark.parametrize("where", ["repository root", "template folder"])
def test_isolated_runs_work_from_the_repository_root_and_a_template_folder(tmp_path, mode, where):
    """`pytest --isolated` (an instructor at the repository root) and `autograder check --isolated`
    (a student in the template folder) with the editable install of this checkout: the checkout is
    hidden from the worker, but the engine and course code it imports are not. Root namespaces and
    the unprivileged user namespace (what a non-root instructor gets) alike."""
    from autograder.sandbox import SANDBOX_ENV, _mode_works

    if not _mode_works(mode):
        pytest.skip(f"this machine cannot start workers in {mode} namespaces")
    root = Path(__file__).resolve().parent.parent
    solution = root / "solutions" / "autoencoder" / "autoencoder.py"
    env = {**os.environ, SANDBOX_ENV: mode}
    if where == "repository root":
        command = [sys.executable, "-m", "pytest", "grading_tests/autoencoder/test_public.py", "--assignment",
                   "autoencoder", "--submission", str(solution), "--isolated", "-p", "no:cacheprovider", "-q"]
        cwd = root
    else:
        cwd = tmp_path / "autoencoder"
        shutil.copytree(root / "student_template" / "autoencoder", cwd)
        shutil.copy(solution, cwd / "autoencoder.py")
        command = [sys.executable, "-m", "autograder.cli", "check", "autoencoder.py", "--isolated"]
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "failed" not in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
