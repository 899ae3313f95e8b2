"""Model files: safetensors with the architecture in its metadata. No pickle anywhere.

    nnx.save(model, "xor.safetensors")
    model = nnx.load("xor.safetensors", backend="torch")   # any backend, same predictions

The file is plain safetensors — an 8-byte little-endian header length, a JSON header
naming each tensor's ``dtype``, ``shape`` and ``data_offsets`` plus a ``__metadata__``
dict of strings, then the raw little-endian tensor bytes — so the ``safetensors``
library reads it too. nnx's metadata keys:

``nnx.format``        ``"nnx.model"`` (what makes a safetensors file an nnx model)
``nnx.format_version`` ``"1"``
``nnx.version``       the nnx release that wrote it (informational)
``nnx.architecture``  JSON: the layers (Dense sizes/bias/dtype, activations with their
                      arguments), or a Perceptron
``nnx.sha256``        SHA-256 over the other metadata and every tensor's name, dtype,
                      shape and bytes (independent of the byte layout), so a flipped
                      bit anywhere that matters is detected

Loading only parses JSON and copies bytes: a file can never execute code. A damaged,
truncated or foreign file raises :class:`CheckpointError` (a ``ValueError``) naming
the path and the problem; a path that does not exist raises ``FileNotFoundError``.
Saving is atomic: the bytes go to a temporary file in the same folder, are flushed
and fsynced, and only then renamed over ``path``; a crash before that leaves the
previous file untouched and no temporary file behind.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import struct
import tempfile
from typing import Any

from . import backends as _registry
from .activation_layers import GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Step, Tanh
from .backend import Backend, resolve_backend
from .backends import _host
from .layers import Dense, Layer
from .perceptron import Perceptron
from .sequential import MLP, Sequential

__all__ = ["save", "load", "CheckpointError", "FORMAT", "FORMAT_VERSION"]

FORMAT = "nnx.model"
FORMAT_VERSION = "1"
_CHECKSUM = "nnx.sha256"
_MAX_HEADER = 100 * 1024 * 1024   # the safetensors library's own limit
_MAX_DEPTH = 32                   # nested Sequentials
_DTYPE_CODE = {"float32": "F32", "float64": "F64"}
_SIMPLE = {cls.__name__: cls for cls in (Identity, Step, Sigmoid, Tanh, ReLU, Softmax)}

Model = Sequential | Perceptron


class CheckpointError(ValueError):
    """A model file that cannot be loaded: truncated, corrupted, or not an nnx model."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"cannot load {self.path!r}: {problem}")


# -- the architecture as JSON ------------------------------------------------------------
def _describe(layer: Any, depth: int = 0) -> dict[str, Any]:
    kind = type(layer)
    if kind is Perceptron and depth == 0:
        return {"type": "Perceptron", "n_features": layer.n_features, "lr": layer.lr,
                "dtype": layer.dtype}
    if kind is Dense:
        return {"type": "Dense", "in_features": layer.in_features,
                "out_features": layer.out_features, "bias": layer.b is not None,
                "dtype": layer.dtype}
    if kind is LeakyReLU:
        return {"type": "LeakyReLU", "alpha": layer.alpha}
    if kind is GELU:
        return {"type": "GELU", "approximate": layer.approximate}
    if kind in _SIMPLE.values():
        return {"type": kind.__name__}
    if kind in (Sequential, MLP):
        layers = [_describe(inner, depth + 1) for inner in layer.layers]
        if kind is MLP and all(isinstance(a, str | None) for a in
                               (layer.activation, layer.output_activation)):
            return {"type": "MLP", "sizes": list(layer.sizes), "activation": layer.activation,
                    "output_activation": layer.output_activation, "layers": layers}
        return {"type": "Sequential", "layers": layers}
    raise TypeError(
        f"nnx.save cannot describe {layer!r} ({kind.__name__}): model files hold a Perceptron "
        "or Sequential/MLP networks of Dense and built-in activation layers")


