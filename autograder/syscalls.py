"""The worker's seccomp filter: system calls a submission has no use for are refused.

Applied by the worker, in every sandbox mode, just before it loads the student's code (the filter
is inherited by everything the worker starts and can never be removed). Every system call is
allowed except those below, which fail with EPERM, as they would for a process without the
privileges. What they have in common: a deep-learning assignment never needs them, and each one
either undoes part of the sandbox or reaches kernel code with a record of privilege escalations.

- New namespaces (``unshare``, ``setns``, ``clone`` with a ``CLONE_NEW*`` flag): a process that
  creates a user namespace is root in it, with every capability the namespace modes dropped, over
  the kernel's namespaced interfaces (mounts, network devices, ...).
- Tracing and reading other processes' memory (``ptrace``, ``process_vm_readv``/``writev``,
  ``pidfd_getfd``, ``kcmp``).
- Mounting and file handles (``mount``, ``umount2``, ``pivot_root``, ``chroot``, the new mount API,
  ``open_by_handle_at``, which opens files by inode around the mount table).
- Kernel interfaces that only privileged or specialised programs use (BPF, perf events,
  ``userfaultfd``, ``io_uring``, the kernel keyring, modules, ``kexec``, ``reboot``, swap, ``acct``,
  quotas, the clock, the kernel log).

``clone3`` passes its flags in memory, where seccomp cannot read them, so it fails with ENOSYS
instead: the C library then falls back to ``clone``, whose flags the filter checks (what Docker's
and systemd's default filters do).

Built with libseccomp (the system library, through the ``pyseccomp`` bindings), not a hand-written
BPF program: it resolves system call names per architecture and checks the architecture itself.
Where libseccomp is missing the worker runs without the filter and reports it
(``extra_data.versions.worker.seccomp`` in results.json).
"""

from __future__ import annotations

import errno

# Refused with EPERM. Names unknown to this kernel's architecture are skipped.
DENIED = (
    # namespaces
    "unshare", "setns",
    # other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    # mounts and file handles
    "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
    "open_tree", "mount_setattr", "open_by_handle_at", "name_to_handle_at",
    # specialised kernel interfaces
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "keyctl", "add_key", "request_key", "init_module", "finit_module", "delete_module", "kexec_load",
    "kexec_file_load", "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "lookup_dcookie", "vhangup",
    "iopl", "ioperm",
)
CLONE_NEW_FLAGS = {  # linux/sched.h
    "CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}


def restrict_syscalls() -> str:
    """Load the filter into this process. Returns "on", or "unavailable: why" (no libseccomp, or a
    kernel without seccomp) for the results; never raises for those."""
    try:
        import pyseccomp as seccomp
    except (ImportError, RuntimeError, OSError) as exc:  # RuntimeError: "Unable to find libseccomp"
        return f"unavailable: {exc}"[:100]
    try:
        refuse = seccomp.ERRNO(errno.EPERM)
        rules = seccomp.SyscallFilter(seccomp.ALLOW)  # also sets no_new_privs, as seccomp requires
        for name in DENIED:
            try:
                rules.add_rule(refuse, name)
            except (ValueError, OSError):  # not a system call on this architecture
                continue
        for flag in CLONE_NEW_FLAGS.values():
            rules.add_rule(refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        rules.load()
    except (ValueError, OSError, RuntimeError) as exc:
        return f"unavailable: {exc}"[:100]
    return "on"
