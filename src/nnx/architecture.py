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

import math
import warnings
from typing import Any

from .activation_layers import (
    ACTIVATION_LAYERS,
    GELU,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Step,
    Tanh,
)
from .backend import Backend
from .inputs import cut, show
from .layers import Dense
from .perceptron import Perceptron
from .precision import COMPUTE_DTYPES
from .sequential import MLP, Sequential

__all__ = ["describe", "check", "expected_tensors", "build", "DTYPE_CODE", "MAX_DEPTH",
           "MAX_LAYERS", "MAX_WIDTH"]

MAX_DEPTH = 32                   # nested Sequentials
MAX_LAYERS = 10_000              # layers in all: Dense, activations, nested Sequentials
MAX_WIDTH = 2**31 - 1            # in_features, out_features, n_features
DTYPE_CODE = {"float32": "F32", "float64": "F64"}
_SIMPLE = {cls.__name__: cls for cls in (Identity, Step, Sigmoid, Tanh, ReLU, Softmax)}
_ACTIVATION_NAMES = frozenset([*ACTIVATION_LAYERS, "gelu_tanh"])


def describe(layer: Any, depth: int = 0) -> dict[str, Any]:
    kind = type(layer)
    if kind is Perceptron and depth == 0:
        return {"type": "Perceptron", "n_features": layer.n_features, "lr": layer.lr,
                "dtype": layer.dtype}
    if kind is Dense:
        d = {"type": "Dense", "in_features": layer.in_features,
             "out_features": layer.out_features, "bias": layer.b is not None,
             "dtype": layer.dtype}
        if layer.compute_dtype is not None:    # the precision policy (nnx.precision)
            d["compute_dtype"] = layer.compute_dtype
        return d
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


def _number(v: Any) -> float | None:
    """``v`` as a float if it is a finite real number (an int within ±2**53); else None."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None                    # JSON true is not 1.0
    if isinstance(v, int):
        return float(v) if abs(v) <= 2**53 else None   # bounded before float(): no overflow
    return v if math.isfinite(v) else None


def _size(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_WIDTH


def _dtype(v: Any) -> bool:
    return isinstance(v, str) and v in DTYPE_CODE


def check(d: Any, depth: int = 0, budget: list[int] | None = None) -> None:
    """Raise ValueError unless ``d`` is an architecture :func:`describe` could have made.

    ``d`` is untrusted (read from a file): every type is checked before it is used, every
    number bounded before arithmetic, at most :data:`MAX_LAYERS` layers in all.
    """
    budget = [MAX_LAYERS] if budget is None else budget

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ValueError(f"architecture: {what} in {_excerpt(d)}")

    need(isinstance(d, dict) and isinstance(d.get("type"), str), "expected an object with a 'type'")
    need(depth <= MAX_DEPTH, f"nested more than {MAX_DEPTH} deep")
    budget[0] -= depth > 0   # the model itself is not one of its layers
    need(budget[0] >= 0, f"more than {MAX_LAYERS} layers (the most a model file holds)")
    kind, keys = d["type"], set(d) - {"type"}
    if kind == "Perceptron":
        need(depth == 0 and keys == {"n_features", "lr", "dtype"}, "bad Perceptron fields")
        need(_size(d["n_features"]), f"n_features must be an int in [1, {MAX_WIDTH}]")
        lr = _number(d["lr"])
        need(lr is not None and lr > 0, "lr must be a positive finite number")
        need(_dtype(d["dtype"]), "dtype must be float32 or float64")
    elif kind == "Dense":
        need(keys in ({"in_features", "out_features", "bias", "dtype"},
                      {"in_features", "out_features", "bias", "dtype", "compute_dtype"}),
             "bad Dense fields")
        need(_size(d["in_features"]) and _size(d["out_features"]),
             f"in_features and out_features must be ints in [1, {MAX_WIDTH}]")
        need(isinstance(d["bias"], bool), "bias must be true or false")
        need(_dtype(d["dtype"]), "dtype must be float32 or float64")
        low = d.get("compute_dtype")
        need("compute_dtype" not in d or isinstance(low, str) and low in COMPUTE_DTYPES
             and d["dtype"] == "float32",
             "compute_dtype must be bfloat16 or float16, with dtype float32")
    elif kind == "LeakyReLU":
        need(keys == {"alpha"} and _number(d["alpha"]) is not None,
             "alpha must be a finite number")
    elif kind == "GELU":
        need(keys == {"approximate"} and isinstance(d["approximate"], str)
             and d["approximate"] in ("none", "tanh"), "approximate must be 'none' or 'tanh'")
    elif kind in _SIMPLE:
        need(not keys, f"{kind} takes no fields")
    elif kind in ("Sequential", "MLP"):
        extra = {"sizes", "activation", "output_activation"} if kind == "MLP" else set()
        need(keys == {"layers"} | extra, f"bad {kind} fields")
        need(isinstance(d["layers"], list) and len(d["layers"]) <= budget[0],
             f"layers must be a list of at most {MAX_LAYERS} layers in all")
        for inner in d["layers"]:
            check(inner, depth + 1, budget)
        if kind == "MLP":
            _check_mlp(d, need)
    else:
        need(False, f"unknown layer type {show(kind, 30)}")


def _check_mlp(d: dict[str, Any], need: Any) -> None:
    """An MLP's settings agree with its listed Dense layers (checked before building it)."""
    need(all(v is None or isinstance(v, str) and v in _ACTIVATION_NAMES
             for v in (d["activation"], d["output_activation"])),
         f"activation and output_activation must be null or one of {sorted(_ACTIVATION_NAMES)}")
    sizes, dense = d["sizes"], [layer for layer in d["layers"] if layer["type"] == "Dense"]
    need(isinstance(sizes, list) and len(sizes) == len(dense) + 1 >= 2
         and all(_size(s) for s in sizes), "sizes must list one width more than the Dense layers")
    need(all((layer["in_features"], layer["out_features"]) == (n_in, n_out)
             for layer, n_in, n_out in zip(dense, sizes, sizes[1:])),
         "the Dense layers do not have the widths in sizes")
    need(len({layer["dtype"] for layer in dense}) == 1, "an MLP's Dense layers share one dtype")
    need(len({layer.get("compute_dtype") for layer in dense}) == 1,
         "an MLP's Dense layers share one compute_dtype")


