"""The wire format between the trusted grader and the untrusted worker.

Values cross the process boundary *by value*: plain Python data (None, bool, int, float, str,
bytes, lists, tuples, dicts), numpy arrays, torch tensors, dtypes and devices. Anything else that
the student's code returns (an ``nn.Module``, an optimizer, a class, a generator...) stays in the
worker and crosses as a *handle*: a small record naming an entry in the worker's object table.

Why not pickle: unpickling bytes written by the student's process would let student code run in
the grader. Decoding here builds only the types listed above, from JSON and raw bytes, so a
malicious worker can at worst send wrong values, which the tests then judge.

A message is one frame: an 8-byte little-endian header length, a UTF-8 JSON header, then the
concatenated raw buffers (tensor and array data) that the header refers to by offset.
"""

from __future__ import annotations

import collections
import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

_PLAIN_DICT_SUBCLASSES = (collections.OrderedDict, collections.defaultdict)
MAX_DEPTH = 64
MAX_MESSAGE_BYTES = 2 * 1024**3  # 2 GiB: larger than any tensor a course test exchanges
_HEADER = struct.Struct("<Q")
# The JSON part of a frame (plain values; tensors travel in the blob): decoded into Python objects
# about ten times its size, so a worker cannot make the grader hold gigabytes with a few numbers.
MAX_HEADER_BYTES = 16 * 1024**2


class ProtocolError(Exception):
    """A message that does not follow the wire format (malformed, unknown type, too deep)."""


@dataclass(frozen=True)
class HandleInfo:
    """What the grader knows about an object that lives in the worker."""

    id: int
    type_name: str
    module: str
    kind: str  # "module", "class", "function", "nn.Module", "object"
    callable: bool
    generation: int  # which worker process created it; handles die with their worker


@dataclass(frozen=True)
class TensorOrigin:
    """How a tensor that came back from the worker looked there, before it crossed by value.

    Crossing the boundary detaches and copies a tensor, so these are the only way a test can see
    that the student returned a tensor that still requires grad or carries a graph. The worker is
    untrusted: a submission that tampers with the engine can lie here, as it could about any value
    that only it computes, so tests use these for hygiene checks, never for correctness."""

    requires_grad: bool
    grad_fn: str | None  # the autograd node's type name (e.g. "AddBackward0"), None for a leaf
    is_leaf: bool
    device: str  # the device it was on in the worker ("cuda:0"), before any device mapping
    dtype: str


ORIGIN_ATTRIBUTE = "_autograder_origin"


def tensor_origin(tensor: torch.Tensor) -> TensorOrigin | None:
    """The ``TensorOrigin`` of a tensor the worker sent, None for any other tensor."""
    return getattr(tensor, ORIGIN_ATTRIBUTE, None)


@dataclass(frozen=True)
class AsHandle:
    """Wraps a worker value that must cross as a handle even though it could travel by value (a
    tensor held in the worker so that a test can pass it to student code and look at it after)."""

    obj: Any


@dataclass(frozen=True)
class Ref:
    """A reference to a worker object, sent from the grader back to the worker."""

    id: int
    generation: int


_TORCH_DTYPES = {
    str(dt).removeprefix("torch."): dt
    for dt in (
        torch.float64, torch.float32, torch.float16, torch.bfloat16,
        torch.complex64, torch.complex128,
        torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool,
    )
}
_NUMPY_DTYPES = {
    np.dtype(name).str: np.dtype(name)
    for name in (
        "float64", "float32", "float16", "complex64", "complex128",
        "int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64", "bool",
    )
}


