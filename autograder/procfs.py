"""Reading the process table from /proc, shared by the grader (sandbox.py) and the reaper."""

from __future__ import annotations

import os
from collections.abc import Iterator


def process_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, fields of /proc/PID/stat after the command name: state, ppid, pgrp, ...) of every
    process that can be read. The command name may hold spaces and parentheses, hence the split
    after the last ')'."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:  # gone meanwhile
            continue
        yield int(entry), stat[stat.rfind(")") + 2:].split()
