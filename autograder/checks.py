"""Assertions for grading tests whose failure messages are written for students.

Each helper raises ``AssertionError`` with a message that says what was expected and what was
got (types, shapes, numbers), so a hidden test can explain a failure without showing its code.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from autograder.remote import is_remote, remote_info


def describe(value: Any) -> str:
    """A short, student-readable description of a value."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {str(value.dtype).removeprefix('torch.')}"
    if is_remote(value):
        info = remote_info(value)
        return f"an object of type {info.type_name}"
    if value is None:
        return "None (did the function forget to `return`?)"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(describe(v) for v in value[:3]) + (", ..." if len(value) > 3 else "")
        return f"a {type(value).__name__} of {len(value)} item(s) [{inner}]"
    return f"{type(value).__name__} {value!r}"[:200]


def format_pair(got: float, expected: float) -> tuple[str, str]:
    """Both numbers with as many significant digits as it takes for two different values never to
    print the same (6 at least, 17 at most: enough for any float64)."""
    for digits in range(6, 18):
        a, b = f"{got:.{digits}g}", f"{expected:.{digits}g}"
        if a != b or got == expected or (math.isnan(got) and math.isnan(expected)):
            return a, b
    return repr(got), repr(expected)


def _non_finite_summary(value: torch.Tensor) -> str:
    nan, inf = int(torch.isnan(value).sum()), int(torch.isinf(value).sum())
    parts = [f"{nan} NaN" if nan else "", f"{inf} infinite" if inf else ""]
    return " and ".join(p for p in parts if p) + f" value(s) out of {value.numel()}"


def expect_tensor(value: Any, what: str, shape: Sequence[int] | None = None,
                  dtype: torch.dtype | None = None, finite: bool = True) -> torch.Tensor:
    """``value`` must be a tensor (of that shape and dtype, with finite values unless
    ``finite=False``)."""
    __tracebackhide__ = True  # pytest: the message matters, not this helper
    if not isinstance(value, torch.Tensor):
        raise AssertionError(f"{what} should be a torch.Tensor, but it is {describe(value)}.")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise AssertionError(f"{what} should have shape {tuple(shape)}, but it has shape {tuple(value.shape)}.")
    if dtype is not None and value.dtype != dtype:
        raise AssertionError(f"{what} should have dtype {dtype}, but it has dtype {value.dtype}.")
    if finite and (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all()):
        raise AssertionError(f"{what} contains NaN or infinite values: {_non_finite_summary(value)}.")
    return value


def expect_scalar(value: Any, what: str, finite: bool = True) -> float:
    """``value`` must be a one-element tensor or a real number, finite unless ``finite=False``;
    returns it as a float."""
    __tracebackhide__ = True  # pytest: the message matters, not this helper
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        if value.dim() != 0:
            raise AssertionError(f"{what} should be a scalar (0-dimensional) tensor, got shape {tuple(value.shape)}.")
        number = float(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise AssertionError(f"{what} should be a scalar, but it is {describe(value)}.")
    if finite and not math.isfinite(number):
        raise AssertionError(f"{what} is {number!r}: your code returned {'NaN' if math.isnan(number) else 'an infinite value'}"
                             " where a finite number was expected.")
    return number


def expect_finite(value: float, what: str) -> float:
    """A number the test computed from the student's results (an MSE, an accuracy) must be
    finite: comparisons such as ``x <= t`` are False for NaN, but ``not x > t`` is True."""
    __tracebackhide__ = True  # pytest: the message matters, not this helper
    if not math.isfinite(value):
        raise AssertionError(f"{what} is {value!r}: your code produced NaN or infinite values.")
    return value


def _matching_mistakes(actual: torch.Tensor, known_mistakes: dict, rtol: float, atol: float) -> list[str]:
    found = []
    for description, wrong in known_mistakes.items():
        wrong = torch.as_tensor(wrong).to(device=actual.device, dtype=actual.dtype)
        if wrong.shape == actual.shape and bool(torch.isclose(actual, wrong, rtol=rtol, atol=atol).all()):
            found.append(description)
    return found


def _explain(actual, known_mistakes: dict | None, hint: str, rtol: float, atol: float) -> str:
    """What to add to a failure message: a specific cause only when the result matches what that
    mistake gives (``known_mistakes``: description -> its result), else the general ``hint``
    (which must then be worded as possibilities, not as a diagnosis)."""
    matches = _matching_mistakes(actual, known_mistakes, rtol, atol) if known_mistakes else []
    if matches:
        return " Your result is exactly what " + " or ".join(matches) + " gives."
    return f" {hint}" if hint else ""


def expect_close(actual: Any, expected: torch.Tensor, what: str, *, rtol: float = 1e-5, atol: float = 1e-6,
                 hint: str = "", known_mistakes: dict | None = None) -> None:
    """``actual`` must be a tensor equal to ``expected`` within tolerances (same shape). NaN never
    matches. ``known_mistakes`` maps a description of a mistake to the tensor it would give: the
    failure message names a mistake only when the result matches it, and shows ``hint`` otherwise."""
    __tracebackhide__ = True  # pytest: the message matters, not this helper
    actual = expect_tensor(actual, what, shape=expected.shape, finite=False)
    dtype_note = ""
    if actual.dtype != expected.dtype:
        dtype_note = f" (your result has dtype {str(actual.dtype).removeprefix('torch.')}, the expected " \
                     f"{str(expected.dtype).removeprefix('torch.')})"
    original = actual
    actual = actual.to(device=expected.device, dtype=expected.dtype)
    close = torch.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=False)
    if bool(close.all()):
        return
    if (actual.is_floating_point() or actual.is_complex()) and not bool(torch.isfinite(original).all()):
        raise AssertionError(f"{what} contains NaN or infinite values ({_non_finite_summary(original)}), "
                             f"where finite values were expected{dtype_note}."
                             + _explain(actual, known_mistakes, hint, rtol, atol))
    diff = (actual - expected).abs()
    worst = int(torch.argmax(diff).item())
    idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), expected.shape)) if expected.dim() else ()
    got_text, want_text = format_pair(original.flatten()[worst].item(), expected.flatten()[worst].item())
    message = (
        f"{what} is not what was expected: {int((~close).sum())} of {close.numel()} value(s) differ; "
        f"the largest difference is at index {idx}: got {got_text}, expected {want_text}{dtype_note} "
        f"(tolerance rtol={rtol:g}, atol={atol:g})."
    )
    raise AssertionError(message + _explain(actual, known_mistakes, hint, rtol, atol))


