"""Host byte conversions for model files: arrays ⇄ little-endian bytes (safetensors dtypes).

The portable core never touches NumPy; saving and loading go through these helpers
(via :meth:`Backend.to_bytes` / :meth:`Backend.from_bytes`), which work on the host
copy every adapter can produce.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DTYPES", "itemsize", "to_le_bytes", "from_le_bytes"]

#: safetensors dtype code → little-endian NumPy dtype. Only these are read or written.
DTYPES: dict[str, str] = {
    "F16": "<f2", "F32": "<f4", "F64": "<f8",
    "I8": "|i1", "I16": "<i2", "I32": "<i4", "I64": "<i8",
    "U8": "|u1", "BOOL": "|b1",
}
_CODE_OF: dict[np.dtype, str] = {np.dtype(v).newbyteorder("="): k for k, v in DTYPES.items()}


def itemsize(code: str) -> int:
    """Bytes per element of safetensors dtype ``code`` (``KeyError`` if unknown)."""
    return np.dtype(DTYPES[code]).itemsize


def to_le_bytes(a: Any) -> tuple[str, tuple[int, ...], bytes]:
    """``(dtype code, shape, raw little-endian C-order bytes)`` of host array ``a``."""
    a = np.asarray(a)
    code = _CODE_OF.get(a.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"dtype {a.dtype} cannot be stored; storable: {', '.join(DTYPES)}")
    le = np.ascontiguousarray(a, dtype=np.dtype(DTYPES[code]))
    return code, tuple(int(d) for d in a.shape), le.tobytes()


def from_le_bytes(buf: bytes | memoryview, code: str, shape: tuple[int, ...]) -> np.ndarray:
    """A native-endian host array of ``shape`` read from little-endian ``buf``."""
    dt = np.dtype(DTYPES[code])
    a = np.frombuffer(buf, dtype=dt).reshape(shape)
    return a.astype(dt.newbyteorder("="), copy=True)
