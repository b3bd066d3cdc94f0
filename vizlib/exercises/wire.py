"""Values to and from JSON, for the grader's sandboxed processes.

Tensors, arrays, numbers, strings, tuples, lists and dicts cross as plain JSON; anything
else crosses as its type name and a short repr, which never equals an expected value.
JSON (not pickle) because what comes back from a student's process is untrusted: decoding
it can build data, never run code.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["encode", "decode", "Opaque", "MAX_ELEMENTS"]

MAX_ELEMENTS = 1_000_000  # a larger tensor crosses as its shape only


class Opaque:
    """A value that could not cross (an object, a too large tensor): compares unequal to all."""

    def __init__(self, type_name: str, text: str):
        self.type_name, self.text = type_name, text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other) -> bool:
        return False

    __hash__ = object.__hash__


def _number(x: float):
    return x if math.isfinite(x) else {"__float__": repr(x)}


def encode(value: Any, _depth: int = 0) -> Any:
    """``value`` as JSON-able data (see the module docstring)."""
    import numpy as np
    import torch

    if _depth > 20:
        return {"__opaque__": type(value).__name__, "repr": "(nested too deep)"}
    if isinstance(value, (torch.Tensor, np.ndarray)):
        kind = "__tensor__" if isinstance(value, torch.Tensor) else "__ndarray__"
        t = torch.as_tensor(value.detach().cpu() if kind == "__tensor__" else value)
        if t.is_complex() or t.numel() > MAX_ELEMENTS:
            return {"__opaque__": type(value).__name__, "repr": f"tensor of shape {tuple(t.shape)}"}
        dtype = str(t.dtype).replace("torch.", "")
        data = t.reshape(-1).tolist()
        if t.is_floating_point():
            data = [_number(x) for x in data]
        return {kind: dtype, "shape": list(t.shape), "data": data}
    if value is None or isinstance(value, (bool, int, str)):
        return value[:10_000] if isinstance(value, str) else value
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return encode(value.item(), _depth + 1)
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, _depth + 1) for v in value]}
    if isinstance(value, list):
        return [encode(v, _depth + 1) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": [[k, encode(v, _depth + 1)] for k, v in value.items()]}
    try:
        text = repr(value)[:300]
    except Exception:  # noqa: BLE001 - a student's object may fail to print
        text = "(unprintable)"
    return {"__opaque__": type(value).__name__, "repr": text}


def decode(data: Any) -> Any:
    """The value ``encode`` described (tensors as tensors, tuples as tuples)."""
    import torch

    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "__float__" in data:
        return float(data["__float__"])
    for kind in ("__tensor__", "__ndarray__"):
        if kind in data:
            dtype = getattr(torch, str(data[kind]), None)
            if not isinstance(dtype, torch.dtype):
                return Opaque("tensor", f"tensor of unknown dtype {data[kind]!r}")
            flat = [float(v["__float__"]) if isinstance(v, dict) else v for v in data["data"]]
            t = torch.tensor(flat, dtype=dtype).reshape([int(s) for s in data["shape"]])
            return t if kind == "__tensor__" else t.numpy()
    if "__tuple__" in data:
        return tuple(decode(v) for v in data["__tuple__"])
    if "__dict__" in data:
        return {str(k): decode(v) for k, v in data["__dict__"]}
    if "__opaque__" in data:
        return Opaque(str(data["__opaque__"]), str(data.get("repr", ""))[:300])
    return Opaque("dict", "a malformed value")
