"""A submission that attacks the grader's side of the boundary: answers that stall half-way or
announce gigabytes, values that are not valid JSON, floods of text, and processes that try to
outlive their grading. Each one costs the student the affected tests, within their budget, and
never the batch, the results file or the next student."""

import json
import math
import os
import struct
import textwrap
import time
from pathlib import Path

import pytest

from autograder import protocol, sandbox
from autograder.config import load_config
from autograder.grading import grade_submission
from autograder.remote import plain_worker_info
from autograder.results import strict_json

# -- the trusted side reads answers with bounds ----------------------------------------------------


def test_an_answer_that_stops_half_way_is_not_waited_on(monkeypatch):
    monkeypatch.setattr(sandbox, "FRAME_SECONDS", 0.5)
    read, write = os.pipe()
    try:
        os.write(write, struct.pack("!i", 1000) + b"x" * 10)
        started = time.monotonic()
        with pytest.raises(sandbox.FrameError, match="stopped half-way"):
            sandbox.read_frame(read)
        assert time.monotonic() - started < 5
    finally:
        os.close(read)
        os.close(write)


def test_an_answer_larger_than_allowed_is_refused_before_it_is_read():
    read, write = os.pipe()
    try:
        os.write(write, struct.pack("!i", -1) + struct.pack("!Q", 64 * 1024**3))
        with pytest.raises(sandbox.FrameError, match="more than"):
            sandbox.read_frame(read)
    finally:
        os.close(read)
        os.close(write)


def test_a_well_formed_answer_reads_back_whole():
    from multiprocessing.connection import Connection

    read, write = os.pipe()
    sender = Connection(write, readable=False)
    try:
        sender.send_bytes(b"abc" * 1000)
        assert sandbox.read_frame(read) == b"abc" * 1000
    finally:
        os.close(read)
        sender.close()


def test_a_frame_header_too_large_to_decode_is_refused():
    frame = struct.pack("<Q", protocol.MAX_HEADER_BYTES + 1) + b"{}"
    with pytest.raises(protocol.ProtocolError, match="at most"):
        protocol.unpack(frame)


def test_results_are_always_valid_json():
    text = strict_json({"score": math.nan, "versions": {"torch": math.inf}, "note": "x" * 5_000_000, 3: (1, 2)})
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in results"))
    assert data["score"] is None and data["versions"]["torch"] is None and data["3"] == [1, 2]
    assert len(text) < 200_000


def test_the_workers_hello_reaches_results_as_short_plain_values():
    info = plain_worker_info({"python": "3.11", "torch": math.nan, "cuda": "y" * 5_000_000, "pid": 10**100,
                              "cuda_available": False, "planted": "forged"})
    assert info == {"python": "3.11", "torch": "nan", "cuda": "y" * 100, "pid": str(10**100)[:100],
                    "cuda_available": False}
    assert plain_worker_info(["not", "a", "dict"]) == {}


# -- end to end ------------------------------------------------------------------------------------

GRADING_TESTS = '''
import pytest

@pytest.mark.points(1)
@pytest.mark.public
@pytest.mark.budget(20)
def test_attack(sub):
    assert sub.attack() == 1

@pytest.mark.points(1)
@pytest.mark.public
def test_after(sub):
    assert sub.honest() == 2
'''

STALLS_AN_ANSWER = '''
import os, struct, sys, time

def attack():
    fd = int(sys.argv[sys.argv.index("--fd-out") + 1])   # the worker's answer pipe
    os.write(fd, struct.pack("!i", 10_000_000) + b"{" * 100)  # announce 10 MB, send 100 bytes
    time.sleep(1000)
    return 1

def honest():
    return 2
'''

FLOODS_ITS_MESSAGE = '''
def attack():
    raise ValueError("spam " * 2_000_000)

def honest():
    return 2
'''

OUTLIVES_ITS_GRADING = '''
import subprocess, sys

def attack():
    # a double fork out of the worker's process group, meant to rewrite results after the grader
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "{marker}"], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return 1

def honest():
    return 2
'''

# The same, with an empty environment: the sweep for the worker's tag cannot find it; what ends it
# without a PID namespace is the reaper that adopts it (autograder/reaper.py).
OUTLIVES_ITS_GRADING_UNTAGGED = OUTLIVES_ITS_GRADING.replace("start_new_session=True,",
                                                             "start_new_session=True, env={},")


# System calls that would undo part of the sandbox or reach rarely used kernel code, tried from the
# student's code with ctypes (autograder/syscalls.py refuses them).
SYSTEM_CALLS = '''
import ctypes, os
import pyseccomp

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER, SIGCHLD, PTRACE_ATTACH = 0x10000000, 17, 16

def number(name):
    return pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)

def outcome(result):
    return "ok" if result >= 0 else os.strerror(ctypes.get_errno())

def clone_into_a_user_namespace():
    pid = libc.syscall(number("clone"), CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        os._exit(0)
    if pid > 0:
        os.waitpid(pid, 0)
    return outcome(pid)

def trace_a_child():
    pid = os.fork()
    if pid == 0:
        import time
        time.sleep(30)
        os._exit(0)
    try:
        return outcome(libc.ptrace(PTRACE_ATTACH, pid, 0, 0))
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)

def read_own_memory_as_another_process_would():
    buffer = ctypes.create_string_buffer(b"secret")
    local = (ctypes.c_void_p * 2)(ctypes.cast(ctypes.create_string_buffer(6), ctypes.c_void_p), 6)
    remote = (ctypes.c_void_p * 2)(ctypes.cast(buffer, ctypes.c_void_p), 6)
    return outcome(libc.process_vm_readv(os.getpid(), local, 1, remote, 1, 0))

def attack():
    return {
        "clone_into_a_user_namespace": clone_into_a_user_namespace(),  # before unshare changes the namespace
        "unshare_user_namespace": outcome(libc.unshare(CLONE_NEWUSER)),
        "ptrace": trace_a_child(),
        "process_vm_readv": read_own_memory_as_another_process_would(),
        "io_uring_setup": outcome(libc.syscall(number("io_uring_setup"), 1, ctypes.create_string_buffer(120))),
    }

def honest():
    return 2
'''

