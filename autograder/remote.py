"""The grader's view of a submission: a session that sends requests to a worker, and proxies that
make the student's code look local to a test.

    model = sub.Autoencoder(64, 8)     # the model is built and stays in the worker
    z = model.encode(x)                # x travels by value, z comes back as a plain tensor

Every value that comes back is a real ``torch.Tensor``/``int``/``list``... rebuilt by the trusted
decoder; objects that cannot travel by value come back as ``RemoteObject`` handles, which forward
attribute access, calls, indexing, ``len`` and iteration, and nothing else: they have no truth
value and compare by identity, so a student object with a rigged ``__eq__`` gains nothing.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder import protocol
from autograder.errors import (BudgetExhausted, GraderError, MissingName, StudentCodeError, SubmissionError,
                               WorkerCrashed, WorkerTimeout)
from autograder.sandbox import Limits, WorkerProcess

# CPU seconds a fresh worker may take to start (Python, torch and the engine: about 2 s); no
# student code runs then, so it counts against no budget.
STARTUP_SECONDS = 60.0
MAX_MESSAGE_CHARS = 8000  # of an exception's message or traceback from the student's code
WORKER_INFO_KEYS = ("pid", "python", "torch", "cuda", "cuda_available", "seccomp")


def plain_worker_info(answer: Any) -> dict:
    """The worker's "hello" answer as it goes into results: the known keys, short plain values
    (the worker runs student code, so its answers are not trusted to be well-formed)."""
    if not isinstance(answer, dict):
        return {}
    def plain(value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, int) and abs(value) < 2**31):
            return value
        return str(value)[:100]

    return {key: plain(answer[key]) for key in WORKER_INFO_KEYS if answer.get(key) is not None}


class SubprocessBackend:
    """Runs requests in an isolated worker process; starts a fresh one after a crash or timeout."""

    def __init__(self, workdir: Path, limits: Limits | None = None, device: str = "cpu"):
        self.workdir = Path(workdir)
        self.limits = limits or Limits()
        self.device = device
        self.generation = 0
        self.process: WorkerProcess | None = None
        self.restarts = 0

    def ensure_started(self) -> bool:
        """Start a worker if none is running. Returns True if a new one was started."""
        if self.process is not None and self.process.alive:
            return False
        if self.process is not None:
            self.process.kill()
            self.restarts += 1
        self.generation += 1
        try:
            self.process = WorkerProcess(self.workdir, self.generation, self.limits, self.device)
        except Exception as exc:  # noqa: BLE001 - never blame the student for the grader's failure
            raise GraderError(f"could not start the worker process: {type(exc).__name__}: {exc}") from exc
        return True

    def request(self, frame: bytes, timeout: float | None, dump_stack_on_timeout: bool = False) -> bytes:
        self.ensure_started()
        return self.process.request(frame, timeout, dump_stack_on_timeout)

    @property
    def last_cpu(self) -> float:
        """CPU seconds the worker used for the last request."""
        return self.process.last_cpu if self.process else 0.0

    def output_mark(self) -> int:
        return self.process.output.total if self.process else 0

    def output_since(self, mark: int) -> str:
        return self.process.output.since(mark) if self.process else ""

    def close(self) -> None:
        if self.process is not None:
            self.process.close()


class InProcessBackend:
    """Runs requests in this process (local mode for students: debuggers and prints just work).

    Frames still go through the same encoder and decoder, so tests see identical values."""

    def __init__(self, workdir: Path):
        import os
        import sys

        from autograder.worker import WorkerServer

        os.environ["AUTOGRADER_IN_PROCESS"] = "1"
        self.generation = 1
        self.server = WorkerServer(generation=1, submission_root=Path(workdir))
        if str(self.server.submission_root) not in sys.path:
            sys.path.insert(0, str(self.server.submission_root))

    def ensure_started(self) -> bool:
        return False

    def request(self, frame: bytes, timeout: float | None, dump_stack_on_timeout: bool = False) -> bytes:
        return self.server.handle_frame(frame)  # local mode: no budget, the student can interrupt

    def output_mark(self) -> int:
        return 0

    def output_since(self, mark: int) -> str:
        return ""  # output went straight to the terminal

    def close(self) -> None:
        pass


class Session:
    """A conversation with one submission's worker.

    Budgets are CPU seconds of the worker (see ``autograder.sandbox.WALL_FACTOR``): ``budget_left``
    bounds what the current test's requests may use (the pytest plugin sets it at the start of each
    test to min(test budget, what is left of the submission budget) and ``cpu_used`` counts the
    whole submission's. Importing the submission has its own budget, ``import_budget``.
    """

    def __init__(self, backend, entry: str | None = None, module_name: str = "submission"):
        self.backend = backend
        self.entry = entry
        self.module_name = module_name
        self.budget_left: float | None = None
        self.import_budget: float | None = None
        self.cpu_used = 0.0
        self.budget_text = ""  # how the plugin states the current test's budget in a time-out message
        self.budget_exhausted: float | None = None
        self._module: RemoteObject | None = None
        self._module_generation = -1
        self._load_error: SubmissionError | None = None
        self._import_timed_out = False  # then the submission is never imported again
        self.import_problem: str | None = None  # one line for the gradebook's problem column
        self._pending_release: list[int] = []
        self.seed: int | None = None
        self.worker_info: dict = {}  # the worker's answer to "hello" (versions, device), from its start-up

    # -- low level --------------------------------------------------------------------------
    def _timeout(self) -> float | None:
        if self.budget_exhausted is not None:
            raise BudgetExhausted(self.budget_exhausted)
        if self.budget_left is None:
            return None
        if self.budget_left <= 0:
            raise WorkerTimeout(0.0, self.budget_text)
        return self.budget_left

    def request(self, op: str, **args: Any) -> Any:
        __tracebackhide__ = True  # pytest: show the student their error, not the proxy
        self._timeout()
        if self.backend.ensure_started():
            self._on_new_worker()
        if self._pending_release:
            ids, self._pending_release = self._pending_release, []
            self._raw_request("release", {"ids": ids}, self._timeout())
        return self._raw_request(op, args, self._timeout())

    def _charge(self, charge: bool | None) -> None:
        """Count the last request's CPU time: against the submission (``cpu_used``) unless
        ``charge`` is None (the worker's own start-up), and against the test if ``charge``."""
        if charge is None:
            return
        used = float(getattr(self.backend, "last_cpu", 0.0) or 0.0)
        self.cpu_used += used
        if charge and self.budget_left is not None:
            self.budget_left -= used

    def _raw_request(self, op: str, args: dict, timeout: float | None, charge: bool | None = True,
                     dump_stack_on_timeout: bool = False) -> Any:
        __tracebackhide__ = True  # pytest: show the student their error, not the proxy
        encoder = protocol.Encoder(make_handle=self._ref_for)
        frame = protocol.pack({"op": op, "args": encoder.encode(args)}, encoder)
        try:
            answer = self.backend.request(frame, timeout, dump_stack_on_timeout=dump_stack_on_timeout)
        except WorkerTimeout as exc:
            self._charge(charge)
            if charge and self.budget_left is not None:
                self.budget_left = 0.0
            raise exc.with_budget(self.budget_text) from None
        self._charge(charge)
        try:
            header, blob = protocol.unpack(answer)
            decoder = protocol.Decoder(blob, make_remote=self._make_remote)
            if header.get("ok") is True:
                return decoder.decode(header.get("value"))
            error = header.get("error")
            if not isinstance(error, dict):
                raise protocol.ProtocolError("malformed error")
        except protocol.ProtocolError as exc:
            raise SubmissionError(f"The process running your code sent a malformed answer ({exc}).") from None
        raise StudentCodeError(str(error.get("type", "Exception"))[:200], str(error.get("message", ""))[:MAX_MESSAGE_CHARS],
                               str(error.get("traceback", ""))[-MAX_MESSAGE_CHARS:])

    def _ref_for(self, value: Any) -> dict:
        if isinstance(value, RemoteObject):
            info = object.__getattribute__(value, "_info")
            if info.generation != self.backend.generation:
                raise SubmissionError(
                    "An object from your code was lost because the process running it was restarted "
                    "after an earlier failure (crash or time-out)."
                )
            return {"t": "ref", "id": info.id, "gen": info.generation}
        raise TypeError(f"cannot send a {type(value).__name__} to the worker")

    def _make_remote(self, info: protocol.HandleInfo) -> RemoteObject:
        proxy = RemoteObject(self, info)
        weakref.finalize(proxy, self._release_later, info.id, info.generation)
        return proxy

    def _release_later(self, handle_id: int, generation: int) -> None:
        if generation == self.backend.generation:
            self._pending_release.append(handle_id)

    def _on_new_worker(self) -> None:
        """A fresh worker (first start or restart): seed it and re-import the submission (unless
        importing it already ran out of time: it is not tried again for every test)."""
        self._pending_release.clear()
        self._module = None
        # Start-up (Python, torch, the engine) runs no student code: the grader's cost, paid here
        # rather than by whichever test happens to start the worker.
        self.worker_info = plain_worker_info(self._raw_request("hello", {}, STARTUP_SECONDS, charge=None))
        if self.seed is not None:
            self._raw_request("seed", {"seed": self.seed}, self._timeout())
        if self.entry is not None and not self._import_timed_out:
            self._import_submission()

    def _import_submission(self) -> None:
        timeout = self.import_budget if self.import_budget is not None else self._timeout()
        mark = self.backend.output_mark()
        try:
            self._module = self._raw_request("load", {"path": self.entry, "module_name": self.module_name}, timeout,
                                             charge=self.import_budget is None,
                                             dump_stack_on_timeout=self.import_budget is not None)
            self._module_generation = self.backend.generation
            self._load_error = None
            self.import_problem = None
        except StudentCodeError as exc:
            missing = ""
            if exc.type_name == "ModuleNotFoundError":
                missing = (" That package is not installed where your code is graded: the handout lists what is. "
                           "Remove the import, or put it in a cell tagged `skip`.")
            self._load_error = SubmissionError(
                f"Your submission could not be imported, so this test could not run.{missing}\n\n{exc.feedback()}"
            )
            self.import_problem = f"could not be imported: {exc.type_name}: {exc.message}".splitlines()[0][:300] + (
                " (not installed where it is graded)" if missing else "")
        except WorkerCrashed as exc:
            self._load_error = SubmissionError(f"Your submission could not be imported. {exc}")
            self.import_problem = f"could not be imported: {str(exc).splitlines()[0]}"
        except WorkerTimeout as exc:
            if self.import_budget is None:
                self._load_error = SubmissionError(f"Importing your submission took too long. {exc}")
                self.import_problem = "importing it took too long"
                return
            self._import_timed_out = True
            self.import_problem = f"importing it took more than {self.import_budget:g} s of CPU time"
            where = self._running_line(self.backend.output_since(mark))
            self._load_error = SubmissionError(
                f"Importing your submission took more than the {self.import_budget:g} s of CPU time allowed for it, "
                "so it was stopped, and no test could run. Code at the top level of your file (outside functions) "
                "runs on import: put experiments and training runs under `if __name__ == \"__main__\":` (script) "
                "or tag their notebook cells `skip`."
                + (f"\n\nIt was running:\n  {where}" if where else ""))

    def _running_line(self, output: str) -> str:
        """The top-level line of the student's file the worker was running (from the stack dump
        the worker writes when it is stopped, see ``autograder.worker.main``)."""
        import re

        frames = re.findall(r'File "([^"]+)", line (\d+) in <module>', output)
        for filename, line in reversed(frames):
            if self.entry and filename.endswith(self.entry):
                return f'File "{self.entry}", line {line}'
        return ""

    # -- what tests use ---------------------------------------------------------------------
    @property
    def module(self) -> RemoteObject:
        """The student's module, imported in the worker (once per worker process)."""
        __tracebackhide__ = True  # pytest: show the student their error, not the proxy
        self._timeout()
        if self.backend.ensure_started():
            self._on_new_worker()
        elif self._module is None and self._load_error is None:
            self._import_submission()
        if self._load_error is not None:
            raise self._load_error
        return self._module

    def set_seed(self, seed: int) -> None:
        """Seed the worker's random, numpy and torch generators (before every test)."""
        __tracebackhide__ = True  # pytest: show the student their error, not the proxy
        self.seed = seed
        self.request("seed", seed=seed)

    def hello(self) -> dict:
        return self.request("hello")

    def import_course(self, module: str, attribute: str | None = None) -> Any:
        """Get course code (``assignments.*``) into the worker, e.g. a fixed classifier."""
        return self.request("import", module=module, attribute=attribute)

    def vjp(self, fn: RemoteObject, *args: Any, wrt: tuple = (0,), output_index: Any = None,
            grad_output: Any = None, **kwargs: Any) -> tuple[Any, list]:
        """Call student function ``fn`` in the worker and differentiate it there.

        Returns ``(output, grads)``: the output by value and, for each argument named in ``wrt``
        (positions or keyword names), the gradient of ``sum(output * grad_output)`` with respect
        to it, or None where the output does not depend on it. ``grad_output`` defaults to ones.
        """
        __tracebackhide__ = True  # pytest: show the student their error, not the proxy
        answer = self.request("vjp", fn=fn, args=tuple(args), kwargs=kwargs, wrt=list(wrt),
                              output_index=output_index, grad_output=grad_output)
        return answer["output"], answer["grads"]

    def hold(self, tensor: Any) -> RemoteObject:
        """Put a copy of ``tensor`` in the worker and get a handle to it. Pass the handle to the
        student's code instead of the tensor (it receives the held object itself, not a copy), then
        use ``fetch`` or ``tensor_state`` to see whether the code changed it in place."""
        return self.request("hold", value=tensor)

    def fetch(self, handle: RemoteObject) -> Any:
        """The current value of a held object (see ``hold``), by value."""
        return self.request("fetch", obj=handle)

    def tensor_state(self, handle: RemoteObject) -> "TensorState":
        """Value, version counter, ``requires_grad`` and ``.grad`` of a held tensor."""
        state = self.request("tensor_state", obj=handle)
        return TensorState(value=state["value"], version=int(state["version"]),
                           requires_grad=bool(state["requires_grad"]), grad=state["grad"])

    def module_state(self, module: RemoteObject) -> "ModuleState":
        """Train/eval mode, parameters (values, ``requires_grad``, ``.grad``) and buffers of a
        student's or a course ``nn.Module`` living in the worker, read without changing it."""
        state = self.request("module_state", module=module)
        if not isinstance(state, dict):
            raise SubmissionError("The process running your code sent a malformed answer (module state).")
        return ModuleState(training=state.get("training") is True,
                           **{key: dict(state.get(key) or {}) for key in
                              ("modules_training", "requires_grad", "grads", "parameters", "buffers")})

    def parameter_grads(self, module: RemoteObject, fn: RemoteObject, *args: Any, **kwargs: Any) -> dict:
        """Gradients of the scalar ``fn(*args)`` with respect to every parameter of ``module``."""
        return self.request("parameter_grads", module=module, fn=fn, args=tuple(args), kwargs=kwargs)

    def output_mark(self) -> int:
        return self.backend.output_mark()

    def output_since(self, mark: int) -> str:
        return self.backend.output_since(mark)

    def close(self) -> None:
        self.backend.close()


@dataclass(frozen=True)
class TensorState:
    """A held tensor as it is now in the worker (``Session.tensor_state``)."""

    value: Any
    version: int  # torch's version counter: every in-place operation on the tensor bumps it
    requires_grad: bool
    grad: Any


@dataclass(frozen=True)
class ModuleState:
    """An ``nn.Module`` as it is now in the worker (``Session.module_state``)."""

    training: bool
    modules_training: dict  # submodule name ("(root)" for the module itself) -> training flag
    requires_grad: dict  # parameter name -> requires_grad
    grads: dict  # parameter name -> .grad (a tensor) or None
    parameters: dict  # parameter name -> value
    buffers: dict  # buffer name -> value

    def in_train_mode(self) -> list[str]:
        """Submodules (or "(root)") left in train mode."""
        return [name for name, flag in self.modules_training.items() if flag]

    def with_grad(self) -> list[str]:
        """Parameters whose ``.grad`` is set."""
        return [name for name, grad in self.grads.items() if grad is not None]


class RemoteObject:
    """A handle to an object in the worker, usable like the object for the common operations."""

    __slots__ = ("_session", "_info", "__weakref__")

    def __init__(self, session: Session, info: protocol.HandleInfo):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_info", info)

    def __getattr__(self, name: str) -> Any:
        __tracebackhide__ = True  # pytest: show the student their error, not the proxy
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        session: Session = object.__getattribute__(self, "_session")
        info: protocol.HandleInfo = object.__getattribute__(self, "_info")
        try:
            return session.request("getattr", obj=self, name=name)
        except StudentCodeError as exc:
            if exc.type_name == "AttributeError":
                if info.kind == "module":
                    raise MissingName(name) from None
                raise MissingName(name, kind=f"attribute of {info.type_name}:") from None
            raise

    def __setattr__(self, name: str, value: Any) -> None:
        object.__getattribute__(self, "_session").request("setattr", obj=self, name=name, value=value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # pytest: show the student their error, not the proxy
        return object.__getattribute__(self, "_session").request("call", obj=self, args=args, kwargs=kwargs)

    def __getitem__(self, key: Any) -> Any:
        __tracebackhide__ = True  # pytest: show the student their error, not the proxy
        return object.__getattribute__(self, "_session").request("getitem", obj=self, key=key)

    def __len__(self) -> int:
        __tracebackhide__ = True  # pytest: show the student their error, not the proxy
        try:
            return object.__getattribute__(self, "_session").request("len", obj=self)
        except StudentCodeError as exc:
            if exc.type_name == "TypeError":  # no len(): list(proxy) relies on this being a TypeError
                raise TypeError(exc.message) from None
            raise

    def __iter__(self):
        return iter(object.__getattribute__(self, "_session").request("iter", obj=self))

    def __bool__(self) -> bool:
        raise TypeError("an object living in the student's process has no truth value here; compare values")

    def __repr__(self) -> str:
        info = object.__getattribute__(self, "_info")
        return f"<remote {info.kind} {info.type_name}>"

    # Comparison stays identity-based (object's defaults), never forwarded to student code.
    __eq__ = object.__eq__
    __hash__ = object.__hash__


def remote_info(obj: RemoteObject) -> protocol.HandleInfo:
    """Metadata of a handle (its kind and type name) without a round trip."""
    return object.__getattribute__(obj, "_info")


def is_remote(obj: Any) -> bool:
    return isinstance(obj, RemoteObject)
