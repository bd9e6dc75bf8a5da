"""Landlock: the sandbox of a worker on a kernel without usable namespaces (mode ``landlock``).

Landlock (Linux 5.13+) lets an unprivileged process restrict itself, irreversibly and for
everything it starts: the worker calls ``restrict`` just before it loads the student's code. What
it then cannot do:

- open anything outside the folders it is given: read-only the interpreter, the installed
  packages, the engine and the course package, the system's libraries and ``/proc``, ``/sys``;
  read-write its own working directory (so not the grader's checkout, its tests and solutions,
  ``.git``, other students' folders, the results, ``/tmp`` or ``/dev/shm``);
- connect or bind a TCP socket (ABI 4+);
- send a signal to, or connect to an abstract UNIX socket of, a process outside its own sandbox
  (ABI 6+): the grader and other workers are out of reach. Landlock also denies ptrace of
  processes outside the sandbox, and with it their ``/proc/PID/environ``, ``mem`` and ``fd``.

What it does not do, unlike the namespace modes: processes that leave the worker's process group
are ended by the worker's parent, a child subreaper outside the sandbox (``autograder/reaper.py``),
not by the kernel's PID namespace; there is no private ``/dev/shm`` (it is closed instead:
DataLoader workers cannot share memory).

Written with ctypes against the kernel's interface (linux/landlock.h) rather than the
``landlock`` package on PyPI: that package (1.0.0.dev5, alpha) sets file-system rules only, and
the network and signal rules are the ruleset's other two fields.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

# System call numbers: the same on every architecture (allocated after the tables were unified).
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# File-system rights, with the ABI that introduced them.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR, MAKE_REG = 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8
MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE = 1 << 13, 1 << 14  # ABI 2, ABI 3
_FS_V1 = (1 << 13) - 1
READ_ONLY = EXECUTE | READ_FILE | READ_DIR
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE  # the rights a rule on a single file may carry
# Network (ABI 4) and scopes (ABI 6).
BIND_TCP, CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
MIN_ABI = 6  # below it a worker could still signal the grader: not offered as a mode

# What every worker may read besides its Python installation, and the device files it may use.
SYSTEM_READABLE = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys")
DEVICE_FILES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom", "/dev/full")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The Landlock ABI this kernel offers; 0 when it has none (or it is disabled)."""
    try:
        version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"landlock {what}: {os.strerror(errno)}")
    return result


def restrict(read: Iterable[str], write: Iterable[str], devices: Iterable[str] = DEVICE_FILES) -> int:
    """Restrict this process, and all it will start, as the module docstring says. ``read``:
    folders (or files) readable and executable; ``write``: folders fully usable; ``devices``:
    files readable and writable. Paths that do not exist are skipped. Returns the ABI used."""
    abi = abi_version()
    if abi < MIN_ABI:
        raise OSError(f"Landlock ABI {abi} here; the worker's sandbox needs {MIN_ABI} (Linux 6.12+)")
    handled_fs = _FS_V1 | REFER | TRUNCATE
    libc = _libc()
    attr = _RulesetAttr(handled_fs, BIND_TCP | CONNECT_TCP, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL)
    ruleset = _check(libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                                  ctypes.c_uint32(0)), "create_ruleset")
    try:
        rules = [(path, READ_ONLY) for path in read] + [(path, handled_fs) for path in write]
        rules += [(path, READ_FILE | WRITE_FILE) for path in devices]
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # not on this machine
            try:
                if not os.path.isdir(path):
                    access &= FILE_RIGHTS
                rule = _PathBeneathAttr(access, fd)
                _check(libc.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                                    ctypes.byref(rule), ctypes.c_uint32(0)), f"add_rule {path}")
            finally:
                os.close(fd)
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        _check(libc.syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)), "restrict_self")
    finally:
        os.close(ruleset)
    return abi