def _excerpt(d: Any) -> str:
    """``d`` shown one level deep, each value cut short: no huge number, string or list."""
    if isinstance(d, dict):
        items = ", ".join(f"{_brief(k)}: {_brief(v)}" for k, v in list(d.items())[:8])
        return cut(f"{{{items}{', ...' if len(d) > 8 else ''}}}", 200)
    return _brief(d)


def _brief(v: Any) -> str:
    if isinstance(v, dict):
        return "{...}" if v else "{}"
    if isinstance(v, list):
        return f"[{len(v)} items]" if v else "[]"
    return show(v, 30)


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
                     dtype=d["dtype"], backend=backend,
                     compute_dtype=_usable(d.get("compute_dtype"), backend))
    if kind == "LeakyReLU":
        return LeakyReLU(alpha=float(d["alpha"]))
    if kind == "GELU":
        return GELU(approximate=d["approximate"])
    if kind in _SIMPLE:
        return _SIMPLE[kind]()
    if kind == "MLP":
        dense = [layer for layer in d["layers"] if layer["type"] == "Dense"]
        mlp = MLP(d["sizes"], activation=d["activation"], output_activation=d["output_activation"],
                  init="zeros", dtype=dense[0]["dtype"] if dense else "float32", backend=backend)
        low = dense[0].get("compute_dtype") if dense else None
        if [describe(layer, 1) for layer in mlp.layers] != [
                {k: v for k, v in layer.items() if k != "compute_dtype"} for layer in d["layers"]]:
            raise ValueError("architecture: the MLP's settings do not produce its listed layers")
        mlp.compute_dtype = _usable(low, backend)
        return mlp
    return Sequential(*[build(inner, backend) for inner in d["layers"]])


def _usable(compute_dtype: str | None, backend: Backend) -> str | None:
    """A recorded compute dtype where ``backend`` has it; else None, with a warning: the
    float32 master weights are the model, the compute dtype only how it multiplies."""
    if compute_dtype is None:
        return None
    try:
        backend.dtype(compute_dtype)
    except ValueError as exc:
        warnings.warn(f"the model was saved with compute_dtype={compute_dtype!r}, which the "
                      f"{backend.name} backend lacks ({exc}); it computes in float32 here",
                      RuntimeWarning, stacklevel=4)
        return None
    return compute_dtype