def _check_arch(d: Any, depth: int = 0) -> None:
    """Raise ValueError unless ``d`` is an architecture :func:`_describe` could have made."""
    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ValueError(f"architecture: {what} in {json.dumps(d)[:200]}")

    def pos_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**31

    need(isinstance(d, dict) and isinstance(d.get("type"), str), "expected an object with a 'type'")
    need(depth <= _MAX_DEPTH, f"nested more than {_MAX_DEPTH} deep")
    kind, keys = d["type"], set(d) - {"type"}
    if kind == "Perceptron":
        need(depth == 0 and keys == {"n_features", "lr", "dtype"}, "bad Perceptron fields")
        need(pos_int(d["n_features"]), "n_features must be a positive int")
        need(isinstance(d["lr"], float | int) and math.isfinite(d["lr"]) and d["lr"] > 0,
             "lr must be a positive number")
        need(d["dtype"] in _DTYPE_CODE, "dtype must be float32 or float64")
    elif kind == "Dense":
        need(keys == {"in_features", "out_features", "bias", "dtype"}, "bad Dense fields")
        need(pos_int(d["in_features"]) and pos_int(d["out_features"]), "sizes must be positive")
        need(isinstance(d["bias"], bool), "bias must be true or false")
        need(d["dtype"] in _DTYPE_CODE, "dtype must be float32 or float64")
    elif kind == "LeakyReLU":
        need(keys == {"alpha"} and isinstance(d["alpha"], float | int)
             and not isinstance(d["alpha"], bool) and math.isfinite(d["alpha"]), "bad alpha")
    elif kind == "GELU":
        need(keys == {"approximate"} and d["approximate"] in ("none", "tanh"), "bad approximate")
    elif kind in _SIMPLE:
        need(not keys, f"{kind} takes no fields")
    elif kind in ("Sequential", "MLP"):
        extra = {"sizes", "activation", "output_activation"} if kind == "MLP" else set()
        need(keys == {"layers"} | extra, f"bad {kind} fields")
        need(isinstance(d["layers"], list), "layers must be a list")
        for inner in d["layers"]:
            _check_arch(inner, depth + 1)
        if kind == "MLP":
            need(isinstance(d["sizes"], list) and len(d["sizes"]) >= 2
                 and all(pos_int(s) for s in d["sizes"]), "bad MLP sizes")
            need(all(isinstance(d[k], str | None) for k in ("activation", "output_activation")),
                 "bad MLP activations")
    else:
        need(False, f"unknown layer type {kind!r}")


def _expected(d: dict[str, Any], prefix: str = "") -> dict[str, tuple[str, tuple[int, ...]]]:
    """The tensors ``{name: (dtype code, shape)}`` that architecture ``d`` needs."""
    if d["type"] == "Perceptron":
        code = _DTYPE_CODE[d["dtype"]]
        return {"w": (code, (d["n_features"],)), "b": (code, ())}
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for i, layer in enumerate(d["layers"]):
        if layer["type"] == "Dense":
            code = _DTYPE_CODE[layer["dtype"]]
            out[f"{prefix}{i}.W"] = (code, (layer["out_features"], layer["in_features"]))
            if layer["bias"]:
                out[f"{prefix}{i}.b"] = (code, (layer["out_features"],))
        elif layer["type"] in ("Sequential", "MLP"):
            out.update(_expected(layer, f"{prefix}{i}."))
    return out


def _build(d: dict[str, Any], backend: Backend) -> Any:
    """A zero-weight model (or layer) of architecture ``d`` on ``backend``."""
    kind = d["type"]
    if kind == "Perceptron":
        return Perceptron(d["n_features"], lr=float(d["lr"]), dtype=d["dtype"], backend=backend)
    if kind == "Dense":
        return Dense(d["in_features"], d["out_features"], init="zeros", bias=d["bias"],
                     dtype=d["dtype"], backend=backend)
    if kind == "LeakyReLU":
        return LeakyReLU(alpha=float(d["alpha"]))
    if kind == "GELU":
        return GELU(approximate=d["approximate"])
    if kind in _SIMPLE:
        return _SIMPLE[kind]()
    if kind == "MLP":
        dtypes = [layer["dtype"] for layer in d["layers"] if layer["type"] == "Dense"]
        mlp = MLP(d["sizes"], activation=d["activation"], output_activation=d["output_activation"],
                  init="zeros", dtype=dtypes[0] if dtypes else "float32", backend=backend)
        if [_describe(layer, 1) for layer in mlp.layers] != d["layers"]:
            raise ValueError("architecture: the MLP's settings do not produce its listed layers")
        return mlp
    return Sequential(*[_build(inner, backend) for inner in d["layers"]])


