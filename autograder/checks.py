"""Assertions for grading tests whose failure messages are written for students.

Each helper raises ``AssertionError`` with a message that says what was expected and what was
got (types, shapes, numbers), so a hidden test can explain a failure without showing its code.
"""

from __future__ import annotations

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


def expect_tensor(value: Any, what: str, shape: Sequence[int] | None = None,
                  dtype: torch.dtype | None = None, finite: bool = True) -> torch.Tensor:
    """``value`` must be a tensor (of that shape and dtype, with finite values)."""
    __tracebackhide__ = True  # pytest: the message matters, not this helper
    if not isinstance(value, torch.Tensor):
        raise AssertionError(f"{what} should be a torch.Tensor, but it is {describe(value)}.")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise AssertionError(f"{what} should have shape {tuple(shape)}, but it has shape {tuple(value.shape)}.")
    if dtype is not None and value.dtype != dtype:
        raise AssertionError(f"{what} should have dtype {dtype}, but it has dtype {value.dtype}.")
    if finite and value.is_floating_point() and not torch.isfinite(value).all():
        raise AssertionError(f"{what} contains NaN or infinite values.")
    return value


def expect_scalar(value: Any, what: str) -> float:
    """``value`` must be a one-element tensor or a real number; returns it as a float."""
    __tracebackhide__ = True  # pytest: the message matters, not this helper
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        if value.dim() != 0:
            raise AssertionError(f"{what} should be a scalar (0-dimensional) tensor, got shape {tuple(value.shape)}.")
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise AssertionError(f"{what} should be a scalar, but it is {describe(value)}.")


def expect_close(actual: Any, expected: torch.Tensor, what: str, *, rtol: float = 1e-5, atol: float = 1e-6,
                 hint: str = "") -> None:
    """``actual`` must be a tensor equal to ``expected`` within tolerances (same shape)."""
    __tracebackhide__ = True  # pytest: the message matters, not this helper
    actual = expect_tensor(actual, what, shape=expected.shape, finite=False)
    actual = actual.to(device=expected.device, dtype=expected.dtype)
    close = torch.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=False)
    if bool(close.all()):
        return
    diff = (actual - expected).abs()
    worst = int(torch.argmax(torch.nan_to_num(diff, nan=float("inf"))).item())
    idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), expected.shape)) if expected.dim() else ()
    message = (
        f"{what} is not what was expected: {int((~close).sum())} of {close.numel()} value(s) differ; "
        f"the largest difference is at index {idx}: got {actual.flatten()[worst].item():.6g}, "
        f"expected {expected.flatten()[worst].item():.6g} (tolerance rtol={rtol:g}, atol={atol:g})."
    )
    raise AssertionError(message + (f" {hint}" if hint else ""))


def expect_scalar_close(actual: Any, expected: float, what: str, *, rtol: float = 1e-5, atol: float = 1e-6,
                        hint: str = "") -> None:
    __tracebackhide__ = True  # pytest: the message matters, not this helper
    value = expect_scalar(actual, what)
    if abs(value - expected) > atol + rtol * abs(expected):
        raise AssertionError(f"{what} is {value:.6g}, expected {expected:.6g}." + (f" {hint}" if hint else ""))


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
