"""Starting, watching and killing the worker process that runs a student's code.

The worker is a fresh interpreter (``python -I``: spawned, not forked, so it is safe with CUDA and
inherits nothing from the grader's memory), started in a clean working directory holding only the
submission, with a scrubbed environment, in its own process group (so everything it starts is
killed with it), with resource limits set before any student code runs, and, when the grader runs
as root and a user is configured, as that unprivileged user. Its stdout and stderr are drained by
a thread that keeps a bounded tail, so flooding the output cannot fill memory or block it.
Requests and answers travel on two dedicated pipes, never on stdout.
"""

from __future__ import annotations

import functools
import os
import secrets
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import select
import struct
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from autograder import reaper
from autograder.procfs import process_stats
from autograder.errors import SandboxError, WorkerCrashed, WorkerTimeout

# The largest answer the grader accepts from a worker (tensors included), and how long an answer,
# once started, may take to arrive: a worker writes it in one go, so one that announces a length and
# then stops (or student code writing to the answer pipe) is stopped, not waited on until the hard
# limit.
MAX_FRAME_BYTES = 1024**3
FRAME_SECONDS = 20.0
FRAME_BYTES_PER_SECOND = 50 * 1024**2
# Budgets count the worker's CPU time, so a busy machine (other graders, other students) does not
# turn a correct submission into a time-out: what is measured is the student's work, not the load.
# A wall-clock ceiling still stops a submission that sleeps or blocks: WALL_FACTOR times the
# budget (a starved worker on a machine loaded 3x over still fits), or, once the budget has passed
# in wall time, as soon as the worker is found idle (under IDLE_CPU_SHARE of a core: a sleeping
# worker, not a starved one, which still gets its share).
WALL_FACTOR = 4.0
IDLE_CPU_SHARE = 0.05
POLL_SECONDS = 0.25
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _group_stats(pgid: int):
    """(pid, /proc/<pid>/stat fields after the command name) of every process in group ``pgid``."""
    for pid, fields in process_stats():  # state ppid pgrp ...
        if len(fields) > 14 and fields[2].isdigit() and int(fields[2]) == pgid:
            yield pid, fields