def expect_scalar_close(actual: Any, expected: float, what: str, *, rtol: float = 1e-5, atol: float = 1e-6,
                        hint: str = "", known_mistakes: dict | None = None) -> None:
    """``actual`` must be a finite scalar within ``atol + rtol * |expected|`` of ``expected``."""
    __tracebackhide__ = True  # pytest: the message matters, not this helper
    value = expect_scalar(actual, what, finite=False)
    if not abs(value - expected) <= atol + rtol * abs(expected):  # written so that NaN fails
        got_text, want_text = format_pair(value, float(expected))
        extra = _explain(torch.tensor(value, dtype=torch.float64),
                         {k: torch.tensor(float(v), dtype=torch.float64) for k, v in (known_mistakes or {}).items()},
                         hint, rtol, atol)
        if not math.isfinite(value):
            raise AssertionError(f"{what} is {value!r}: your code returned {'NaN' if math.isnan(value) else 'an infinite value'}"
                                 f" where the finite value {want_text} was expected." + extra)
        raise AssertionError(f"{what} is {got_text}, expected {want_text} (tolerance rtol={rtol:g}, atol={atol:g})."
                             + extra)


def expect_detached(value: Any, what: str) -> None:
    """A tensor the student's code returned must not require grad nor carry a graph there (read
    from the tensor's ``TensorOrigin``; a tensor made in the test passes)."""
    __tracebackhide__ = True  # pytest: the message matters, not this helper
    from autograder.protocol import tensor_origin

    origin = tensor_origin(value) if isinstance(value, torch.Tensor) else None
    if origin is not None and (origin.requires_grad or origin.grad_fn is not None):
        graph = f", attached to the graph by {origin.grad_fn}" if origin.grad_fn else ""
        raise AssertionError(f"{what} should be detached from the autograd graph, but it requires grad{graph}. "
                             "Return result.detach() (or compute it under torch.no_grad()).")


def expect_unchanged(state, original: torch.Tensor, what: str) -> None:
    """A tensor held in the worker (``worker.tensor_state(handle)``) must still have the value
    ``original`` and not have been switched to ``requires_grad``: the caller's tensor is the
    student's to read, not to modify."""
    __tracebackhide__ = True  # pytest: the message matters, not this helper
    value = state.value
    if not (isinstance(value, torch.Tensor) and value.shape == original.shape
            and torch.equal(value.to(original.device), original)):
        raise AssertionError(f"{what} was modified in place: the caller's tensor no longer holds its original "
                             "values. Work on a copy (x.clone()) or use out-of-place operations (x = x + ...).")
    if state.requires_grad:
        raise AssertionError(f"{what} was switched to requires_grad=True in place: the caller's tensor must be "
                             "left as it was. Make a new leaf instead: x.clone().detach().requires_grad_(True).")


def expect_parameter_grads(actual: dict, expected: dict, what: str, *, rtol: float = 1e-5, atol: float = 1e-6,
                           missing_hint: str = "") -> None:
    """``actual`` (parameter name -> gradient or None, as ``worker.parameter_grads`` returns) must
    match ``expected`` (the same from ``torch.autograd.grad(..., allow_unused=True)``). A parameter
    ``what`` does not depend on must get no gradient or a zero one."""
    __tracebackhide__ = True  # pytest: the message matters, not this helper
    for name, want in expected.items():
        got = actual.get(name)
        if want is None:
            if got is not None and bool(got.any()):
                raise AssertionError(f"d {what} / d {name} should be zero.")
            continue
        if got is None:
            raise AssertionError(f"{what} does not depend on the parameter {name}." + (f" {missing_hint}" if missing_hint else ""))
        expect_close(got, want, f"d {what} / d {name}", rtol=rtol, atol=atol)


def expect_raises(exception_name: str, call, what: str) -> None:
    """``call()`` must make the student's code raise an exception of type ``exception_name``."""
    __tracebackhide__ = True  # pytest: the message matters, not this helper
    from autograder.errors import StudentCodeError

    try:
        call()
    except StudentCodeError as exc:
        if exc.type_name == exception_name:
            return
        raise AssertionError(f"{what} should raise {exception_name}, but it raised {exc.type_name}: {exc.message}") from None
    raise AssertionError(f"{what} should raise {exception_name}, but it raised nothing.")


def training_seed(grading_seed: int, run: int) -> int:
    """The seed of run ``run`` (0, 1, ...) of a training test that retries a run that missed its
    bar: run 0 uses the grading seed itself, so a test's first run is the same as without retries.
    (The reinforcement agents' QualityCheck.training_seed computes the same numbers.)"""
    return grading_seed + 1000 * run

