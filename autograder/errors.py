"""Exceptions the grader raises when a submission misbehaves. Each one carries a message written
for the student: it ends up, as is, in the feedback of the test that hit it."""

from __future__ import annotations

import signal


class SubmissionError(Exception):
    """Something about the submission prevents a test from running or passing."""


class SubmissionNotFound(SubmissionError):
    """The submission has no file the assignment can grade."""


class StudentCodeError(SubmissionError):
    """The student's code raised an exception."""

    def __init__(self, type_name: str, message: str, traceback: str = ""):
        self.type_name = type_name
        self.message = message
        self.traceback = traceback
        super().__init__(f"your code raised {type_name}: {message}")

    def feedback(self) -> str:
        text = f"Your code raised {self.type_name}: {self.message}"
        if self.traceback:
            text += f"\n\n{self.traceback.rstrip()}"
        return text


class MissingName(SubmissionError):
    """The submission does not define a name the tests use."""

    def __init__(self, name: str, kind: str = ""):
        self.name = name
        what = f"{kind} `{name}`" if kind else f"`{name}`"
        super().__init__(
            f"Your submission does not define {what}. Check the spelling against the handout and that the "
            "cell or block defining it is not skipped."
        )


class WorkerTimeout(SubmissionError):
    def __init__(self, seconds: float, budget: str = "", idle: bool = False):
        self.seconds = seconds
        self.budget = budget
        self.idle = idle
        stated = budget or f"{seconds:.1f} s of CPU time were left for this test"
        cause = ("It was waiting (sleeping, blocked on input or a lock) rather than computing: look for "
                 "input(), time.sleep() or a process or thread that never ends." if idle else
                 "Look for an infinite loop, or training that runs much longer than the handout asks.")
        super().__init__(f"Your code did not finish within the time budget and was stopped ({stated}). {cause}")

    def with_budget(self, budget: str) -> "WorkerTimeout":
        return WorkerTimeout(self.seconds, budget, self.idle)


class WorkerCrashed(SubmissionError):
    def __init__(self, exit_code: int | None, output_tail: str = "", reason: str = ""):
        self.exit_code = exit_code
        self.output_tail = output_tail
        if exit_code is not None and exit_code < 0:
            try:
                name = signal.Signals(-exit_code).name
            except ValueError:
                name = f"signal {-exit_code}"
            how = f"was killed by {name}"
            if name in ("SIGKILL", "SIGSEGV", "SIGBUS", "SIGABRT"):
                how += " (often: it used more memory than allowed, or crashed in native code)"
        elif reason:
            how = f"{reason}, so it was stopped (does your code write to file descriptors it did not open?)"
        elif exit_code is None:
            how = "stopped answering"
        else:
            how = f"exited with code {exit_code} (did your code call os._exit() or exit()?)"
        message = f"The process running your code {how}."
        if output_tail.strip():
            message += f"\n\nLast output:\n{output_tail.rstrip()}"
        super().__init__(message)


class BudgetExhausted(SubmissionError):
    def __init__(self, seconds: float):
        super().__init__(
            f"The time budget for the whole submission ({seconds:.0f} s) was used up before this test ran."
        )


class SandboxError(SubmissionError):
    """The grader could not set up the worker's sandbox: the grader's problem, not the student's."""

    def __init__(self, detail: str):
        super().__init__(
            "The grader could not prepare the environment to run your code. This is not a problem with "
            f"your submission: please tell your instructor. ({detail})"
        )


class GraderError(SubmissionError):
    """The grader itself failed while running a test (a bug or a broken installation)."""

    def __init__(self, detail: str):
        super().__init__(
            "The grader itself failed while running this test. This is not a problem with your "
            f"submission: please tell your instructor. ({detail})"
        )
