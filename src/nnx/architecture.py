"""A network's architecture as plain JSON data, and the network rebuilt from it.

    arch = describe(model)         # {"type": "MLP", "sizes": [2, 4, 1], ..., "layers": [...]}
    check(arch)                    # ValueError unless describe() could have made it
    expected_tensors(arch)         # {"0.W": ("F32", (4, 2)), "0.b": ("F32", (4,)), ...}
    model = build(arch, backend)   # the same network with zero weights

Model files (:mod:`nnx.io`) keep it in their metadata and Dask workers
(:mod:`nnx.distributed.dask_predict`) rebuild a model from it. Only the layers nnx
defines can be described: Dense, the built-in activations, Sequential/MLP, Perceptron.
Architectures read from files are untrusted: :func:`check` validates the type and
range of every field before anything else reads them.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .activation_layers import GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Step, Tanh
from .backend import Backend
from .layers import Dense
from .perceptron import Perceptron
from .sequential import MLP, Sequential

__all__ = ["describe", "check", "expected_tensors", "build", "DTYPE_CODE", "MAX_DEPTH"]

MAX_DEPTH = 32                   # nested Sequentials
DTYPE_CODE = {"float32": "F32", "float64": "F64"}
_SIMPLE = {cls.__name__: cls for cls in (Identity, Step, Sigmoid, Tanh, ReLU, Softmax)}


def describe(layer: Any, depth: int = 0) -> dict[str, Any]:
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
        layers = [describe(inner, depth + 1) for inner in layer.layers]
        if kind is MLP and all(isinstance(a, str | None) for a in
                               (layer.activation, layer.output_activation)):
            return {"type": "MLP", "sizes": list(layer.sizes), "activation": layer.activation,
                    "output_activation": layer.output_activation, "layers": layers}
        return {"type": "Sequential", "layers": layers}
    raise TypeError(
        f"nnx.save cannot describe {layer!r} ({kind.__name__}): model files hold a Perceptron "
        "or Sequential/MLP networks of Dense and built-in activation layers")


def check(d: Any, depth: int = 0) -> None:
    """Raise ValueError unless ``d`` is an architecture :func:`describe` could have made."""
    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ValueError(f"architecture: {what} in {json.dumps(d)[:200]}")

    def pos_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**31

    need(isinstance(d, dict) and isinstance(d.get("type"), str), "expected an object with a 'type'")
    need(depth <= MAX_DEPTH, f"nested more than {MAX_DEPTH} deep")
    kind, keys = d["type"], set(d) - {"type"}
    if kind == "Perceptron":
        need(depth == 0 and keys == {"n_features", "lr", "dtype"}, "bad Perceptron fields")
        need(pos_int(d["n_features"]), "n_features must be a positive int")
        need(isinstance(d["lr"], float | int) and math.isfinite(d["lr"]) and d["lr"] > 0,
             "lr must be a positive number")
        need(d["dtype"] in DTYPE_CODE, "dtype must be float32 or float64")
    elif kind == "Dense":
        need(keys == {"in_features", "out_features", "bias", "dtype"}, "bad Dense fields")
        need(pos_int(d["in_features"]) and pos_int(d["out_features"]), "sizes must be positive")
        need(isinstance(d["bias"], bool), "bias must be true or false")
        need(d["dtype"] in DTYPE_CODE, "dtype must be float32 or float64")
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
            check(inner, depth + 1)
        if kind == "MLP":
            need(isinstance(d["sizes"], list) and len(d["sizes"]) >= 2
                 and all(pos_int(s) for s in d["sizes"]), "bad MLP sizes")
            need(all(isinstance(d[k], str | None) for k in ("activation", "output_activation")),
                 "bad MLP activations")
    else:
        need(False, f"unknown layer type {kind!r}")


def expected_tensors(d: dict[str, Any], prefix: str = "") -> dict[str, tuple[str, tuple[int, ...]]]:
    """The tensors ``{name: (dtype code, shape)}`` that architecture ``d`` needs."""
    if d["type"] == "Perceptron":
        code = DTYPE_CODE[d["dtype"]]
        return {"w": (code, (d["n_features"],)), "b": (code, ())}
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for i, layer in enumerate(d["layers"]):
        if layer["type"] == "Dense":
            code = DTYPE_CODE[layer["dtype"]]
            out[f"{prefix}{i}.W"] = (code, (layer["out_features"], layer["in_features"]))
            if layer["bias"]:
                out[f"{prefix}{i}.b"] = (code, (layer["out_features"],))
        elif layer["type"] in ("Sequential", "MLP"):
            out.update(expected_tensors(layer, f"{prefix}{i}."))
    return out


def build(d: dict[str, Any], backend: Backend) -> Any:
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
        if [describe(layer, 1) for layer in mlp.layers] != d["layers"]:
            raise ValueError("architecture: the MLP's settings do not produce its listed layers")
        return mlp
    return Sequential(*[build(inner, backend) for inner in d["layers"]])