def group_pids(pgid: int) -> list[int]:
    return [pid for pid, _ in _group_stats(pgid)]


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system, of the processes and of their reaped children) of every process in
    process group ``pgid``, from /proc."""
    total = sum(sum(int(x) for x in fields[11:15]) for _, fields in _group_stats(pgid))  # utime stime cutime cstime
    return total / _CLOCK_TICKS
SETUP_FAILED = "autograder: sandbox setup failed"
SETUP_FAILED_CODE = 97
SHM_MB = 512  # each worker's own /dev/shm (torch's DataLoader workers pass batches through it)


@dataclass
class Limits:
    """Resource limits for one worker process."""

    memory_mb: int | None = 6144  # address space; torch alone maps ~3.2 GB. Not applied on CUDA.
    max_file_mb: int | None = 512  # largest file the worker may write
    threads: int | None = None  # torch intra-op threads; None: torch's default
    user: str | None = None  # run as this user when the grader is root (Gradescope)
    hidden_paths: tuple[str, ...] = ()  # folders the worker must not see (solutions, grading tests...)
    namespaces: bool | None = None  # False: never; None: the mode chosen_sandbox() picks


def _primary_group(user: str) -> int:
    return pwd.getpwnam(user).pw_gid


def check_worker_user(user: str | None) -> None:
    """Fail early, with the reason, if workers cannot run as ``user`` (a setup problem of the
    grader, which must stop the batch instead of giving every student a zero)."""
    if not user:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"--worker-user {user}: the grader must run as root to start workers as another user.")
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise SystemExit(f"--worker-user {user}: no such user on this machine.") from None
    try:
        probe = subprocess.run([sys.executable, "-I", "-c", "import torch, autograder.worker"], user=user,
                               group=_primary_group(user), extra_groups=[], cwd="/", capture_output=True, text=True)
        problem = probe.stderr[-1000:] if probe.returncode != 0 else None
    except OSError as exc:
        problem = str(exc)
    if problem:
        raise SystemExit(
            f"--worker-user {user}: that user cannot run {sys.executable} with torch and the autograder "
            f"installed (is the interpreter in a folder only root can read, such as /root?):\n{problem}"
        )


def _namespace_script(hidden_paths: tuple[str, ...], workdir: Path, user: str | None = None) -> str:
    """Shell prelude run as root in fresh mount, PID and network namespaces, just before the worker.

    Each hidden folder is covered by an empty tmpfs with no permissions; every mount is made
    read-only (/, /dev, /sys, /proc/sys, /tmp...) except the submission's working directory and a
    /dev/shm of its own; then every capability is dropped, so the student's code, even running as
    uid 0, can neither unmount, remount nor read what is hidden. The new network namespace has no
    interface up: no network. In the new PID namespace (with its own /proc) the worker is process
    1: it sees no grader process, and when it dies the kernel kills everything it started, also
    what left its process group (``setsid``), so nothing outlives its grading.
    """
    def step(command: str) -> str:
        return f"{command} || fail {shlex.quote(command)}"

    commands = [f'fail() {{ echo "{SETUP_FAILED}: $1" >&2; exit {SETUP_FAILED_CODE}; }}',
                step("mount --make-rprivate /")]
    for path in outermost(hidden_paths):
        if Path(path).is_dir():
            commands.append(step(f"mount -t tmpfs -o size=4k,mode=000 tmpfs {shlex.quote(path)}"))
    work = shlex.quote(str(workdir))
    commands += [
        step(f"mount --bind {work} {work}"),
        step("mount -o remount,bind,ro /"),
        # Every other mount read-only too (a mount point with a space in its name, escaped in
        # /proc/self/mounts, is left as it is); /proc itself stays, the kernel's knobs do not.
        f"for m in $(awk '{{print $2}}' /proc/self/mounts | sort -u); do case \"$m\" in "
        f"/|/proc|/proc/*|{work}) ;; *) mount -o remount,bind,ro \"$m\" 2>/dev/null ;; esac; done",
        step("mount --bind /proc/sys /proc/sys"), step("mount -o remount,bind,ro /proc/sys"),
        step(f"mount -t tmpfs -o size={SHM_MB}m,mode=1777,nosuid,nodev tmpfs /dev/shm"),
        # `cd` again after the bind mount: the inherited working directory is the one underneath it.
        step(f"cd {work}"),
        f'exec setpriv {_switch_user(user)}--bounding-set=-all --inh-caps=-all --ambient-caps=-all '
        '--no-new-privs "$@"']
    return "; ".join(commands)


def _switch_user(user: str | None) -> str:
    """setpriv options that become ``user`` (after the mounts, which need root)."""
    if not user:
        return ""
    entry = pwd.getpwnam(user)
    return f"--reuid={entry.pw_uid} --regid={entry.pw_gid} --clear-groups "


def outermost(paths: tuple[str, ...]) -> list[str]:
    """The paths that are not inside another one (hiding a folder hides what it contains)."""
    resolved = sorted({str(Path(p).resolve()) for p in paths}, key=len)
    kept: list[str] = []
    for path in resolved:
        if not any(Path(path).is_relative_to(parent) for parent in kept):
            kept.append(path)
    return kept


SANDBOX_ENV = "AUTOGRADER_SANDBOX"  # root | user | landlock | none: force a mode (default: the strongest available)


def _namespace_prefix(hidden_paths: tuple[str, ...], workdir: Path, user: str | None = None,
                      mode: str = "root") -> list[str]:
    """The command that starts the worker in its namespaces. ``mode`` "user": an unprivileged
    grader, made root of a new user namespace (util-linux ``unshare --map-root-user``), which gives
    it the same mounts, PID and network namespaces over files it does not own outside."""
    userns = ["--user", "--map-root-user"] if mode == "user" else []
    return ["unshare", *userns, "--mount", "--net", "--pid", "--mount-proc", "--fork", "--kill-child", "--", "sh", "-c",
            _namespace_script(hidden_paths, workdir, user if mode == "root" else None), "autograder-sandbox"]


@functools.cache
def _mode_works(mode: str) -> bool:
    """Whether workers can be started in ``mode`` here: util-linux tools, the privileges, and a
    kernel (or container runtime) that allows it. Probed once with a harmless command."""
    if mode == "landlock":
        from autograder import landlock

        return landlock.abi_version() >= landlock.MIN_ABI
    if not (shutil.which("unshare") and shutil.which("setpriv")):
        return False
    if mode == "root" and os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory() as probe:
        try:
            result = subprocess.run([*_namespace_prefix((), Path(probe), mode=mode), "true"], capture_output=True,
                                    timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return result.returncode == 0


SANDBOX_MODES = ("root", "user", "landlock", "none")  # strongest first


def available_sandbox() -> str:
    """The strongest mode this machine offers: "root" (namespaces set up by a root grader; it can
    also run workers as another user), "user" (the same namespaces inside an unprivileged user
    namespace), "landlock" (no namespaces: the worker restricts itself with Landlock, see
    autograder/landlock.py), or "none" (a separate process only)."""
    return next((mode for mode in SANDBOX_MODES[:-1] if _mode_works(mode)), "none")


def chosen_sandbox(limits: Limits) -> str:
    """The mode workers run in: none if the limits say so, else $AUTOGRADER_SANDBOX if set (it must
    be available: ValueError otherwise), else the strongest available."""
    if limits.namespaces is False:
        return "none"
    wanted = os.environ.get(SANDBOX_ENV, "").strip()
    if wanted:
        if wanted not in SANDBOX_MODES:
            raise ValueError(f"{SANDBOX_ENV}={wanted!r}: use one of {', '.join(SANDBOX_MODES)}")
        if wanted != "none" and not _mode_works(wanted):
            raise ValueError(f"sandbox {wanted!r}: this machine cannot start workers that way "
                             f"(available: {available_sandbox()})")
        return wanted
    return available_sandbox()


def namespaces_available() -> bool:
    return available_sandbox() != "none"


SANDBOX_DESCRIPTIONS = {
    "root": "namespaces (root grader): read-only file system, grader folders hidden, own processes and /dev/shm, "
            "no network, no capabilities",
    "user": "user namespaces (unprivileged grader): read-only file system, grader folders hidden, own processes "
            "and /dev/shm, no network, no capabilities",
    "landlock": "Landlock (no namespaces): grader folders unreadable, writes only to its own folder, no TCP, "
                "no signals to the grader; processes that leave the worker are adopted and ended by its reaper",
    "none": "separate process only: no isolation (this machine offers neither namespaces nor Landlock)",
}


def sandbox_description(limits: Limits) -> str:
    return SANDBOX_DESCRIPTIONS[chosen_sandbox(limits)]


class OutputLog:
    """Bounded record of what the worker printed: the total size and the last ``keep`` bytes."""

    def __init__(self, keep: int = 64 * 1024):
        self.keep = keep
        self.total = 0
        self._tail = bytearray()
        self._lock = threading.Lock()

    def feed(self, chunk: bytes) -> None:
        with self._lock:
            self.total += len(chunk)
            self._tail += chunk
            if len(self._tail) > self.keep:
                del self._tail[: len(self._tail) - self.keep]

    def since(self, mark: int, limit: int = 2000) -> str:
        """Text printed after ``mark`` (a previous ``total``), at most ``limit`` chars (the end)."""
        with self._lock:
            new = self.total - mark
            if new <= 0:
                return ""
            text = bytes(self._tail[-min(new, len(self._tail)):]).decode("utf-8", "replace")
        if len(text) > limit:
            text = "[...]\n" + text[-limit:]
        return text


def worker_environment(device: str, threads: int | None) -> dict[str, str]:
    """A minimal environment: no tokens, credentials or grader paths leak to student code."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": ".",
        "TMPDIR": "tmp",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        # Agg-like drawing without a window; plt.show() keeps the figure for the feedback page and
        # closes it, as a notebook's inline backend does.
        "MPLBACKEND": "module://autograder.mpl_backend",
        "MPLCONFIGDIR": "tmp",  # the file system may be read-only outside the working directory
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",  # deterministic cuBLAS
    }
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    elif "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return env


