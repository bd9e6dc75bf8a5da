"""The reaper (autograder/reaper.py): the worker's parent when there is no PID namespace. It must
pass the worker's ending on unchanged, and end everything the worker started, including processes
that left its session and wiped their environment."""

import os
import signal
import subprocess
import sys
import time

import pytest

REAPER = [sys.executable, "-I", "-c", "from autograder.reaper import main; main()"]

# A worker that starts a process out of its session, with an empty environment, prints its pid,
# and then does what ENDING says.
ESCAPES = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True, env={},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(child.pid, flush=True)
ENDING
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _start(ending: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([*REAPER, sys.executable, "-c", ESCAPES.replace("ENDING", ending)],
                            stdout=subprocess.PIPE, start_new_session=True)
    escaped = int(proc.stdout.readline())
    assert _alive(escaped)
    return proc, escaped


@pytest.mark.parametrize("ending, code", [("sys.exit(3)", 3), ("os._exit(0)", 0),
                                          ("os.kill(os.getpid(), 11)", -signal.SIGSEGV)])
def test_the_worker_ends_and_the_reaper_ends_the_same_way_and_takes_the_escaped_process(ending, code):
    proc, escaped = _start(ending)
    assert proc.wait(timeout=20) == code
    assert _wait_gone(escaped)


def test_sigterm_ends_the_worker_and_what_it_started_at_once():
    proc, escaped = _start("time.sleep(300)")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == -signal.SIGKILL  # the worker's ending: killed
    assert time.monotonic() - started < 5
    assert _wait_gone(escaped)


def test_the_workers_pipes_are_its_own():
    """The reaper closes its copies of the answer pipe: when the worker dies, the grader reads EOF,
    not a pipe that stays open for as long as the reaper lives."""
    read_end, write_end = os.pipe()
    proc = subprocess.Popen([*REAPER, sys.executable, "-c", "import time; time.sleep(1)", "--fd-out", str(write_end)],
                            pass_fds=(write_end,))
    os.close(write_end)
    started = time.monotonic()
    assert os.read(read_end, 1) == b""  # EOF once the worker (the only writer left) has ended
    assert time.monotonic() - started < 10
    os.close(read_end)
    assert proc.wait(timeout=10) == 0
