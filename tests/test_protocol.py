"""The wire format: values round-trip exactly, and hostile frames are refused, not obeyed."""

import json
import math
import struct

import numpy as np
import pytest
import torch

from autograder import protocol
from autograder.protocol import Decoder, Encoder, ProtocolError, pack, unpack


def roundtrip(value):
    encoder = Encoder()
    frame = pack({"value": encoder.encode(value)}, encoder)
    header, blob = unpack(frame)
    return Decoder(blob).decode(header["value"])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64,
                                   torch.int8, torch.uint8, torch.bool, torch.complex64])
def test_tensors_roundtrip_bit_exact(dtype):
    source = (torch.randn(3, 4, 5) * 100).to(dtype)
    out = roundtrip(source)
    assert out.dtype == dtype and out.shape == source.shape
    assert torch.equal(out.view(torch.uint8) if dtype != torch.bool else out, source.view(torch.uint8) if dtype != torch.bool else source)


def test_special_tensors_and_values_roundtrip():
    values = {
        "scalar": torch.tensor(3.5), "empty": torch.empty(0, 7), "strided": torch.arange(12.0).reshape(3, 4).t(),
        "param": torch.nn.Parameter(torch.ones(2)), "array": np.arange(6, dtype=np.int32).reshape(2, 3),
        "nested": [1, (2.5, "x"), {"k": None, 3: b"\x00\xff"}], "big": 2**80, "nan": float("nan"),
        "inf": -math.inf, "dtype": torch.float16, "device": torch.device("cpu"), "slice": slice(1, None, 2),
        "size": torch.Size([2, 3]), "np_float": np.float64(1.25),
    }
    out = roundtrip(values)
    assert out["scalar"].shape == () and out["scalar"].item() == 3.5
    assert out["empty"].shape == (0, 7)
    assert torch.equal(out["strided"], values["strided"])
    assert type(out["param"]) is torch.Tensor and not out["param"].requires_grad
    assert np.array_equal(out["array"], values["array"]) and out["array"].dtype == np.int32
    assert out["nested"] == [1, (2.5, "x"), {"k": None, 3: b"\x00\xff"}]
    assert out["big"] == 2**80 and math.isnan(out["nan"]) and out["inf"] == -math.inf
    assert out["dtype"] is torch.float16 and out["device"] == torch.device("cpu")
    assert out["slice"] == slice(1, None, 2) and out["size"] == (2, 3)
    assert type(out["np_float"]) is float


def test_subclasses_of_builtins_arrive_as_exact_builtins():
    class Sneaky(str):
        def __eq__(self, other):
            return True

    class SneakyInt(int):
        def __eq__(self, other):
            return True

    out = roundtrip([Sneaky("a"), SneakyInt(3)])
    assert type(out[0]) is str and type(out[1]) is int
    assert out[0] != "b" and out[1] != 4


def test_arbitrary_objects_are_refused_on_the_trusted_side():
    class Anything:
        pass

    with pytest.raises(ProtocolError):
        Encoder().encode(Anything())


def test_worker_side_objects_become_handles():
    made = []
    encoder = Encoder(make_handle=lambda v: made.append(v) or {"t": "handle", "id": 1, "gen": 1, "type": "X",
                                                                 "module": "m", "kind": "object", "callable": False})
    node = encoder.encode([object()])
    assert node["v"][0]["t"] == "handle" and len(made) == 1


def _frame(header: dict, blob: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + blob


@pytest.mark.parametrize("node, blob", [
    ({"t": "pickle", "v": "gASV"}, b""),                                    # unknown tag
    ({"t": "tensor", "dtype": "float32", "shape": [4], "device": "cpu", "b": [0, 8]}, b"\x00" * 8),  # size mismatch
    ({"t": "tensor", "dtype": "float32", "shape": [2], "device": "cpu", "b": [4, 8]}, b"\x00" * 8),  # out of range
    ({"t": "tensor", "dtype": "object", "shape": [1], "device": "cpu", "b": [0, 8]}, b"\x00" * 8),   # bad dtype
    ({"t": "tensor", "dtype": "float32", "shape": [-1], "device": "cpu", "b": [0, 0]}, b""),        # bad shape
    ({"t": "ndarray", "dtype": "|O", "shape": [1], "b": [0, 8]}, b"\x00" * 8),                      # object array
    ({"t": "handle", "id": 1}, b""),                                        # handles need a make_remote
    ({"t": "dict", "v": [[{"t": "list", "v": []}, 1]]}, b""),               # unhashable key
    ({"v": 3}, b""),                                                        # untagged object
])
def test_malformed_values_are_refused(node, blob):
    header, data = unpack(_frame({"value": node}, blob))
    with pytest.raises(ProtocolError):
        Decoder(data).decode(header["value"])


def test_deep_nesting_and_broken_frames_are_refused():
    deep = {"t": "list", "v": []}
    for _ in range(protocol.MAX_DEPTH + 5):
        deep = {"t": "list", "v": [deep]}
    header, data = unpack(_frame({"value": deep}))
    with pytest.raises(ProtocolError):
        Decoder(data).decode(header["value"])
    for frame in (b"", b"\x01", struct.pack("<Q", 100) + b"{}", struct.pack("<Q", 2) + b"[]", struct.pack("<Q", 3) + b"{x}"):
        with pytest.raises(ProtocolError):
            unpack(frame)


@pytest.mark.cuda
def test_cuda_tensors_keep_their_device_and_values():
    source = torch.randn(4, 5, device="cuda")
    out = roundtrip({"x": source})["x"]
    assert out.device.type == "cuda" and torch.equal(out, source)
