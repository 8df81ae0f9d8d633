"""The wire format between the grader and the harness in the sandbox.

A frame is  MAGIC | header length (u32) | payload length (u64) | header (JSON) | payload (safetensors).
Values are plain JSON in which a tensor appears as {"$t": "<key in the payload>"}; tensors travel as
safetensors, never pickle. The same code decodes on both sides, so it treats every frame as hostile:
lengths are capped before anything is buffered and the JSON nesting is bounded.

This module must import only the standard library, torch and safetensors: it runs inside the sandbox.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from typing import Any

MAGIC = b"DDG1"
PREFIX = struct.Struct(">4sIQ")
MAX_HEADER_BYTES = 4 * 2**20
MAX_PAYLOAD_BYTES = 512 * 2**20
MAX_DEPTH = 12
MAX_ITEMS = 10_000


class WireError(ValueError):
    """A frame or value that breaks the format."""


class FrameTooLarge(WireError):
    """A frame whose declared length is over the limit: refused before anything is buffered."""


def encode_frame(header: dict[str, Any], payload: bytes = b"") -> bytes:
    head = json.dumps(header, allow_nan=True, separators=(",", ":")).encode()
    return PREFIX.pack(MAGIC, len(head), len(payload)) + head + payload


class FrameDecoder:
    """Feed bytes as they arrive; take out complete frames. Rejects a bad prefix before buffering."""

    def __init__(self, max_header: int = MAX_HEADER_BYTES, max_payload: int = MAX_PAYLOAD_BYTES):
        self.buffer = bytearray()
        self.max_header = max_header
        self.max_payload = max_payload

    def feed(self, data: bytes) -> Iterator[tuple[dict[str, Any], bytes]]:
        self.buffer += data
        while len(self.buffer) >= PREFIX.size:
            magic, head_len, payload_len = PREFIX.unpack_from(self.buffer)
            if magic != MAGIC:
                raise WireError("the protocol stream does not start with a frame marker")
            if head_len > self.max_header or payload_len > self.max_payload:
                raise FrameTooLarge(f"a frame of {head_len} + {payload_len} bytes exceeds the size limit")
            end = PREFIX.size + head_len + payload_len
            if len(self.buffer) < end:
                return
            head = bytes(self.buffer[PREFIX.size : PREFIX.size + head_len])
            payload = bytes(self.buffer[PREFIX.size + head_len : end])
            del self.buffer[:end]
            try:
                header = json.loads(head)
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                raise WireError(f"a frame header is not JSON: {exc}") from None
            if not isinstance(header, dict):
                raise WireError("a frame header is not a JSON object")
            yield header, payload


def pack_value(value: Any) -> tuple[Any, bytes]:
    """Turn a result (tensors, arrays, numbers, strings, lists, tuples, dicts) into JSON + payload."""
    import numpy as np
    import torch
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}

    def walk(v: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise WireError("the value is nested too deeply")
        if isinstance(v, torch.Tensor):
            t = v.detach().to("cpu").as_subclass(torch.Tensor).contiguous().clone()
            key = f"t{len(tensors)}"
            tensors[key] = t
            return {"$t": key}
        if isinstance(v, np.ndarray):
            if v.dtype == object:
                raise WireError("a numpy array of Python objects cannot be sent; use a numeric dtype")
            return walk(torch.from_numpy(np.ascontiguousarray(v)), depth)
        if isinstance(v, np.generic):
            return walk(v.item(), depth)
        if v is None or isinstance(v, (bool, int, str, float)):
            return _pack_scalar(v)
        if isinstance(v, (list, tuple, dict)):
            return _pack_container(v, lambda x: walk(x, depth + 1))
        raise WireError(f"a value of type {type(v).__name__} cannot be sent (use tensors, numbers, lists, dicts)")

    packed = walk(value, 0)
    return packed, (save(tensors) if tensors else b"")


def _pack_scalar(v: None | bool | int | str | float) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else {"$f": repr(v)}
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**63:
        raise WireError("an integer is too large to send")
    return v


def _pack_container(v: list | tuple | dict, walk: Any) -> Any:
    if len(v) > MAX_ITEMS:
        raise WireError(f"a {'dict' if isinstance(v, dict) else 'list'} is too {'large' if isinstance(v, dict) else 'long'} to send")
    if not isinstance(v, dict):
        return [walk(x) for x in v]
    out = {}
    for k, x in v.items():
        if not isinstance(k, str) or k.startswith("$"):
            raise WireError("dict keys must be strings that do not start with '$'")
        out[k] = walk(x)
    return out


def unpack_value(packed: Any, payload: bytes) -> Any:
    """The inverse of pack_value, for a frame from the other side; tensors come back as CPU tensors."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        tensors: dict[str, torch.Tensor] = load(payload) if payload else {}
    except (SafetensorError, ValueError, RuntimeError, OverflowError) as exc:
        raise WireError(f"the tensor payload is not valid safetensors: {exc}") from None
    used: set[str] = set()
    count = 0

    def walk(v: Any, depth: int) -> Any:
        nonlocal count
        count += 1
        if depth > MAX_DEPTH or count > 10 * MAX_ITEMS:
            raise WireError("the value is nested too deeply or has too many items")
        if isinstance(v, dict):
            if set(v) == {"$t"}:
                key = v["$t"]
                if not isinstance(key, str) or key not in tensors:
                    raise WireError("a value refers to a tensor that is not in the payload")
                used.add(key)
                return tensors[key]
            if set(v) == {"$f"}:
                if v["$f"] not in ("nan", "inf", "-inf"):
                    raise WireError("a bad special float")
                return float(v["$f"])
            if any(not isinstance(k, str) or k.startswith("$") for k in v):
                raise WireError("a value has a reserved key")
            return {k: walk(x, depth + 1) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, depth + 1) for x in v]
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        raise WireError("a value of an unexpected JSON type")

    return walk(packed, 0)