SYSTEM_CALL_TESTS = '''
import pytest

DENIED = "Operation not permitted"

@pytest.mark.points(1)
@pytest.mark.public
def test_attack(sub):
    report = sub.attack()
    assert report == {"unshare_user_namespace": DENIED, "clone_into_a_user_namespace": DENIED, "ptrace": DENIED,
                      "process_vm_readv": DENIED, "io_uring_setup": DENIED}, report

@pytest.mark.points(1)
@pytest.mark.public
def test_after(sub):
    assert sub.honest() == 2
'''


def _grade(tmp_path, source: str, grading_tests: str = GRADING_TESTS):
    tests = tmp_path / "grading_tests"
    tests.mkdir()
    (tests / "test_grading.py").write_text(grading_tests)
    (tmp_path / "student.py").write_text(textwrap.dedent(source))
    started = time.monotonic()
    result = grade_submission(load_config("autoencoder"), tmp_path / "student.py", tmp_path / "out", device="cpu",
                              tests_dir=tests)
    return result, time.monotonic() - started


@pytest.mark.slow
def test_a_stalled_answer_fails_its_test_quickly_and_the_next_test_runs(tmp_path):
    result, seconds = _grade(tmp_path, STALLS_AN_ANSWER)
    tests = {t.name: t for t in result.tests}
    assert tests["test_attack"].status == "failed" and "stopped half-way" in tests["test_attack"].output
    assert tests["test_after"].status == "passed"
    assert seconds < 90  # not the 420 s hard limit


@pytest.mark.slow
def test_a_flood_of_text_is_cut_and_the_results_stay_small(tmp_path):
    result, _ = _grade(tmp_path, FLOODS_ITS_MESSAGE)
    tests = {t.name: t for t in result.tests}
    assert tests["test_attack"].status == "failed" and "ValueError" in tests["test_attack"].output
    assert len(tests["test_attack"].output) < 20_000
    assert tests["test_after"].status == "passed"
    results_file = tmp_path / "out" / "student" / "results.json"
    json.loads(results_file.read_text(), parse_constant=lambda name: pytest.fail(f"{name} in results"))
    assert results_file.stat().st_size < 100_000


@pytest.mark.slow
@pytest.mark.parametrize("untagged", [False, True], ids=["tagged", "untagged"])
@pytest.mark.parametrize("mode", ["root", "user", "landlock", "none"])
def test_nothing_a_submission_starts_outlives_its_grading(tmp_path, monkeypatch, mode, untagged):
    """A setsid double fork dies with its grading: in the namespace modes with the worker's PID
    namespace, without namespaces by the reaper that adopts it (autograder/reaper.py), and the
    sweep for the worker's tag behind it (sandbox.sweep_survivors), even when it wipes its
    environment."""
    if mode != "none" and not sandbox._mode_works(mode):
        pytest.skip(f"this machine cannot start workers in {mode} namespaces")
    monkeypatch.setenv(sandbox.SANDBOX_ENV, mode)
    marker = f"outlives-its-grading-{os.getpid()}-{mode}-{untagged}"
    source = OUTLIVES_ITS_GRADING_UNTAGGED if untagged else OUTLIVES_ITS_GRADING
    result, _ = _grade(tmp_path, source.replace("{marker}", marker))
    assert result.score == 2
    time.sleep(0.5)
    survivors = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                survivors.append(pid)
        except OSError:
            continue
    assert not survivors


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["root", "user", "landlock", "none"])
def test_system_calls_that_undo_the_sandbox_are_refused(tmp_path, monkeypatch, mode):
    """In every mode the worker's seccomp filter refuses new user namespaces (where a process would
    get back every capability the namespace modes drop), tracing, reading another process's memory
    and io_uring; results.json records that the filter was on."""
    if mode != "none" and not sandbox._mode_works(mode):
        pytest.skip(f"this machine cannot start workers in {mode} namespaces")
    try:
        import pyseccomp  # noqa: F401
    except (ImportError, RuntimeError) as exc:  # the worker then runs without the filter, and says so
        pytest.skip(f"no libseccomp here: {exc}")
    monkeypatch.setenv(sandbox.SANDBOX_ENV, mode)
    result, _ = _grade(tmp_path, SYSTEM_CALLS, SYSTEM_CALL_TESTS)
    tests = {t.name: t for t in result.tests}
    assert tests["test_attack"].status == "passed", tests["test_attack"].output
    assert result.score == 2
    assert result.versions["worker"]["seccomp"] == "on"


def test_without_libseccomp_the_worker_runs_and_says_so(monkeypatch):
    """A machine without libseccomp (pyseccomp cannot load it) grades without the filter; the
    results say so instead of the worker failing to start."""
    import sys

    from autograder.syscalls import restrict_syscalls

    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # import fails, as on such a machine
    assert restrict_syscalls().startswith("unavailable: ")