WORKER_TAG = "AUTOGRADER_WORKER_TAG"  # in the environment of a worker and of all it starts


def sweep_survivors(tag: str, rounds: int = 5) -> int:
    """Kill every process that still carries a worker's tag in its environment, and return how
    many there were. Run after the worker is gone, before its slot grades the next submission.

    In the namespace modes the kernel already kills everything in the worker's PID namespace when
    the worker dies, and without them the worker's reaper (autograder/reaper.py) ends what it
    adopted; this is the check behind both, and what is left if a submission in mode ``none``
    kills its reaper. Repeated, since a survivor may fork while it is being looked for.
    """
    needle = f"{WORKER_TAG}={tag}".encode()
    killed = 0
    for _ in range(rounds):
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as handle:
                    if needle in handle.read().split(b"\0"):
                        found.append(int(name))
            except OSError:  # gone, or not ours to read
                continue
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        time.sleep(0.05)
    return killed


class FrameError(Exception):
    """An answer that is too large, or that stopped half-way."""


def _read_exactly(fd: int, size: int, deadline: float) -> bytes:
    chunks, left = [], size
    while left:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise FrameError(f"sent an answer that stopped half-way ({size - left} of {size} bytes)")
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, limit: int = MAX_FRAME_BYTES) -> bytes:
    """One answer in multiprocessing.Connection's format (a 4-byte length, or -1 and an 8-byte
    one, then the bytes), read with a size limit and a deadline that Connection.recv_bytes lacks."""
    deadline = time.monotonic() + FRAME_SECONDS
    (size,) = struct.unpack("!i", _read_exactly(fd, 4, deadline))
    if size == -1:
        (size,) = struct.unpack("!Q", _read_exactly(fd, 8, deadline))
    if size < 0 or size > limit:
        raise FrameError(f"sent an answer of {size} bytes, more than the {limit // 1024**2} MB allowed")
    return _read_exactly(fd, size, deadline + size / FRAME_BYTES_PER_SECOND)