class Encoder:
    """Turns a value into (JSON-able tree, buffers).

    ``make_handle`` decides what happens to a value that cannot travel by value: the worker
    registers it and returns a handle record; the grader side refuses (it never sends objects).
    """

    def __init__(self, make_handle: Callable[[Any], dict] | None = None):
        self.buffers: list[bytes] = []
        self.offset = 0
        self.make_handle = make_handle

    def _add_buffer(self, data: bytes) -> list[int]:
        start = self.offset
        self.buffers.append(data)
        self.offset += len(data)
        return [start, len(data)]

    def encode(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ProtocolError(f"value nested deeper than {MAX_DEPTH} levels")
        # Exact type checks on purpose: a subclass of int/str/... may override __eq__ and
        # friends, so it is converted to the base type (or becomes a handle below).
        t = type(value)
        if value is None or t is bool or t is str:
            return value
        if t is int:
            return value if abs(value) < 2**53 else {"t": "bigint", "v": str(value)}
        if t is float:
            return value if math.isfinite(value) else {"t": "float", "v": repr(value)}
        if isinstance(value, (np.bool_, np.integer, np.floating)) and not isinstance(value, (bool, int, float)):
            return self.encode(value.item(), depth + 1)
        # Subclasses of str/int/float (torch's TorchVersion, numpy.float64...) travel as exact
        # base values; the base-class methods return exact types whatever the subclass overrides.
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, int):
            return self.encode(int.__index__(value), depth + 1)
        if isinstance(value, float):
            return self.encode(float.__float__(value), depth + 1)
        if t in (list, tuple, torch.Size):
            items = [self.encode(v, depth + 1) for v in value]
            return {"t": "list" if t is list else "tuple", "v": items}
        # OrderedDict (a state_dict) and defaultdict read like dicts; the worker may send them.
        if t is dict or (self.make_handle is not None and t in _PLAIN_DICT_SUBCLASSES):
            return {"t": "dict", "v": [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in value.items()]}
        if t in (bytes, bytearray):
            return {"t": "bytes", "b": self._add_buffer(bytes(value))}
        if isinstance(value, torch.Tensor) and value.layout == torch.strided and not value.is_quantized:
            return self._encode_tensor(value)
        if t is np.ndarray:
            return self._encode_array(value)
        if t is torch.dtype:
            return {"t": "dtype", "v": str(value).removeprefix("torch.")}
        if t is torch.device:
            return {"t": "device", "v": str(value)}
        if t is slice:
            return {"t": "slice", "v": [self.encode(value.start, depth + 1), self.encode(value.stop, depth + 1),
                                        self.encode(value.step, depth + 1)]}
        if value is Ellipsis:
            return {"t": "ellipsis"}
        if t is Ref:
            return {"t": "ref", "id": value.id, "gen": value.generation}
        if t is AsHandle and self.make_handle is not None:
            return self.make_handle(value.obj)
        if self.make_handle is not None:
            return self.make_handle(value)
        raise ProtocolError(f"cannot send a value of type {t.__module__}.{t.__qualname__} by value")

    def _encode_tensor(self, tensor: torch.Tensor) -> dict:
        dtype = str(tensor.dtype).removeprefix("torch.")
        if dtype not in _TORCH_DTYPES:
            raise ProtocolError(f"tensors of dtype {tensor.dtype} are not supported")
        device = tensor.device.type
        data = tensor.detach().to("cpu").contiguous().reshape(-1)
        raw = data.view(torch.uint8).numpy().tobytes() if data.numel() else b""
        node = {"t": "tensor", "dtype": dtype, "shape": list(tensor.shape), "device": device, "b": self._add_buffer(raw)}
        if self.make_handle is not None:  # the worker says how the tensor looked (see TensorOrigin)
            node["origin"] = {"rg": bool(tensor.requires_grad), "fn": type(tensor.grad_fn).__name__ if tensor.grad_fn
                              is not None else None, "leaf": bool(tensor.is_leaf), "dev": str(tensor.device)}
        return node

    def _encode_array(self, array: np.ndarray) -> dict:
        dtype = array.dtype.str
        if dtype not in _NUMPY_DTYPES:
            raise ProtocolError(f"numpy arrays of dtype {array.dtype} are not supported")
        raw = np.ascontiguousarray(array).tobytes()
        return {"t": "ndarray", "dtype": dtype, "shape": list(array.shape), "b": self._add_buffer(raw)}


