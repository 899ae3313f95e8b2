"""The safetensors container: an 8-byte header length, a JSON header, the tensor bytes.

    blob = pack(metadata, {"0.W": ("F32", (4, 2), raw_bytes), ...})
    write_atomically(path, blob)          # temp file, fsync, rename: all or nothing
    metadata, tensors = parse(blob)       # ValueError if malformed

The header names each tensor's ``dtype``, ``shape`` and ``data_offsets`` and holds a
``__metadata__`` dict of strings; the tensor bytes follow, little-endian, contiguous and
in offset order. Any safetensors reader reads what :func:`pack` writes. :func:`parse`
treats its input as hostile: every field is type-checked, every size is compared with
the bytes present, and the header is bounded by the safetensors library's own limit.
What the tensors and metadata *mean* is :mod:`nnx.io`'s business.
"""

from __future__ import annotations

import errno
import json
import math
import os
import struct
import tempfile
from typing import Any

from .backends import _host

__all__ = ["pack", "parse", "write_atomically", "MAX_HEADER"]

MAX_HEADER = 100 * 1024 * 1024   # the safetensors library's own limit

Tensors = dict[str, tuple[str, tuple[int, ...], Any]]


def pack(metadata: dict[str, str], tensors: Tensors) -> list[bytes]:
    """The file's bytes, in chunks: length, header (padded to 8 bytes), each tensor's data."""
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name, (code, shape, data) in tensors.items():
        header[name] = {"dtype": code, "shape": list(shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)   # pad so the tensor data starts 8-byte aligned
    return [struct.pack("<Q", len(head)), head, *(data for _, _, data in tensors.values())]


def write_atomically(path: str | os.PathLike, chunks: list[bytes]) -> None:
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, "nnx.save: the folder does not exist", folder)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                _write_chunk(f, chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable (POSIX); not possible everywhere
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _write_chunk(f: Any, chunk: bytes) -> None:
    f.write(chunk)


def _file_mode(path: str) -> int:
    try:
        return os.stat(path).st_mode & 0o777    # keep the mode of the file being replaced
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice")
        out[key] = value
    return out


def parse(blob: bytes) -> tuple[dict[str, str], dict[str, tuple[str, tuple[int, ...], Any]]]:
    """Split a file into (metadata, {name: (dtype, shape, bytes)}); ValueError if malformed."""
    if len(blob) < 8:
        raise ValueError(f"truncated: {len(blob)} bytes, but a safetensors file starts with an "
                         "8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > min(MAX_HEADER, len(blob) - 8):
        raise ValueError(f"the header claims {n} bytes but the file has only {len(blob) - 8} "
                         "after the length field (truncated, or not a safetensors file)")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError("__metadata__ must map strings to strings")
    payload = memoryview(blob)[8 + n:]
    spans, tensors = [], {}
    for name, info in header.items():
        if not (isinstance(info, dict) and set(info) == {"dtype", "shape", "data_offsets"}):
            raise ValueError(f"tensor {name!r}: expected dtype, shape and data_offsets")
        code, shape, span = info["dtype"], info["shape"], info["data_offsets"]
        if code not in _host.DTYPES:
            raise ValueError(f"tensor {name!r}: unknown dtype {code!r}")
        ints = [*shape, *span] if isinstance(shape, list) and isinstance(span, list) else None
        if ints is None or len(span) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints):
            raise ValueError(f"tensor {name!r}: shape and data_offsets must be non-negative ints")
        size = math.prod(shape) * _host.itemsize(code)
        if span[1] - span[0] != size:
            raise ValueError(f"tensor {name!r}: {code}{shape} needs {size} bytes but its "
                             f"data_offsets {span} span {span[1] - span[0]}")
        spans.append((span[0], span[1], name))
        tensors[name] = (code, tuple(shape), payload[span[0]:span[1]])
    end = 0
    for begin, stop, name in sorted(spans):
        if begin != end:
            raise ValueError(f"tensor {name!r}: data starts at byte {begin}, expected {end} "
                             "(offsets must be contiguous)")
        end = stop
    if end != len(payload):
        raise ValueError(f"the tensors need {end} bytes of data but the file holds "
                         f"{len(payload)} (truncated or padded)")
    return metadata, tensors