class WorkerProcess:
    """One running worker. Not restartable: the backend makes a new one (a new generation)."""

    def __init__(self, workdir: Path, generation: int, limits: Limits, device: str = "cpu"):
        self.workdir = Path(workdir)
        self.generation = generation
        self.threads = limits.threads or 1
        self.last_cpu = 0.0
        self.output = OutputLog()
        (self.workdir / "tmp").mkdir(exist_ok=True)
        req_read, req_write = os.pipe()
        resp_read, resp_write = os.pipe()
        memory = limits.memory_mb if device == "cpu" else None  # CUDA maps huge address ranges
        try:
            mode = chosen_sandbox(limits)
        except ValueError as exc:
            raise SandboxError(str(exc)) from None
        namespaces = mode in ("root", "user")
        cmd = [
            sys.executable, "-I", "-c", "from autograder.worker import main; main()",
            "--fd-in", str(req_read), "--fd-out", str(resp_write), "--generation", str(generation),
            "--memory-mb", str(memory or 0), "--max-file-mb", str(limits.max_file_mb or 0),
            "--threads", str(limits.threads or 0),
        ]
        if namespaces:
            cmd = _namespace_prefix(limits.hidden_paths, self.workdir, limits.user, mode) + cmd
        else:  # no PID namespace: a subreaper parent adopts and ends what leaves the worker
            if mode == "landlock":
                cmd.append("--landlock")
            cmd = [sys.executable, "-I", "-c", "from autograder.reaper import main; main()", *cmd]
        self.reaper = not namespaces
        kwargs = {}
        if limits.user and os.geteuid() == 0:
            for path in [self.workdir, *self.workdir.rglob("*")]:
                shutil.chown(path, user=limits.user, group=_primary_group(limits.user))
            if mode != "root":  # in root namespaces, setpriv switches user after the mounts
                kwargs.update(user=limits.user, group=_primary_group(limits.user), extra_groups=[])
        self.started = time.monotonic()
        self.tag = secrets.token_hex(8)  # finds what the worker started, once it is gone
        self.survivors_killed = 0
        env = {**worker_environment(device, limits.threads), WORKER_TAG: self.tag}
        try:
            self.proc = subprocess.Popen(
                cmd, cwd=self.workdir, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=(req_read, resp_write), start_new_session=True, **kwargs,
            )
        finally:
            os.close(req_read)
            os.close(resp_write)
        self._requests = Connection(req_write, readable=False)
        self._responses = Connection(resp_read, writable=False)
        self._drain = threading.Thread(target=self._drain_output, daemon=True)
        self._drain.start()

    def _drain_output(self) -> None:
        stream = self.proc.stdout
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                break
            self.output.feed(chunk)

    def dump_stack(self) -> None:
        """Ask the worker to write where it is (faulthandler, registered on SIGUSR1 by the worker)
        to its output, and give it a moment to do so."""
        # Only the worker's interpreter: the namespace launcher (unshare, sh) would die of SIGUSR1
        # and take the worker with it before it could write.
        for pid in group_pids(self.proc.pid):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                # The interpreter itself ("python -I -c 'from autograder.worker import main...'"),
                # not a launcher whose arguments merely contain that command.
                if argv[1:3] != [b"-I", b"-c"] or len(argv) < 4 or b"autograder.worker" not in argv[3]:
                    continue
                os.kill(pid, signal.SIGUSR1)
            except (OSError, ProcessLookupError, PermissionError):
                continue
        # Wait for the dump to arrive and end (output that stops growing), not a fixed time: on a
        # busy machine the worker may need a while to be scheduled and write it.
        before, deadline = self.output.total, time.monotonic() + 5.0
        while time.monotonic() < deadline:
            seen = self.output.total
            time.sleep(0.2)
            if seen > before and self.output.total == seen:
                break

    def cpu_seconds(self) -> float:
        """The worker's CPU time so far, per torch thread it was given (a budget of 30 s means 30 s
        of one core's work, whatever the thread count)."""
        return group_cpu_seconds(self.proc.pid) / max(1, self.threads)

    def request(self, frame: bytes, timeout: float | None, dump_stack_on_timeout: bool = False) -> bytes:
        """Send one request and wait for its answer; ``timeout`` is the CPU time the worker may use
        for it (see WALL_FACTOR for the wall-clock ceiling). Sets ``last_cpu``: the CPU time used."""
        cpu_start, wall_start = self.cpu_seconds(), time.monotonic()
        self.last_cpu = 0.0
        try:
            self._requests.send_bytes(frame)
            while True:
                wait = POLL_SECONDS if timeout is not None else None
                if self._responses.poll(wait):
                    break
                used, elapsed = self.cpu_seconds() - cpu_start, time.monotonic() - wall_start
                self.last_cpu = used
                idle = elapsed > max(timeout, 1.0) and used < IDLE_CPU_SHARE * elapsed
                if used >= timeout or elapsed >= WALL_FACTOR * timeout + 5 or idle:
                    if dump_stack_on_timeout:
                        self.dump_stack()
                    self.kill()
                    raise WorkerTimeout(max(timeout - used, 0.0), idle=idle or used < timeout)
        except (BrokenPipeError, OSError, EOFError):
            raise self._crashed() from None
        try:
            answer = read_frame(self._responses.fileno())
        except (EOFError, OSError):
            raise self._crashed() from None
        except FrameError as exc:
            self.kill()
            raise WorkerCrashed(None, reason=str(exc)) from None
        self.last_cpu = self.cpu_seconds() - cpu_start
        return answer

    def _crashed(self) -> WorkerCrashed:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        self.kill()
        output = self.output.since(0, limit=1500)
        if code == SETUP_FAILED_CODE and SETUP_FAILED in output:
            return SandboxError(output.strip())
        return WorkerCrashed(code, output)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """Kill the worker and everything it started: its whole process group and, without
        namespaces, what its reaper adopted (the reaper ends those on SIGTERM, then itself)."""
        if self.reaper and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=reaper.CLEANUP_SECONDS + 5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.survivors_killed += sweep_survivors(self.tag)
        for conn in (self._requests, self._responses):
            try:
                conn.close()
            except OSError:
                pass
        self._drain.join(timeout=2)

    def close(self) -> None:
        """Ask the worker to stop, then make sure it and its children are gone."""
        if self.alive:
            try:
                self._requests.send_bytes(b"shutdown")
                self.proc.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
