"""The worker's parent in the modes without a PID namespace (``landlock``, ``none``).

In the namespace modes the worker is process 1 of its own PID namespace, and when it ends the
kernel kills everything it started. Without one, a process the student starts can leave the
worker's process group (``setsid``, a double fork) and, once the worker is gone, be adopted by
init, out of the grader's reach; wiping its environment also hides it from the sweep for the
worker's tag (``sandbox.sweep_survivors``).

This small process closes that gap with the kernel's own mechanism for it, the child subreaper
(``prctl(PR_SET_CHILD_SUBREAPER)``, Linux 3.4+): it starts the worker as its child, so every
process the worker starts that loses its parent is adopted by the reaper instead of init, whatever
its session, process group or environment. When the worker ends (or the grader sends SIGTERM), the
reaper kills all it has adopted, and what they started, before it exits itself with the worker's
status. It runs outside the worker's Landlock domain, which cannot signal or trace it (Landlock ABI
6 scopes signals); in mode ``none`` nothing stops a submission from killing it, as nothing stops it
from doing anything else there.

Usage (from sandbox.WorkerProcess): ``python -I -c "from autograder.reaper import main; main()"
WORKER_COMMAND...``; the worker's pipe descriptors (``--fd-in``, ``--fd-out``) are passed on to the
worker and closed here, so the grader sees the worker's end of them close when it dies.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

from autograder.procfs import process_stats

_PR_SET_CHILD_SUBREAPER = 36
# How long the reaper keeps killing what it adopted (a process may fork while it is being killed;
# each round kills the current children, and their children become the reaper's in turn). A fork
# bomb that outlasts this is left to the grader's sweep and the process limit.
CLEANUP_SECONDS = 10.0


def become_subreaper() -> bool:
    """Make this process adopt its orphaned descendants; False where the kernel cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def children() -> list[int]:
    """This process's children (field 2 after the command name in /proc/PID/stat is the parent)."""
    me = os.getpid()
    return [pid for pid, fields in process_stats() if len(fields) > 1 and fields[1] == str(me)]


def end_all_children(seconds: float = CLEANUP_SECONDS) -> None:
    """Kill every child, and every process that becomes one as its parent dies, until none is
    left (or ``seconds`` have passed); reap them all."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        while True:  # reap what has ended
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return  # no child left, not even a zombie
            if pid == 0:
                break
        for pid in children():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)


def _exit_like(status: int) -> None:
    """End this process the way the worker ended: the same exit code, or the same signal."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # those two have no handler to reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code if code >= 0 else 128 - code)


def main(argv: list[str] | None = None) -> None:
    command = list(sys.argv[1:] if argv is None else argv)
    pipes = [int(command[command.index(flag) + 1]) for flag in ("--fd-in", "--fd-out") if flag in command]
    become_subreaper()  # where it fails, this is only a parent; the tag sweep stays behind it
    worker = os.fork()
    if worker == 0:
        try:
            os.execv(command[0], command)
        finally:
            os._exit(127)
    for fd in pipes:
        os.close(fd)
    # SIGTERM from the grader: end the worker now, and everything else with it, below.
    signal.signal(signal.SIGTERM, lambda *_: os.kill(worker, signal.SIGKILL))
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # the grader's stack-dump request is the worker's
    _, status = os.waitpid(worker, 0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the worker's pid is free for reuse from here
    end_all_children()
    _exit_like(status)
