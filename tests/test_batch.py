"""Grading a whole class: inputs, parallel slots, resuming after a kill, Dask, the HTML report.

A small grading-test folder keeps each submission to a few seconds; the real assignments go
through the same driver in the *_examples tests.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.config import load_config
from autograder.grading import default_slots, grade_batch
from autograder.inputs import find_submissions
from autograder.results import read_results_json

GRADING_TESTS = '''
import pytest
import torch

@pytest.mark.points(1)
@pytest.mark.public
def test_double(sub):
    assert sub.double(3) == 6, "double(3) should be 6"

@pytest.mark.points(1)
@pytest.mark.hidden
def test_takes_a_second(sub, attach_images):
    """Some work in the student's process, and an image for the feedback page."""
    assert sub.pause(1.0) == "done"
    attach_images("noise", torch.rand(4, 8, 8))
'''

GOOD = '''
import time
def double(x):
    return 2 * x
def pause(seconds):
    time.sleep(seconds)
    return "done"
'''
EXPECTED = ["autoencoder.py", "autoencoder.ipynb"]


@pytest.fixture(scope="module")
def tests_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grading_tests")
    (folder / "test_grading.py").write_text(GRADING_TESTS)
    return folder


@pytest.fixture(scope="module")
def config():
    return load_config("autoencoder")


def make_class(folder: Path, count: int) -> Path:
    """``count`` submissions: every third one is wrong (double returns 0)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        code = GOOD if i % 3 else GOOD.replace("return 2 * x", "return 0")
        (folder / f"student{i:02d}.py").write_text(code)
    return folder


# --- inputs ---------------------------------------------------------------------------------

def test_a_folder_of_files_is_a_class_and_a_folder_with_the_expected_file_is_one_submission(tmp_path):
    make_class(tmp_path / "class", 3)
    (tmp_path / "class" / "notes.txt").write_text("ignored")
    assert [s.name for s in find_submissions([tmp_path / "class"], EXPECTED)] == ["student00", "student01", "student02"]
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "autoencoder.py").write_text(GOOD)
    (tmp_path / "alice" / "helper.py").write_text("")
    assert [(s.name, s.source) for s in find_submissions([tmp_path / "alice"], EXPECTED)] == [("alice", tmp_path / "alice")]


def test_gradescope_export_is_named_after_the_submitters(tmp_path):
    export = tmp_path / "assignment_123_export"
    for sid in ("111", "222"):
        (export / f"submission_{sid}0").mkdir(parents=True)
        (export / f"submission_{sid}0" / "autoencoder.py").write_text(GOOD)
    (export / "submission_metadata.yml").write_text(
        "submission_1110:\n  :submitters:\n  - :name: Ann Lee\n    :sid: '111'\n    :email: ann@uni.edu\n  :score: 0\n"
        "submission_2220:\n  :submitters:\n  - :name: Bo Chen\n    :email: bo@uni.edu\n  - :name: Cy Diaz\n    :sid: '333'\n")
    found = find_submissions([export], EXPECTED)
    assert [(s.name, s.source.name) for s in found] == [("111", "submission_1110"), ("bo@uni.edu_333", "submission_2220")]


def test_github_classroom_clones_are_named_after_the_logins(tmp_path):
    for login in ("alice", "bob-smith"):
        repo = tmp_path / "clones" / f"practical-2-autoencoders-{login}"
        (repo / ".git").mkdir(parents=True)
        (repo / "autoencoder.ipynb").write_text("{}")
    found = find_submissions([tmp_path / "clones"], EXPECTED)
    assert [s.name for s in found] == ["alice", "bob-smith"]


def test_names_keep_unicode_letters_and_collisions_get_distinct_names(tmp_path):
    """"Zoë Müller" stays readable; two names that clean to the same folder, two files with the same
    name, or a student named like the grader's own files never stop the batch nor share a folder."""
    import unicodedata

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.py").write_text("")
    (tmp_path / "b" / "x.py").write_text("")
    found = find_submissions([tmp_path / "a" / "x.py", tmp_path / "b" / "x.py"], EXPECTED)
    assert [s.name for s in found] == ["x", "x-2"]
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("Zoë Müller.py", unicodedata.normalize("NFD", "Zoë Müller") + ".ipynb", "Zoe Muller.py",
                 "gradebook.csv.py", "Łukasz Żak.py"):
        (folder / name).write_text("")
    names = sorted(s.name for s in find_submissions([folder], EXPECTED))
    assert names == sorted(["Zoë_Müller", "Zoë_Müller-2", "Zoe_Muller", "gradebook.csv-submission", "Łukasz_Żak"])


def test_bad_command_line_inputs_get_one_line_and_a_non_zero_exit(tmp_path, capsys):
    from autograder.cli import main

    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "alice.py").write_text("x = 1\n")
    (tmp_path / "afile").write_text("")
    (tmp_path / "empty").mkdir()
    cases = {
        "no such file or folder": ["grade", "autoencoder", str(tmp_path / "missing.py"), "--out", str(tmp_path / "o")],
        "is a file, not a folder": ["grade", "autoencoder", str(tmp_path / "subs"), "--out", str(tmp_path / "afile")],
        "inside the submissions folder": ["grade", "autoencoder", str(tmp_path / "subs"), "--out",
                                          str(tmp_path / "subs" / "out")],
        "no submission found": ["grade", "autoencoder", str(tmp_path / "empty"), "--out", str(tmp_path / "o")],
    }
    for expected, argv in cases.items():
        assert main(argv) == 2, expected
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


def test_slot_policy(config, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr("autograder.grading._gpu_count", lambda: 0)
    assert len(default_slots(config)) == 8  # threads = 1 per worker
    assert len(default_slots(config, jobs=3)) == 3
    monkeypatch.setattr("autograder.grading._gpu_count", lambda: 2)
    slots = default_slots(config, per_gpu=3)
    assert [s["CUDA_VISIBLE_DEVICES"] for s in slots] == ["0", "1", "0", "1", "0", "1"]
    assert len(default_slots(config, device="cpu")) == 8


# --- grading many ---------------------------------------------------------------------------

@pytest.mark.slow
def test_two_slots_grade_in_parallel(config, tests_dir, tmp_path):
    """Each submission sleeps 1 s in its worker: with two slots, two run at once."""
    sources = sorted(make_class(tmp_path / "class", 4).glob("*.py"))
    started = time.monotonic()
    results = grade_batch(config, sources, tmp_path / "out", device="cpu", tests_dir=tests_dir, jobs=2)
    elapsed = time.monotonic() - started
    assert [r.score for r in results] == [1, 2, 2, 1]
    serial = sum(r.execution_time for r in results)
    assert elapsed < 0.8 * serial, (elapsed, serial)


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def test_the_forkserver_preloads_installed_libraries_that_ask_cuda_nothing():
    """The test processes are forked from a forkserver that imported the grading tests' libraries.
    A misspelled or uninstalled module would be skipped there without a word (and every test
    process would import it again); one that asked CUDA for its devices at import would fix the
    device list before a forked process sets its slot's CUDA_VISIBLE_DEVICES."""
    from autograder.grading import ENGINE_PRELOAD, LIBRARY_PRELOAD

    spy = (
        "import importlib, sys, torch\n"
        "asked = []\n"
        "def spying(name, real):\n"
        "    return lambda *a, **k: asked.append(name) or real(*a, **k)\n"
        "for name in ('is_available', 'device_count', 'init', 'current_device'):\n"
        "    setattr(torch.cuda, name, spying(name, getattr(torch.cuda, name)))\n"
        "torch._C._cuda_getDeviceCount = spying('_cuda_getDeviceCount', torch._C._cuda_getDeviceCount)\n"
        "for module in sys.argv[1:]:\n"
        "    importlib.import_module(module)\n"
        "assert not asked and not torch.cuda.is_initialized(), asked\n"
    )
    done = subprocess.run([sys.executable, "-c", spy, *ENGINE_PRELOAD, *LIBRARY_PRELOAD], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def _third_party_imports_of_the_grading_tests() -> dict[str, str]:
    """{top-level package: a file importing it} for what a test process imports directly: the
    grading tests' modules and the course modules they import, followed through `assignments`."""
    import ast

    root = Path(__file__).resolve().parents[1]
    queue, seen, found = sorted(root.glob("grading_tests/*/test_*.py")), set(), {}
    while queue:
        path = queue.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "assignments":
                    queue += [root / (name.replace(".", "/") + ".py"), root / name.replace(".", "/") / "__init__.py"]
                elif top not in sys.stdlib_module_names and top not in ("autograder", "__future__"):
                    found.setdefault(top, str(path.relative_to(root)))
    return found


def test_the_forkserver_preloads_every_library_the_grading_tests_import():
    """A library that a grading test or a course module starts importing, and that the preload
    list misses, is imported again by every test process (seconds a submission): the list is kept
    by hand, so this says which entry it lacks."""
    from autograder.grading import ENGINE_PRELOAD, LIBRARY_PRELOAD

    preloaded = {module.split(".")[0] for module in ENGINE_PRELOAD + LIBRARY_PRELOAD}
    imported = _third_party_imports_of_the_grading_tests()
    assert {"torch", "scipy", "torchattacks", "PIL"} <= set(imported)  # the scan finds what it should
    missing = {top: path for top, path in imported.items() if top not in preloaded}
    assert not missing, f"add to autograder.grading.LIBRARY_PRELOAD: {missing}"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds processes through /proc")
def test_a_killed_forkserver_costs_a_fresh_interpreter_not_a_result(config, tests_dir, tmp_path, monkeypatch):
    """The prewarmed test processes come from a forkserver. Killed while a submission's tests run
    (the OOM killer, a stray pkill), it cannot report how they ended: that submission is graded
    again in a fresh interpreter, not recorded as a failure."""
    import multiprocessing.forkserver
    import threading

    import autograder.grading as grading

    fresh_runs = []
    run_fresh = grading._run_fresh
    monkeypatch.setattr(grading, "_run_fresh", lambda *a: fresh_runs.append(1) or run_fresh(*a))
    monkeypatch.setenv("AUTOGRADER_PREWARM", "1")

    def kill_forkserver_once_it_has_a_child():
        server = multiprocessing.forkserver._forkserver  # private: the pid is not published otherwise
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pid = server._forkserver_pid
            if pid and _children(pid):
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_forkserver_once_it_has_a_child)
    killer.start()
    sources = sorted(make_class(tmp_path / "class", 2).glob("*.py"))[1:]  # one correct submission
    (result,) = grade_batch(config, sources, tmp_path / "out", device="cpu", tests_dir=tests_dir, jobs=1)
    killer.join()
    assert fresh_runs == [1]
    assert result.score == 2 and result.error is None, result.error


@pytest.mark.slow
def test_a_killed_batch_resumes_without_losing_or_repeating_a_result(config, tests_dir, tmp_path):
    klass = make_class(tmp_path / "class", 8)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "autograder.cli", "grade", "autoencoder", str(klass), "--out", str(out),
           "--tests-dir", str(tests_dir), "--jobs", "2", "--device", "cpu", "--quiet"]
    grader = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(out.glob("*/.source-sha256"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(grader.pid, signal.SIGKILL)  # the grader, its test processes and their workers
    grader.wait()
    first = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/.source-sha256")}
    assert 2 <= len(first) < 8, first
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"{len(first)} already graded (kept)" in rerun.stdout
    results = {p.parent.name: read_results_json(p) for p in out.glob("*/results.json")}
    assert sorted(results) == [f"student{i:02d}" for i in range(8)]
    assert all(r.score == (1 if i % 3 == 0 else 2) for i, r in enumerate(results[n] for n in sorted(results)))
    for name, mtime in first.items():  # graded before the kill: kept, not graded again
        assert (out / name / ".source-sha256").stat().st_mtime_ns == mtime
    gradebook = (out / "gradebook.csv").read_text().splitlines()
    assert len(gradebook) == 9 and len({row.split(",")[0] for row in gradebook[1:]}) == 8
    # A changed submission is graded again; an unchanged one is not.
    (klass / "student00.py").write_text(GOOD)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert "7 already graded (kept), 1 to grade" in again.stdout
    assert read_results_json(out / "student00" / "results.json").score == 2


@pytest.mark.slow
def test_ctrl_c_stops_the_batch_promptly_keeps_what_is_graded_and_costs_no_attempt(config, tests_dir, tmp_path):
    """Ctrl-C (SIGINT to the whole foreground process group, as a terminal sends it) stops the
    batch in seconds, keeps the finished results, counts no attempt against the interrupted
    submissions, and the next run grades the rest."""
    klass = make_class(tmp_path / "class", 8)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "autograder.cli", "grade", "autoencoder", str(klass), "--out", str(out),
           "--tests-dir", str(tests_dir), "--jobs", "2", "--device", "cpu", "--quiet"]
    # A command started in the background of a non-interactive shell (as CI may run this suite)
    # inherits SIGINT ignored: restore the default so the grader gets Ctrl-C as a terminal gives it.
    grader = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while len(list(out.glob("*/.source-sha256"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    interrupted_at = time.monotonic()
    os.killpg(grader.pid, signal.SIGINT)
    _, err = grader.communicate(timeout=60)
    assert time.monotonic() - interrupted_at < 20, "Ctrl-C did not stop the batch promptly"
    assert grader.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    kept = {p.parent.name for p in out.glob("*/.source-sha256")}
    assert 2 <= len(kept) < 8
    assert not list(out.glob("*/.attempts")), "an interrupted submission was counted as a failed attempt"
    for name in kept:
        assert read_results_json(out / name / "results.json").error is None
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and f"{len(kept)} already graded (kept)" in rerun.stdout
    assert len(list(out.glob("*/.source-sha256"))) == 8


@pytest.mark.slow
def test_a_local_dask_cluster_grades_the_same(config, tests_dir, tmp_path):
    distributed = pytest.importorskip("distributed")
    sources = sorted(make_class(tmp_path / "class", 3).glob("*.py"))
    local = grade_batch(config, sources, tmp_path / "local", device="cpu", tests_dir=tests_dir, jobs=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote = grade_batch(config, sources, tmp_path / "dask", device="cpu", tests_dir=tests_dir,
                             scheduler=cluster.scheduler_address)
    assert [(r.submission, r.score, [t.status for t in r.tests]) for r in remote] == \
        [(r.submission, r.score, [t.status for t in r.tests]) for r in local]
    assert all((tmp_path / "dask" / s.stem / "images").glob("*.png") for s in sources)
    assert (tmp_path / "dask" / "gradebook.csv").read_text() == (tmp_path / "local" / "gradebook.csv").read_text()


# --- the report, in a real browser -----------------------------------------------------------

def _browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (CI installs it)")
    executable = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not executable:
        pytest.skip("no Chromium on this machine (CI installs the Debian package)")
    return playwright, executable


@pytest.mark.slow
def test_report_and_feedback_pages_render_in_a_headless_browser(config, tests_dir, tmp_path):
    playwright, executable = _browser()
    sources = sorted(make_class(tmp_path / "class", 3).glob("*.py"))
    subprocess.run([sys.executable, "-m", "autograder.cli", "grade", "autoencoder", *map(str, sources), "--out",
                    str(tmp_path / "out"), "--tests-dir", str(tests_dir), "--device", "cpu", "--quiet"],
                   check=True, capture_output=True)
    report = tmp_path / "out" / "report.html"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(report.as_uri())
        assert page.title() == "autoencoder: grading report"
        assert "3 submissions" in page.inner_text("body")
        assert page.locator("svg rect.bar").count() == 10
        assert page.locator("svg rect.bar[height='0']").count() == 8  # scores 1 and 2 of 2: two bars
        assert "test_double: double(3) should be 6" in page.inner_text("body")  # failures grouped by message
        page.click("text=student00 >> nth=-1")  # the wrong submission's feedback page, by its link
        assert page.title() == "autoencoder: feedback for student00"
        body = page.inner_text("body")
        assert "Score: 1 / 2" in body and "double(3) should be 6" in body
        image = page.locator("img").first
        assert image.evaluate("img => img.complete && img.naturalWidth > 0")  # the attached image loads
        assert not errors
        browser.close()
