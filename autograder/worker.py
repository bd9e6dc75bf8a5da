"""The untrusted side: executes requests from the grader against the student's code.

``WorkerServer`` holds the student's objects in a table and answers requests (import the
submission, get an attribute, call a function, compute a vector-Jacobian product...). It is used
two ways:

* in a separate, spawned worker process (``main``), for grading: the grading tests never share a
  process with student code;
* in-process (``autograder.remote.InProcessBackend``), for students running the public tests on
  their own machine, where being able to use a debugger matters more than isolation.

Both go through the same encode/decode path, so a test sees exactly the same values either way.
Nothing here is trusted by the grader: a submission can monkeypatch this module and send any
well-formed answer it likes; the grader only ever decodes plain values from it.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import random
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autograder import protocol

MAX_ERROR_CHARS = 4000


class WorkerServer:
    def __init__(self, generation: int = 0, submission_root: Path | None = None, seccomp: str = "not applied"):
        self.generation = generation
        self.seccomp = seccomp  # the system-call filter's state, for the results (autograder/syscalls.py)
        self.objects: dict[int, Any] = {}
        self._next_id = 1
        self.submission_root = (submission_root or Path.cwd()).resolve()

    # -- object table -----------------------------------------------------------------------
    def _register(self, obj: Any) -> dict:
        # Every handle gets its own id (no de-duplication), so releasing one proxy on the
        # grader's side never invalidates another proxy of the same object.
        handle_id = self._next_id
        self._next_id += 1
        self.objects[handle_id] = obj
        cls = type(obj)
        if inspect.ismodule(obj):
            kind = "module"
        elif inspect.isclass(obj):
            kind = "class"
        elif isinstance(obj, torch.nn.Module):
            kind = "nn.Module"
        elif isinstance(obj, torch.Tensor):
            kind = "tensor"
        elif inspect.isroutine(obj):
            kind = "function"
        else:
            kind = "object"
        type_name = getattr(obj, "__name__", None) if kind in ("module", "class", "function") else cls.__qualname__
        return {
            "t": "handle", "id": handle_id, "gen": self.generation, "kind": kind,
            "type": str(type_name or cls.__qualname__), "module": str(getattr(cls, "__module__", "")),
            "callable": callable(obj),
        }

    def _resolve(self, handle_id: int, generation: int) -> Any:
        if generation != self.generation or handle_id not in self.objects:
            raise LookupError("this object belonged to an earlier worker process that was restarted")
        return self.objects[handle_id]

    # -- framing ----------------------------------------------------------------------------
    def handle_frame(self, frame: bytes) -> bytes:
        """Answer one request frame with one response frame. Never raises."""
        try:
            header, blob = protocol.unpack(frame)
            decoder = protocol.Decoder(blob, resolve_ref=self._resolve)
            op = header.get("op")
            args = decoder.decode(header.get("args"))
            handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
            if handler is None:
                raise protocol.ProtocolError(f"unknown operation {op!r}")
            result = handler(**args)
        except BaseException as exc:  # noqa: BLE001 - SystemExit from student code included
            if isinstance(exc, KeyboardInterrupt) and os.environ.get("AUTOGRADER_IN_PROCESS"):
                raise
            return self._error_frame(exc)
        try:
            encoder = protocol.Encoder(make_handle=self._register)
            encoded = encoder.encode(result)
            return protocol.pack({"ok": True, "value": encoded}, encoder)
        except BaseException as exc:  # noqa: BLE001
            return self._error_frame(exc, prefix="the value your code returned could not be sent to the grader: ")

    def _error_frame(self, exc: BaseException, prefix: str = "") -> bytes:
        encoder = protocol.Encoder()
        error = {
            "type": _safe(lambda: type(exc).__name__, "Exception"),
            "message": self._relative(prefix + _safe(lambda: str(exc), "<unprintable exception>"))[:MAX_ERROR_CHARS],
            "traceback": _safe(lambda: self._format_traceback(exc), "")[:MAX_ERROR_CHARS],
        }
        return protocol.pack({"ok": False, "error": error}, encoder)

    def _format_traceback(self, exc: BaseException) -> str:
        """Keep the frames that are in the student's files: that is where the student can act."""
        frames = traceback.extract_tb(exc.__traceback__)
        root = str(self.submission_root)
        own = [f for f in frames if f.filename.startswith(root)]
        shown = own or frames[-3:]
        for frame in shown:
            if frame.filename.startswith(root):
                frame.filename = os.path.relpath(frame.filename, root)
        lines = traceback.format_list(shown)
        lines += traceback.format_exception_only(type(exc), exc)
        return self._relative("Traceback (most recent call last):\n" + "".join(lines))

    def _relative(self, text: str) -> str:
        """Paths inside the submission as the student knows them (a SyntaxError carries its path
        in its text, not in a frame)."""
        return text.replace(str(self.submission_root) + os.sep, "")

    # -- operations -------------------------------------------------------------------------
    def op_hello(self) -> dict:
        return {
            "pid": os.getpid(), "python": sys.version.split()[0], "torch": torch.__version__,
            "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(), "seccomp": self.seccomp,
        }

    def op_load(self, path: str, module_name: str) -> Any:
        file = (self.submission_root / path).resolve()
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except SystemExit as exc:
            raise RuntimeError(
                f"your code called sys.exit({exc.code!r}) while being imported; remove it (or put it under "
                "`if __name__ == '__main__':`)"
            ) from None
        return module

    def op_import(self, module: str, attribute: str | None = None) -> Any:
        """Course code the tests want the worker to hold (a fixed model, a dataset...)."""
        obj = importlib.import_module(module)
        return getattr(obj, attribute) if attribute else obj

    def op_seed(self, seed: int) -> None:
        seed_everything(seed)

    def op_getattr(self, obj: Any, name: str) -> Any:
        return getattr(obj, name)

    def op_setattr(self, obj: Any, name: str, value: Any) -> None:
        setattr(obj, name, value)

    def op_call(self, obj: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        return obj(*args, **(kwargs or {}))

    def op_getitem(self, obj: Any, key: Any) -> Any:
        return obj[key]

    def op_len(self, obj: Any) -> int:
        return int(len(obj))

    def op_iter(self, obj: Any, limit: int = 100_000) -> list:
        items = []
        for item in obj:
            items.append(item)
            if len(items) >= limit:
                raise ValueError(f"iterating produced more than {limit} items")
        return items

    def op_repr(self, obj: Any) -> str:
        return repr(obj)[:1000]

    def op_hold(self, value: Any) -> protocol.AsHandle:
        """Keep ``value`` (a tensor the grader sent) in the worker and answer with a handle, so a
        test can pass that very object to student code and see afterwards what was done to it."""
        return protocol.AsHandle(value)

    def op_fetch(self, obj: Any) -> Any:
        """The held object's current value (a tensor comes back by value, with its origin)."""
        return obj

    def op_tensor_state(self, obj: Any) -> dict:
        """What in-place changes leave behind on a held tensor: its value, its version counter
        (bumped by every in-place operation), ``requires_grad`` and ``.grad``."""
        if not isinstance(obj, torch.Tensor):
            raise TypeError(f"expected a tensor, got {type(obj).__name__}")
        return {"value": obj.detach(), "version": int(obj._version), "requires_grad": bool(obj.requires_grad),
                "grad": obj.grad}

    def op_module_state(self, module: Any) -> dict:
        """Read-only state of an ``nn.Module`` that tests check for side effects: train/eval mode
        of it and every submodule, each parameter's ``requires_grad`` and ``.grad``, and buffers
        (BatchNorm running statistics, ``num_batches_tracked``)."""
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"expected an nn.Module, got {type(module).__name__}")
        return {
            "training": bool(module.training),
            "modules_training": {name or "(root)": bool(m.training) for name, m in module.named_modules()},
            "requires_grad": {name: bool(p.requires_grad) for name, p in module.named_parameters()},
            "grads": {name: p.grad for name, p in module.named_parameters()},
            "parameters": {name: p.detach() for name, p in module.named_parameters()},
            "buffers": {name: b for name, b in module.named_buffers()},
        }

    def op_figures(self) -> list:
        """The matplotlib figures the submission drew (a notebook's plots): those shown with
        ``plt.show()`` and those left open, as (H, W, 3) uint8 arrays (see ``autograder.mpl_backend``)."""
        pyplot = sys.modules.get("matplotlib.pyplot")
        backend = sys.modules.get("autograder.mpl_backend")
        if pyplot is None or backend is None:
            return []
        backend.keep_and_close_all()
        images, backend.SHOWN[:] = list(backend.SHOWN), []
        return images

    def op_release(self, ids: list) -> None:
        for handle_id in ids:
            self.objects.pop(handle_id, None)

    def op_vjp(self, fn: Any, args: tuple, kwargs: dict, wrt: list, output_index: Any = None,
               grad_output: Any = None) -> dict:
        """Call ``fn`` with the chosen tensor arguments made differentiable; return the output
        and d(<output, grad_output>)/d(argument) for each chosen argument (None if unused)."""
        args = list(args)
        inputs = []
        for key in wrt:
            container = args if isinstance(key, int) else kwargs
            value = container[key]
            if not (isinstance(value, torch.Tensor) and value.is_floating_point()):
                raise TypeError(f"argument {key!r} must be a floating-point tensor to take a gradient")
            leaf = value.detach().clone().requires_grad_(True)
            container[key] = leaf
            inputs.append(leaf)
        with torch.enable_grad():
            output = fn(*args, **kwargs)
            selected = output if output_index is None else output[output_index]
            if not isinstance(selected, torch.Tensor):
                raise TypeError(f"expected a tensor output, got {type(selected).__name__}")
            if not selected.requires_grad:
                grads = [None] * len(inputs)
            else:
                if grad_output is None:
                    grad_output = torch.ones_like(selected)
                grads = torch.autograd.grad(selected, inputs, grad_output.to(selected), allow_unused=True)
        return {"output": output, "grads": list(grads), "requires_grad": bool(selected.requires_grad)}

    def op_parameter_grads(self, module: Any, fn: Any, args: tuple = (), kwargs: dict | None = None) -> dict:
        """Gradient of ``fn(*args)`` (a scalar) with respect to each parameter of ``module``."""
        params = dict(module.named_parameters())
        for p in params.values():
            p.grad = None
        with torch.enable_grad():
            out = fn(*args, **(kwargs or {}))
            if not (isinstance(out, torch.Tensor) and out.numel() == 1):
                raise TypeError("expected a scalar tensor output")
            grads = torch.autograd.grad(out, list(params.values()), allow_unused=True) if out.requires_grad else [None] * len(params)
        return dict(zip(params, grads))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _safe(fn, default: str) -> str:
    try:
        return str(fn())
    except BaseException:  # noqa: BLE001 - a student's __str__ may raise anything
        return default


