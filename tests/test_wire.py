"""The wire format decodes hostile frames into clear errors, never into code execution."""

from __future__ import annotations

import pickle
import struct

import pytest
import torch

from grader.harness.wire import MAGIC, PREFIX, FrameDecoder, WireError, encode_frame, pack_value, unpack_value


def roundtrip(value):
    packed, payload = pack_value(value)
    frames = list(FrameDecoder().feed(encode_frame({"value": packed}, payload)))
    assert len(frames) == 1
    header, body = frames[0]
    return unpack_value(header["value"], body)


def test_nested_values_with_tensors_survive_the_trip():
    value = {"a": [torch.arange(6).view(2, 3), 1.5, "x", None, True], "b": (torch.ones(2, dtype=torch.bfloat16),)}
    back = roundtrip(value)
    assert torch.equal(back["a"][0], torch.arange(6).view(2, 3))
    assert back["a"][1:] == [1.5, "x", None, True]
    assert back["b"][0].dtype == torch.bfloat16


def test_non_finite_floats_are_kept_as_such():
    back = roundtrip([float("nan"), float("inf")])
    assert back[0] != back[0] and back[1] == float("inf")


def test_tensor_subclasses_become_plain_tensors():
    class Liar(torch.Tensor):
        def __eq__(self, other):  # noqa: D105 - the attack: "I equal everything"
            return True

    back = roundtrip(torch.zeros(3).as_subclass(Liar))
    assert type(back) is torch.Tensor


def test_frames_split_across_reads_are_reassembled():
    data = encode_frame({"id": 1}, b"") + encode_frame({"id": 2}, b"")
    decoder = FrameDecoder()
    frames = []
    for i in range(len(data)):
        frames += list(decoder.feed(data[i : i + 1]))
    assert [h["id"] for h, _ in frames] == [1, 2]


@pytest.mark.parametrize("data, message", [
    (b"garbage that is not a frame at all", "frame marker"),
    (PREFIX.pack(MAGIC, 2**31, 0), "exceeds the size limit"),
    (PREFIX.pack(MAGIC, 10, 2**40), "exceeds the size limit"),
    (PREFIX.pack(MAGIC, 5, 0) + b"{oops", "not JSON"),
    (PREFIX.pack(MAGIC, 2, 0) + b"[]", "not a JSON object"),
])
def test_hostile_frames_raise_wire_errors(data, message):
    with pytest.raises(WireError, match=message):
        list(FrameDecoder().feed(data))


@pytest.mark.parametrize("packed, payload, message", [
    ({"$t": "t9"}, b"", "not in the payload"),
    ({"$f": "__import__('os')"}, b"", "bad special float"),
    ({"$evil": 1}, b"", "reserved key"),
    (1, pickle.dumps({"a": 1}), "not valid safetensors"),
    (1, struct.pack("<Q", 2**60) + b"{}", "not valid safetensors"),
])
def test_hostile_values_raise_wire_errors(packed, payload, message):
    with pytest.raises(WireError, match=message):
        unpack_value(packed, payload)


def test_deeply_nested_values_are_refused():
    value = []
    for _ in range(50):
        value = [value]
    with pytest.raises(WireError, match="nested too deeply"):
        unpack_value(value, b"")
    with pytest.raises(WireError, match="nested too deeply"):
        pack_value(value)


def test_python_objects_cannot_be_sent():
    with pytest.raises(WireError, match="cannot be sent"):
        pack_value(object())