class Decoder:
    """Rebuilds a value from (JSON tree, buffer blob), building only the wire format's types."""

    def __init__(self, blob: memoryview, resolve_ref: Callable[[int, int], Any] | None = None,
                 make_remote: Callable[[HandleInfo], Any] | None = None, device_map: Callable[[str], str] | None = None):
        self.blob = blob
        self.resolve_ref = resolve_ref
        self.make_remote = make_remote
        self.device_map = device_map or _default_device

    def _buffer(self, spec: Any) -> memoryview:
        if not (isinstance(spec, list) and len(spec) == 2 and all(type(x) is int and x >= 0 for x in spec)):
            raise ProtocolError("malformed buffer reference")
        start, length = spec
        if start + length > len(self.blob):
            raise ProtocolError("buffer reference out of range")
        return self.blob[start:start + length]

    def decode(self, node: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ProtocolError(f"value nested deeper than {MAX_DEPTH} levels")
        t = type(node)
        if node is None or t in (bool, int, float, str):
            return node
        if t is not dict or type(node.get("t")) is not str:
            raise ProtocolError(f"unexpected node of type {t.__name__}")
        tag = node["t"]
        if tag == "list":
            return [self.decode(v, depth + 1) for v in _as_list(node.get("v"))]
        if tag == "tuple":
            return tuple(self.decode(v, depth + 1) for v in _as_list(node.get("v")))
        if tag == "dict":
            out = {}
            for pair in _as_list(node.get("v")):
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise ProtocolError("malformed dict item")
                key = self.decode(pair[0], depth + 1)
                try:
                    out[key] = self.decode(pair[1], depth + 1)
                except TypeError as exc:  # unhashable key
                    raise ProtocolError(f"unhashable dict key: {exc}") from None
            return out
        if tag == "bigint":
            return int(_as_str(node.get("v")))
        if tag == "float":
            value = _as_str(node.get("v"))
            if value not in ("nan", "inf", "-inf"):
                raise ProtocolError("malformed special float")
            return float(value)
        if tag == "bytes":
            return bytes(self._buffer(node.get("b")))
        if tag == "tensor":
            return self._decode_tensor(node)
        if tag == "ndarray":
            return self._decode_array(node)
        if tag == "dtype":
            name = _as_str(node.get("v"))
            if name not in _TORCH_DTYPES:
                raise ProtocolError(f"unknown dtype {name!r}")
            return _TORCH_DTYPES[name]
        if tag == "device":
            return torch.device(self.device_map(_as_str(node.get("v"))))
        if tag == "slice":
            parts = [self.decode(v, depth + 1) for v in _as_list(node.get("v"))]
            if len(parts) != 3:
                raise ProtocolError("malformed slice")
            return slice(*parts)
        if tag == "ellipsis":
            return Ellipsis
        if tag == "handle" and self.make_remote is not None:
            info = HandleInfo(
                id=_as_int(node.get("id")), type_name=_as_str(node.get("type")), module=_as_str(node.get("module")),
                kind=_as_str(node.get("kind")), callable=bool(node.get("callable")), generation=_as_int(node.get("gen")),
            )
            return self.make_remote(info)
        if tag == "ref" and self.resolve_ref is not None:
            return self.resolve_ref(_as_int(node.get("id")), _as_int(node.get("gen")))
        raise ProtocolError(f"unknown or unexpected value tag {tag!r}")

    def _decode_tensor(self, node: dict) -> torch.Tensor:
        dtype_name = _as_str(node.get("dtype"))
        if dtype_name not in _TORCH_DTYPES:
            raise ProtocolError(f"unknown tensor dtype {dtype_name!r}")
        dtype = _TORCH_DTYPES[dtype_name]
        shape = _shape(node.get("shape"))
        raw = self._buffer(node.get("b"))
        numel = math.prod(shape)
        itemsize = torch.empty((), dtype=dtype).element_size()
        if len(raw) != numel * itemsize:
            raise ProtocolError("tensor buffer size does not match its shape and dtype")
        if numel == 0:
            tensor = torch.empty(shape, dtype=dtype)
        else:
            tensor = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype).reshape(shape)
        device = self.device_map(_as_str(node.get("device")))
        tensor = tensor if device == "cpu" else tensor.to(device)
        origin = node.get("origin")
        if origin is not None and self.make_remote is not None:
            tensor.__dict__[ORIGIN_ATTRIBUTE] = _decode_origin(origin, dtype_name)
        return tensor

    def _decode_array(self, node: dict) -> np.ndarray:
        dtype_name = _as_str(node.get("dtype"))
        if dtype_name not in _NUMPY_DTYPES:
            raise ProtocolError(f"unknown array dtype {dtype_name!r}")
        dtype = _NUMPY_DTYPES[dtype_name]
        shape = _shape(node.get("shape"))
        raw = self._buffer(node.get("b"))
        if len(raw) != math.prod(shape) * dtype.itemsize:
            raise ProtocolError("array buffer size does not match its shape and dtype")
        return np.frombuffer(bytes(raw), dtype=dtype).reshape(shape).copy()