MAX_EXTRA_PROCESSES = 256


def _processes_of_user(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += int(next(l for l in open(f"/proc/{entry}/status") if l.startswith("Threads:")).split()[1])
            except (OSError, StopIteration, ValueError):
                pass
    return count


def _apply_limits(memory_mb: int | None, max_file_mb: int | None) -> None:
    import resource

    def limit(kind: int, value: int) -> None:
        try:
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            pass  # a limit lower than the current usage cannot be set; keep going

    if memory_mb:
        limit(resource.RLIMIT_AS, memory_mb * 1024 * 1024)
    if os.geteuid() != 0:
        # RLIMIT_NPROC counts every process and thread of the user (and root ignores it), so it
        # is set relative to what the user already runs: a fork bomb stops after a few hundred.
        limit(resource.RLIMIT_NPROC, _processes_of_user(os.geteuid()) + MAX_EXTRA_PROCESSES)
    if max_file_mb:
        limit(resource.RLIMIT_FSIZE, max_file_mb * 1024 * 1024)
    limit(resource.RLIMIT_CORE, 0)


def _apply_landlock() -> None:
    """Mode ``landlock``: from here on this process (and all it starts) reads only the Python
    installation, the installed packages, the engine, the course package and the system's files,
    and writes only its working directory (see autograder/landlock.py)."""
    import glob
    import sysconfig

    from autograder import landlock
    from autograder.sandbox import SETUP_FAILED, SETUP_FAILED_CODE

    readable = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
                os.path.dirname(os.path.abspath(__file__)), *landlock.SYSTEM_READABLE}  # the engine: this folder
    readable |= {p for key in ("stdlib", "platstdlib", "purelib", "platlib") if (p := sysconfig.get_paths().get(key))}
    try:
        import assignments  # the course package, next to the engine or installed

        readable |= {os.path.abspath(path) for path in assignments.__path__}
    except ImportError:
        pass
    devices = [*landlock.DEVICE_FILES, *glob.glob("/dev/nvidia*")]  # CUDA's device files, when there
    try:
        landlock.restrict(sorted(readable), [os.getcwd()], devices)
    except OSError as exc:
        print(f"{SETUP_FAILED}: {exc}", file=sys.stderr, flush=True)
        os._exit(SETUP_FAILED_CODE)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the worker process (see ``autograder.sandbox``)."""
    import argparse
    from multiprocessing.connection import Connection

    parser = argparse.ArgumentParser()
    parser.add_argument("--fd-in", type=int, required=True)
    parser.add_argument("--fd-out", type=int, required=True)
    parser.add_argument("--generation", type=int, default=0)
    parser.add_argument("--memory-mb", type=int, default=0)
    parser.add_argument("--max-file-mb", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--landlock", action="store_true", help="restrict this process with Landlock first")
    opts = parser.parse_args(argv)

    import faulthandler
    import signal

    # On SIGUSR1 (a time-out while importing the submission) write the current stack to the output,
    # so the grader can tell the student which line (notebook cell) was running.
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=False)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    _apply_limits(opts.memory_mb, opts.max_file_mb)
    from autograder.syscalls import restrict_syscalls

    # Before Landlock: libseccomp is found through ldconfig, which Landlock would leave unreadable.
    seccomp = restrict_syscalls()
    if opts.landlock:
        _apply_landlock()
    requests = Connection(opts.fd_in, writable=False)
    responses = Connection(opts.fd_out, readable=False)
    server = WorkerServer(generation=opts.generation, submission_root=Path.cwd(), seccomp=seccomp)
    # The student's folder goes on sys.path only now, after torch and the engine are imported,
    # so a submission file named torch.py or numpy.py cannot shadow them here.
    sys.path.insert(0, str(server.submission_root))
    while True:
        try:
            frame = requests.recv_bytes()
        except (EOFError, OSError):
            break
        if frame == b"shutdown":
            break
        responses.send_bytes(server.handle_frame(frame))
    os._exit(0)  # do not run student atexit handlers or wait for student threads
