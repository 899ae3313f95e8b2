"""Serving elsewhere: a trained model as an ONNX file, for onnxruntime and its kin.

    nnx.export_onnx(model, "model.onnx")              # also returns the onnx.ModelProto
    session = onnxruntime.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
    (Y,) = session.run(None, {"X": X})                # X: (batch, in) in the model's dtype

The graph is built with the ``onnx`` package's public helper API (``onnx.helper``,
checked by ``onnx.checker`` with full shape inference) in operator set :data:`OPSET`
(17) and IR version :data:`IR_VERSION` (8), with a symbolic ``batch`` dimension. The
model may live on any backend: the weights come to the host as raw bytes.

What is exported, and what the graph holds:

* a :class:`~nnx.Sequential` / :class:`~nnx.MLP` of Dense layers (with or without bias)
  and the activation layers Identity, Step, Sigmoid, Tanh, ReLU, LeakyReLU, GELU (exact
  and tanh) and Softmax, nested Sequentials included: input ``X`` (batch, in), output
  ``Y`` (batch, out), what ``model.predict`` returns;
* a :class:`~nnx.Perceptron`: input ``X`` (batch, d), outputs ``label`` (batch,) int64
  (``predict``) and ``decision`` (batch,) (``decision_function``);
* a fitted ``nnx.sklearn.MLPClassifier``: outputs ``label`` (``predict``: the classes
  themselves, ints, floats, booleans or strings; a 0/1 int64 indicator (batch, k) for
  multi-label targets) and ``probabilities`` (``predict_proba``, columns ordered as
  ``classes_``); ``MLPRegressor``: ``predictions`` (``predict``: (batch,) for one
  output, else (batch, k)). scikit-learn's own fitted MLP estimators export the same way.

Dtypes: a float32 model exports as float32 and a float64 model as float64 (nothing is
narrowed), except the exact GELU's erf, which onnxruntime has only in float32: there a
float64 graph casts to float32 and back, so such a model agrees to float32 rounding
rather than float64's. A Sequential whose Dense layers differ in dtype gets the same
casts as its forward pass.

Not exportable (a ``TypeError`` naming the layer): any Layer class other than those
above, subclasses of them included (a custom layer or activation), because its forward
is Python code ONNX cannot see. ``export_onnx`` is a function of the tool, never a
method of the core model classes, and ``onnx`` is an optional dependency: without it,
calling export raises ``ImportError`` with the install command.
"""

from __future__ import annotations

import os
from typing import Any

from ..perceptron import Perceptron
from ..safetensors_format import write_atomically
from ..sequential import Sequential
from ._graph import IR_VERSION, OPSET, require_onnx

__all__ = ["export_onnx", "OPSET", "IR_VERSION"]


def export_onnx(model: Any, path: str | os.PathLike | None = None) -> Any:
    """Write ``model`` to ``path`` as an ONNX file (atomically) and return the ModelProto.

    Args:
        model: a :class:`~nnx.Sequential` (an MLP), a :class:`~nnx.Perceptron`, or a
            fitted ``MLPClassifier`` / ``MLPRegressor`` of ``nnx.sklearn``; on any backend.
        path: the file to write (a temporary file is renamed over it only once complete);
            None to only return the model.

    Returns:
        The checked ``onnx.ModelProto`` (opset 17, IR version 8). Its input is ``X``
        (batch, in_features) in the model's dtype; its outputs are listed in
        :mod:`nnx.export`.

    Raises:
        ImportError: the ``onnx`` package is not installed (the message says how).
        TypeError: the model, or one of its layers, has no ONNX form (the message names
            the layer and lists those that export).
        ValueError: an estimator that is not fitted.
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    from ._network import perceptron_graph, sequential_graph
    from ._sklearn import estimator_graph, is_estimator

    if isinstance(model, Sequential):
        kind = "sequential"
    elif isinstance(model, Perceptron):
        kind = "perceptron"
    elif is_estimator(model):
        kind = "estimator"
    else:
        raise TypeError(f"export_onnx: expected an nnx Sequential/MLP, a Perceptron or a fitted "
                        f"nnx.sklearn MLPClassifier/MLPRegressor; got {type(model).__name__}")
    if path is not None:
        folder = os.path.dirname(os.path.abspath(os.fspath(path)))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"export_onnx: the folder {folder!r} does not exist")
    onnx = require_onnx()
    if kind == "sequential":
        proto = sequential_graph(onnx, model)
    elif kind == "perceptron":
        proto = perceptron_graph(onnx, model)
    else:
        proto = estimator_graph(onnx, model)
    if path is not None:
        write_atomically(path, [proto.SerializeToString()])
    return proto
