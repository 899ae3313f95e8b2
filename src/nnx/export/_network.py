"""ONNX graphs of nnx's own models: a Sequential (an MLP) and a Perceptron."""

from __future__ import annotations

from typing import Any

from ..activation_layers import (
    GELU,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Step,
    Tanh,
)
from ..layers import Dense, Layer
from ..perceptron import Perceptron
from ..sequential import Sequential
from ._graph import GraphBuilder

__all__ = ["sequential_graph", "perceptron_graph", "EXPORTABLE"]

#: the layer classes with an ONNX form (exactly these: a subclass may compute otherwise)
EXPORTABLE = (Dense, Sequential, Identity, Step, Sigmoid, Tanh, ReLU, LeakyReLU, GELU, Softmax)
_NAMES = ", ".join(cls.__name__ for cls in EXPORTABLE)


def _flatten(model: Sequential, where: str = "") -> list[tuple[str, Layer]]:
    """Every leaf layer with its position (``"2"``, ``"1.0"`` inside a nested Sequential)."""
    out = []
    for i, layer in enumerate(model.layers):
        at = f"{where}{i}"
        if type(layer) not in EXPORTABLE and not isinstance(layer, Sequential):
            raise TypeError(
                f"export_onnx: layer {at} of the model, {layer!r}, is a "
                f"{type(layer).__name__}, which has no ONNX form; exportable layers: {_NAMES} "
                "(a custom layer or activation cannot be exported: build the model from "
                "these, or write its graph with onnx.helper yourself)")
        if isinstance(layer, Sequential):
            out += _flatten(layer, f"{at}.")
        else:
            out.append((at, layer))
    return out


def sequential_graph(onnx: Any, model: Sequential) -> Any:
    """The graph ``X (batch, in) → Y (batch, out)`` of ``model``, layer by layer."""
    layers = _flatten(model)
    dense = [layer for _, layer in layers if isinstance(layer, Dense)]
    dtypes = [layer.dtype for layer in dense]
    first = dtypes[0] if dtypes else "float32"
    g = GraphBuilder(onnx, first)
    x = "X"
    n_in: Any = dense[0].in_features if dense else "features"   # symbolic without a Dense
    features = n_in
    for at, layer in layers:
        if isinstance(layer, Dense):
            if layer.dtype != g.dtype:   # Dense casts its input to its own dtype
                x = g.cast(x, layer.dtype)
                g.dtype = layer.dtype
            x = g.dense(x, layer.W, layer.b, f"layer{at}")
            features = layer.out_features
        else:
            x = _activation(g, layer, x)
    if x == "X" or g.nodes[-1].output[0] != x:
        x = g.op("Identity", [x])
    g.nodes[-1].output[0] = "Y"   # the last node made x: its output is the graph's
    inputs = [g.value_info("X", first, ["batch", n_in])]
    outputs = [g.value_info("Y", g.dtype, ["batch", features])]
    return g.model(inputs, outputs, "nnx_sequential", f"nnx: {type(model).__name__} "
                   f"({len(layers)} layers, {sum(d.num_params for d in dense)} parameters)")


def _activation(g: GraphBuilder, layer: Layer, z: str) -> str:
    if isinstance(layer, Identity):
        return z
    if isinstance(layer, Step):
        return g.step(z)
    if isinstance(layer, Sigmoid):
        return g.op("Sigmoid", [z])
    if isinstance(layer, Tanh):
        return g.op("Tanh", [z])
    if isinstance(layer, ReLU):
        return g.op("Relu", [z])
    if isinstance(layer, LeakyReLU):
        return g.leaky_relu(z, layer.alpha)
    if isinstance(layer, GELU):
        return g.gelu(z, layer.approximate)
    return g.op("Softmax", [z], axis=-1)   # Softmax: the last type _flatten lets through


def perceptron_graph(onnx: Any, model: Perceptron) -> Any:
    """``X (batch, d) → label (batch,) int64, decision (batch,)``: ŷ = [X w + b > 0]."""
    g = GraphBuilder(onnx, model.dtype)
    decision = g.op("Add", [g.op("MatMul", ["X", g.weight("w", model.w)]), g.weight("b", model.b)],
                    output="decision")
    g.op("Cast", [g.op("Greater", [decision, g.scalar("zero", 0.0)])], output="label",
         to=g.elem_type("int64"))
    inputs = [g.value_info("X", model.dtype, ["batch", model.n_features])]
    outputs = [g.value_info("label", "int64", ["batch"]),
               g.value_info("decision", model.dtype, ["batch"])]
    return g.model(inputs, outputs, "nnx_perceptron", f"nnx: Perceptron({model.n_features})")