# -- the checksum ----------------------------------------------------------------------------
def _digest(metadata: dict[str, str], tensors: dict[str, tuple[str, tuple[int, ...], Any]]) -> str:
    h = hashlib.sha256()
    meta = {k: v for k, v in metadata.items() if k != _CHECKSUM}
    h.update(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(tensors):
        code, shape, data = tensors[name]
        h.update(json.dumps([name, code, list(shape), len(data)]).encode())
        h.update(data)
    return h.hexdigest()


# -- saving ------------------------------------------------------------------------------------
def _params(model: Model) -> dict[str, Any]:
    return {"w": model.w, "b": model.b} if isinstance(model, Perceptron) else model.parameters()


def save(model: Model, path: str | os.PathLike) -> None:
    """Write ``model`` (a Sequential/MLP or a Perceptron) to ``path`` as safetensors, atomically.

    Raises:
        TypeError: the model holds a layer nnx files cannot describe (a custom Layer).
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    from . import __version__

    arch = _describe(model)
    tensors = {}
    for name, x in _params(model).items():
        tensors[name] = _registry.backend_of(x).to_bytes(x)
    metadata = {"nnx.format": FORMAT, "nnx.format_version": FORMAT_VERSION,
                "nnx.version": __version__,
                "nnx.architecture": json.dumps(arch, separators=(",", ":"))}
    metadata[_CHECKSUM] = _digest(metadata, tensors)
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name, (code, shape, data) in tensors.items():
        header[name] = {"dtype": code, "shape": list(shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)   # pad so the tensor data starts 8-byte aligned
    _write_atomically(path, [struct.pack("<Q", len(head)), head,
                             *(data for _, _, data in tensors.values())])


def _write_atomically(path: str | os.PathLike, chunks: list[bytes]) -> None:
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


# -- loading -----------------------------------------------------------------------------------
def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice")
        out[key] = value
    return out


def _parse(blob: bytes) -> tuple[dict[str, str], dict[str, tuple[str, tuple[int, ...], Any]]]:
    """Split a file into (metadata, {name: (dtype, shape, bytes)}); ValueError if malformed."""
    if len(blob) < 8:
        raise ValueError(f"truncated: {len(blob)} bytes, but a safetensors file starts with an "
                         "8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > min(_MAX_HEADER, len(blob) - 8):
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


def _mismatch(found: dict[str, Any], expected: dict[str, Any]) -> str:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = [f"{k}: {found[k][0]}{list(found[k][1])} instead of {expected[k][0]}"
             f"{list(expected[k][1])}" for k in sorted(set(found) & set(expected))
             if found[k] != expected[k]]
    parts = ([f"missing tensors {missing}"] if missing else []) + (
        [f"unexpected tensors {extra}"] if extra else []) + wrong
    return "the tensors do not match the architecture: " + "; ".join(parts)


def load(path: str | os.PathLike, backend: str | Backend | None = None) -> Model:
    """Read a model written by :func:`save` onto ``backend`` (the active one when None).

    Raises:
        FileNotFoundError: nothing exists at ``path``.
        CheckpointError: the file is truncated, corrupted, or not an nnx model; the
            message names the path and the problem.
    """
    target = resolve_backend(backend)
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "nnx.load: no model file at this path",
                                os.fspath(path)) from None
    try:
        metadata, tensors = _parse(blob)
        if "nnx.format" not in metadata and _CHECKSUM not in metadata:
            raise ValueError("a safetensors file, but not an nnx model (its metadata has no "
                             "'nnx.format')")
        if _CHECKSUM not in metadata:
            raise ValueError(f"the metadata has no {_CHECKSUM!r} checksum")
        if _digest(metadata, tensors) != metadata[_CHECKSUM]:
            raise ValueError("checksum mismatch: the file is corrupted (tensor data or "
                             "metadata changed after saving)")
        if metadata.get("nnx.format") != FORMAT:
            raise ValueError(f"nnx.format is {metadata.get('nnx.format')!r}, not {FORMAT!r}")
        if metadata.get("nnx.format_version") != FORMAT_VERSION:
            raise ValueError(f"format version {metadata.get('nnx.format_version')!r}; this nnx "
                             f"reads version {FORMAT_VERSION}")
        try:
            arch = json.loads(metadata.get("nnx.architecture", ""))
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"nnx.architecture is not valid JSON ({exc})") from None
        _check_arch(arch)
        if arch["type"] not in ("Sequential", "MLP", "Perceptron"):
            raise ValueError(f"architecture: a file holds a model, not a lone {arch['type']}")
        expected = _expected(arch)
        found = {name: (code, shape) for name, (code, shape, _) in tensors.items()}
        if found != expected:
            raise ValueError(_mismatch(found, expected))
        model = _build(arch, target)
    except ValueError as exc:
        raise CheckpointError(path, str(exc)) from None
    arrays = {name: target.from_bytes(data, code, shape)
              for name, (code, shape, data) in tensors.items()}
    if isinstance(model, Perceptron):
        model.set_params(arrays["w"], arrays["b"])
    else:
        for name, x in arrays.items():
            *where, attr = name.split(".")
            layer: Layer = model
            for i in where:
                layer = layer.layers[int(i)]
            setattr(layer, attr, x)
    return model