def _decode_origin(node: Any, dtype_name: str) -> TensorOrigin:
    if type(node) is not dict:
        raise ProtocolError("malformed tensor origin")
    grad_fn = node.get("fn")
    if grad_fn is not None:
        grad_fn = _as_str(grad_fn)[:200]
    requires_grad, is_leaf = node.get("rg"), node.get("leaf")
    if type(requires_grad) is not bool or type(is_leaf) is not bool:
        raise ProtocolError("malformed tensor origin")
    return TensorOrigin(requires_grad=requires_grad, grad_fn=grad_fn, is_leaf=is_leaf,
                        device=_as_str(node.get("dev"))[:50], dtype=dtype_name)


def _default_device(name: str) -> str:
    """Keep a tensor on CUDA if this process can use CUDA, else bring it to the CPU."""
    if name.startswith("cuda") and torch.cuda.is_available():
        return name
    return "cpu"


def _as_list(v: Any) -> list:
    if type(v) is not list:
        raise ProtocolError("expected a list")
    return v


def _as_str(v: Any) -> str:
    if type(v) is not str:
        raise ProtocolError("expected a string")
    return v


def _as_int(v: Any) -> int:
    if type(v) is not int:
        raise ProtocolError("expected an integer")
    return v


def _shape(v: Any) -> list[int]:
    shape = _as_list(v)
    if not all(type(d) is int and d >= 0 for d in shape) or len(shape) > 32:
        raise ProtocolError("malformed shape")
    return shape


def pack(message: dict, encoder: Encoder) -> bytes:
    """Serialise a message whose values were already encoded with ``encoder``."""
    header = json.dumps(message, allow_nan=True, separators=(",", ":")).encode()
    return b"".join([_HEADER.pack(len(header)), header, *encoder.buffers])


def unpack(frame: bytes) -> tuple[dict, memoryview]:
    """Split a frame into its JSON header and the buffer blob. Raises ProtocolError."""
    view = memoryview(frame)
    if len(view) < _HEADER.size:
        raise ProtocolError("truncated frame")
    (length,) = _HEADER.unpack(view[: _HEADER.size])
    if length > MAX_HEADER_BYTES:
        raise ProtocolError(f"frame header of {length} bytes (at most {MAX_HEADER_BYTES} allowed)")
    end = _HEADER.size + length
    if end > len(view):
        raise ProtocolError("truncated frame header")
    try:
        header = json.loads(bytes(view[_HEADER.size:end]))
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"malformed frame header: {exc}") from None
    if type(header) is not dict:
        raise ProtocolError("frame header is not an object")
    return header, view[end:]
