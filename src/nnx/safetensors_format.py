"""The safetensors container: an 8-byte header length, a JSON header, the tensor bytes.

    blob = pack(metadata, {"0.W": ("F32", (4, 2), raw_bytes), ...})
    write_atomically(path, blob)          # temp file, fsync, rename: all or nothing
    metadata, tensors = read(path, 100)   # ValueError if malformed

The header names each tensor's ``dtype``, ``shape`` and ``data_offsets`` and holds a
``__metadata__`` dict of strings; the tensor bytes follow, little-endian, contiguous and
in offset order. Any safetensors reader reads what :func:`pack` writes.

:func:`read` treats the file as hostile. It opens only a regular file (never a FIFO, a
directory or a device, so it cannot block or read forever), reads the 8-byte length,
refuses a header over :data:`MAX_HEADER` bytes, requires the file's size to be exactly
what the header declares (so appended bytes are refused unread), and only then reads
the file, once. The ``safetensors`` library (its Rust parser) validates the container:
dtypes, shapes against byte spans, contiguous offsets. What the tensors and metadata
*mean* is :mod:`nnx.io`'s business.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import struct
import tempfile
from typing import Any

from .inputs import cut, show

__all__ = ["pack", "read", "write_atomically", "loads", "MAX_HEADER"]

MAX_HEADER = 8 * 1024 * 1024   # bytes of JSON header; a model at the layer cap needs < 5 MB

Tensors = dict[str, tuple[str, tuple[int, ...], Any]]

# Open without blocking (a FIFO) and without taking a terminal; absent flags are 0.
_OPEN_FLAGS = os.O_RDONLY | sum(getattr(os, flag, 0) for flag in
                                ("O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC", "O_BINARY"))


# -- writing -----------------------------------------------------------------------------------
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
    if len(head) > MAX_HEADER:
        raise ValueError(f"the file's header would take {len(head)} bytes; model files "
                         f"hold headers of at most {MAX_HEADER} bytes")
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


# -- reading -----------------------------------------------------------------------------------
def _what(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _open_regular(path: str | os.PathLike) -> tuple[int, int]:
    """``(fd, size)`` of the regular file at ``path``; anything else is refused unopened."""
    try:
        before = os.stat(path)    # follows symlinks: a link to /dev/zero is a device
        if not stat.S_ISREG(before.st_mode):
            raise ValueError(f"{_what(before.st_mode)}, not a regular file")
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "nnx.load: no model file at this path",
                                os.fspath(path)) from None
    except OSError as exc:
        raise ValueError(f"cannot open it ({exc.strerror or type(exc).__name__})") from None
    after = os.stat(fd)
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)   # replaced between the two calls
        raise ValueError("the file changed while it was being opened")
    return fd, after.st_size


def _read(f: Any, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ValueError("the file changed while it was being read")
    return data


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):   # rare: find the key, at Python speed
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(f"holds the key {show(key)} twice")
            seen.add(key)
    return out


def loads(text: bytes | str, what: str) -> Any:
    """Untrusted JSON ``text`` as Python data; ValueError, naming ``what``, if it is not
    UTF-8 JSON, repeats a key, nests too deeply or holds an integer of > 4300 digits."""
    try:
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text,
                          object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise ValueError(f"{what} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON ({exc.msg} at {exc.pos})") from None
    except _DuplicateKey as exc:
        raise ValueError(f"{what} {exc}") from None
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply") from None
    except ValueError:   # Python reads integers of at most 4300 digits
        raise ValueError(f"{what} holds an integer too long to read") from None


def _data_size(header: dict[str, Any], limit: int) -> int:
    """The bytes of tensor data ``header`` declares: the largest end of its data_offsets."""
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        span = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(span, list) and len(span) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= limit
                for v in span) and span[0] <= span[1]):
            raise ValueError(f"tensor {show(name, 40)}: data_offsets must be two ints "
                             f"0 <= begin <= end <= {limit} (the bytes in the file)")
        end = max(end, span[1])
    return end


def read(path: str | os.PathLike, max_tensors: int) -> tuple[dict[str, str], Tensors]:
    """``(metadata, {name: (dtype, shape, bytes)})`` of the safetensors file at ``path``,
    which may hold at most ``max_tensors`` tensors.

    Raises:
        FileNotFoundError: nothing exists at ``path`` (or a symlink points nowhere).
        ValueError: not a regular file, or not a well-formed safetensors file.
    """
    import safetensors  # the container parser (Rust); imported on first load

    fd, size = _open_regular(path)
    with open(fd, "rb", buffering=0) as f:
        if size < 8:
            raise ValueError(f"truncated: {size} bytes, but a safetensors file starts with "
                             "an 8-byte header length")
        (n,) = struct.unpack("<Q", _read(f, 8))
        if n > MAX_HEADER:
            raise ValueError(f"the header claims {n} bytes; model files hold headers of at "
                             f"most {MAX_HEADER} bytes (not an nnx model)")
        if n > size - 8:
            raise ValueError(f"the header claims {n} bytes but the file has only {size - 8} "
                             "after the length field (truncated, or not a safetensors file)")
        header = loads(_read(f, n), "the header")
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object (not a safetensors file)")
        if len(header) > max_tensors + 1:
            raise ValueError(f"the header lists {len(header) - 1} tensors; model files hold "
                             f"at most {max_tensors}")
        metadata = header.get("__metadata__", {})
        if not isinstance(metadata, dict) or not all(
                isinstance(v, str) for v in metadata.values()):
            raise ValueError("__metadata__ must map strings to strings")
        data = _data_size(header, size)
        if 8 + n + data != size:
            raise ValueError(f"the header declares {data} bytes of tensor data but the file "
                             f"holds {size - 8 - n} after the header (truncated or padded)")
        f.seek(0)
        blob = _read(f, size)   # the whole file, now that its size is what the header says
    try:
        entries = safetensors.deserialize(blob)
    except safetensors.SafetensorError as exc:
        raise ValueError(f"not a valid safetensors file ({cut(str(exc), 160)})") from None
    del blob   # the tensors' bytes are copies: the file's bytes go now
    tensors = {name: (info["dtype"], tuple(info["shape"]), info["data"])
               for name, info in entries}
    if tensors.keys() != header.keys() - {"__metadata__"}:
        raise ValueError("the header lists its tensors ambiguously")
    return metadata, tensors
