"""Model files: safetensors with the architecture in its metadata. No pickle anywhere.

    nnx.save(model, "xor.safetensors")
    model = nnx.load("xor.safetensors", backend="torch")   # any backend, same predictions

The file is plain safetensors (:mod:`nnx.safetensors_format`), so the ``safetensors``
library reads it too; the architecture is JSON (:mod:`nnx.architecture`). nnx's
metadata keys:

``nnx.format``        ``"nnx.model"`` (what makes a safetensors file an nnx model)
``nnx.format_version`` ``"1"``
``nnx.version``       the nnx release that wrote it (informational)
``nnx.architecture``  JSON: the layers (Dense sizes/bias/dtype, activations with their
                      arguments), or a Perceptron
``nnx.sha256``        SHA-256 over the other metadata and every tensor's name, dtype,
                      shape and bytes (independent of the byte layout), so a flipped
                      bit anywhere that matters is detected

Loading only parses JSON and copies bytes: a file can never execute code. A damaged,
truncated, foreign or special file (a FIFO, a directory, a device) raises
:class:`CheckpointError` (a ``ValueError``) naming the path and the problem; a path
that does not exist raises ``FileNotFoundError``. The file is untrusted input: the
container is parsed by the ``safetensors`` library, the header bounded, the metadata
type-checked and bounded (:func:`nnx.architecture.check`), and every tensor compared
with the architecture before any layer is built.
Saving is atomic: the bytes go to a temporary file in the same folder, are flushed
and fsynced, and only then renamed over ``path``; a crash before that leaves the
previous file untouched and no temporary file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from . import architecture as _architecture
from . import backends as _registry
from . import safetensors_format as _container
from ._version import __version__
from .backend import Backend, resolve_backend
from .inputs import cut, show
from .layers import Layer
from .perceptron import Perceptron
from .sequential import Sequential

__all__ = ["save", "load", "CheckpointError", "FORMAT", "FORMAT_VERSION"]

FORMAT = "nnx.model"
FORMAT_VERSION = "1"
_CHECKSUM = "nnx.sha256"

Model = Sequential | Perceptron


class CheckpointError(ValueError):
    """A model file that cannot be loaded: truncated, corrupted, or not an nnx model."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"cannot load {self.path!r}: {cut(problem, 1000)}")


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
        ValueError: the model is beyond what :func:`load` reads back (more than
            ``nnx.architecture.MAX_LAYERS`` layers, a non-finite ``lr`` or ``alpha``).
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    arch = _architecture.describe(model)
    try:
        _architecture.check(arch)    # what load would refuse is not written
    except ValueError as exc:
        raise ValueError(f"nnx.save: this model could not be loaded back: {exc}") from None
    tensors = {}
    for name, x in _params(model).items():
        tensors[name] = _registry.backend_of(x).to_bytes(x)
    metadata = {"nnx.format": FORMAT, "nnx.format_version": FORMAT_VERSION,
                "nnx.version": __version__,
                "nnx.architecture": json.dumps(arch, separators=(",", ":"))}
    metadata[_CHECKSUM] = _digest(metadata, tensors)
    _container.write_atomically(path, _container.pack(metadata, tensors))


# -- loading -----------------------------------------------------------------------------------
def _listing(names: list[str]) -> str:
    shown = ", ".join(show(n, 30) for n in names[:3])
    return f"[{shown}{f', ... ({len(names)} in all)' if len(names) > 3 else ''}]"


def _spec(spec: tuple[str, tuple[int, ...]]) -> str:
    code, shape = spec
    return cut(f"{cut(code, 10)}{list(shape)}", 40)


def _mismatch(found: dict[str, Any], expected: dict[str, Any]) -> str:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = [f"{show(k, 30)}: {_spec(found[k])} instead of {_spec(expected[k])}"
             for k in sorted(set(found) & set(expected)) if found[k] != expected[k]]
    parts = ([f"missing tensors {_listing(missing)}"] if missing else []) + (
        [f"unexpected tensors {_listing(extra)}"] if extra else []) + wrong[:2]
    return "the tensors do not match the architecture: " + "; ".join(parts)


def _architecture_of(metadata: dict[str, str], tensors: _container.Tensors) -> dict[str, Any]:
    """The file's architecture, once checksum, format and every tensor shape agree with it."""
    if "nnx.format" not in metadata and _CHECKSUM not in metadata:
        raise ValueError("a safetensors file, but not an nnx model (its metadata has no "
                         "'nnx.format')")
    if _CHECKSUM not in metadata:
        raise ValueError(f"the metadata has no {_CHECKSUM!r} checksum")
    if _digest(metadata, tensors) != metadata[_CHECKSUM]:
        raise ValueError("checksum mismatch: the file is corrupted (tensor data or "
                         "metadata changed after saving)")
    if metadata.get("nnx.format") != FORMAT:
        raise ValueError(f"nnx.format is {show(metadata.get('nnx.format'))}, "
                         f"not {FORMAT!r}")
    if metadata.get("nnx.format_version") != FORMAT_VERSION:
        raise ValueError(f"format version {show(metadata.get('nnx.format_version'))}"
                         f"; this nnx reads version {FORMAT_VERSION}")
    arch = _container.loads(metadata.get("nnx.architecture", ""), "nnx.architecture")
    _architecture.check(arch)
    if arch["type"] not in ("Sequential", "MLP", "Perceptron"):
        raise ValueError(f"architecture: a file holds a model, not a lone {arch['type']}")
    expected = _architecture.expected_tensors(arch)
    found = {name: (code, shape) for name, (code, shape, _) in tensors.items()}
    if found != expected:
        raise ValueError(_mismatch(found, expected))
    return arch


def load(path: str | os.PathLike, backend: str | Backend | None = None) -> Model:
    """Read a model written by :func:`save` onto ``backend`` (the active one when None).

    Only a regular file is opened; its header (at most ``MAX_HEADER`` bytes) is read
    first, and the rest only when the file's size is what the header declares. Every
    tensor's dtype and shape is compared with the architecture before any layer is built.

    Raises:
        FileNotFoundError: nothing exists at ``path``.
        CheckpointError: the file is truncated, corrupted, not an nnx model, or not a
            regular file; the message names the path and the problem.
        TypeError: ``path`` is not a str, bytes or path-like object.
    """
    os.fspath(path)   # TypeError for anything that is not a path
    target = resolve_backend(backend)
    try:
        metadata, tensors = _container.read(path, 2 * _architecture.MAX_LAYERS)  # W and b
        model = _architecture.build(_architecture_of(metadata, tensors), target)
    except ValueError as exc:
        raise CheckpointError(path, str(exc)) from None

    def array(name: str) -> Any:   # one tensor at a time: the file's copy is freed once used
        code, shape, data = tensors.pop(name)
        return target.from_bytes(data, code, shape)

    if isinstance(model, Perceptron):
        model.set_params(array("w"), array("b"))
        return model
    for name in list(tensors):
        *where, attr = name.split(".")
        layer: Layer = model
        for i in where:
            layer = layer.layers[int(i)]
        setattr(layer, attr, array(name))
    return model
