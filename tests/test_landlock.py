"""Mode ``landlock`` (autograder/landlock.py), as the unprivileged user it is meant for: what an
ordinary process of the grader's user can reach, and that Landlock closes each of them.

tests/test_isolation.py runs the full probe through the grader (as root); this test shows, as
user nobody, the points where root would blur the picture: the environment of another process of
the same user and signals to it are open without Landlock and closed with it.
"""

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from autograder import landlock

SYSTEM_PYTHON = Path("/usr/bin/python3.11")  # the distribution's: readable by every user

PROBE = r'''
import json, os, socket, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
import landlock
secret, port = sys.argv[2], int(sys.argv[3])
grader = subprocess.Popen(["sleep", "60"], env={"GRADER_TOKEN": "t0ken"}, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)  # a process of the same user, outside the sandbox
time.sleep(0.2)

def attempt(action):
    try:
        action()
        return "ok"
    except OSError:
        return "denied"

def probe():
    return {
        "read_outside": attempt(lambda: open(secret).read()),
        "grader_environ": attempt(lambda: open(f"/proc/{grader.pid}/environ").read()),
        "signal_grader": attempt(lambda: os.kill(grader.pid, 0)),
        "network": attempt(lambda: socket.create_connection(("127.0.0.1", port), timeout=2).close()),
        "write_tmp": attempt(lambda: open("/tmp/landlock-planted", "w").close()),
        "write_workdir": attempt(lambda: open("scratch", "w").write("x")),
        "read_allowed": attempt(lambda: open(landlock.__file__).read()),
    }

before = probe()
landlock.restrict(["/usr", "/lib", "/lib64", "/etc", sys.argv[1]], [os.getcwd()])
after = probe()
print(json.dumps({"before": before, "after": after, "grader": grader.pid}))  # which we may no longer kill
'''


@pytest.mark.skipif(os.geteuid() != 0 or not SYSTEM_PYTHON.exists() or shutil.which("setpriv") is None
                    or landlock.abi_version() < landlock.MIN_ABI,
                    reason="needs root (to become user nobody), setpriv, /usr/bin/python3.11 and Landlock ABI 6")
def test_landlock_closes_what_a_process_of_the_graders_user_could_reach(tmp_path):
    home = Path("/tmp") / f"landlock-probe-{os.getpid()}"  # outside root's 0700 pytest folder
    home.mkdir()
    listener = socket.socket()
    try:
        (home / "lib").mkdir()
        shutil.copy(Path(landlock.__file__), home / "lib" / "landlock.py")
        (home / "probe.py").write_text(PROBE)
        (home / "secret.txt").write_text("the grader's")
        work = home / "work"
        work.mkdir()
        subprocess.run(["chown", "-R", "nobody:nogroup", str(home)], check=True)
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        proc = subprocess.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                               str(SYSTEM_PYTHON), "-I", str(home / "probe.py"), str(home / "lib"), str(home / "secret.txt"),
                               str(listener.getsockname()[1])],
                              cwd=work, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads(proc.stdout)
        os.kill(report["grader"], 9)
    finally:
        listener.close()
        shutil.rmtree(home, ignore_errors=True)
        Path("/tmp/landlock-planted").unlink(missing_ok=True)
    assert all(outcome == "ok" for outcome in report["before"].values()), report["before"]  # all reachable without it
    assert report["after"] == {"read_outside": "denied", "grader_environ": "denied", "signal_grader": "denied",
                               "network": "denied", "write_tmp": "denied", "write_workdir": "ok",
                               "read_allowed": "ok"}, report["after"]


def test_abi_version_is_a_number():
    """On a kernel without Landlock the version is 0 (the mode is then not offered), never an error."""
    assert isinstance(landlock.abi_version(), int) and landlock.abi_version() >= 0
