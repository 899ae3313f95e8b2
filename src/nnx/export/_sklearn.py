"""ONNX graphs of fitted MLPClassifier / MLPRegressor estimators (nnx.sklearn's, and
scikit-learn's own, which keep the same fitted attributes).

The graph is read from the fitted attributes alone — ``coefs_`` (in, out),
``intercepts_``, ``activation``, ``out_activation_``, ``n_outputs_`` and ``classes_`` —
so nothing here imports scikit-learn.
"""

from __future__ import annotations

from typing import Any

from ..backend import to_numpy
from ._graph import GraphBuilder

__all__ = ["is_estimator", "estimator_graph"]

_HIDDEN = {"identity": None, "logistic": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}
_OUTPUT = {"identity": None, "exp": "Exp", "logistic": "Sigmoid", "softmax": "Softmax"}


def is_estimator(model: Any) -> bool:
    """Whether ``model`` looks like a scikit-learn MLP estimator (fitted or not)."""
    return hasattr(model, "hidden_layer_sizes") and hasattr(model, "get_params")


def _dtype_of(a: Any) -> str:
    name = str(a.dtype).rsplit(".", 1)[-1]
    if name not in ("float32", "float64"):
        raise ValueError(f"export_onnx: the estimator's coefs_ are {a.dtype}; expected "
                         "float32 or float64")
    return name


def _classes(model: Any) -> tuple[list[Any], str]:
    """The class labels as Python values and the ONNX dtype that holds them."""
    classes = model.classes_
    values = list(to_numpy(classes).tolist() if hasattr(classes, "shape") else classes)
    kinds = {type(v) for v in values}
    for kind, dtype in ((bool, "bool"), (int, "int64"), (float, "float64"), (str, "string")):
        if kinds == {kind}:
            return values, dtype
    raise ValueError(f"export_onnx: class labels {values!r} are not all ints, floats, "
                     "booleans or strings; ONNX labels need one of those types")


def estimator_graph(onnx: Any, model: Any) -> Any:
    """The graph of a fitted estimator (see :func:`nnx.export_onnx` for its outputs)."""
    name = type(model).__name__
    if not hasattr(model, "coefs_"):
        raise ValueError(f"export_onnx: this {name} is not fitted yet; call fit first")
    hidden, out = model.activation, model.out_activation_
    if hidden not in _HIDDEN or out not in _OUTPUT:
        raise ValueError(f"export_onnx: {name} with activation={hidden!r} and "
                         f"out_activation_={out!r} has no ONNX form; expected hidden "
                         f"{sorted(_HIDDEN)} and output {sorted(_OUTPUT)}")
    dtype = _dtype_of(model.coefs_[0])
    g = GraphBuilder(onnx, dtype)
    x = "X"
    last = len(model.coefs_) - 1
    for i, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        x = g.dense(x, W, b, f"layer{i}", transposed=False)        # X W + b, W (in, out)
        if i < last and _HIDDEN[hidden]:
            x = g.op(_HIDDEN[hidden], [x])
    if _OUTPUT[out] == "Softmax":
        x = g.op("Softmax", [x], axis=-1)
    elif _OUTPUT[out]:
        x = g.op(_OUTPUT[out], [x])
    k = int(model.n_outputs_)
    inputs = [g.value_info("X", dtype, ["batch", int(model.coefs_[0].shape[0])])]
    if not hasattr(model, "classes_"):   # a regressor: predictions only
        if k == 1:
            g.op("Reshape", [x, g.constant("flat", [-1], "int64")], output="predictions")
        else:
            g.op("Identity", [x], output="predictions")
        shape = ["batch"] if k == 1 else ["batch", k]
        outputs = [g.value_info("predictions", dtype, shape)]
        return g.model(inputs, outputs, "nnx_mlp_regressor", f"{name}: predict")
    values, label_dtype = _classes(model)
    if out == "softmax":                                    # multiclass: argmax of P
        g.op("Identity", [x], output="probabilities")
        index = g.op("ArgMax", [x], axis=1, keepdims=0)
        g.op("Gather", [g.constant("classes", values, label_dtype), index], output="label")
        label_shape: list[Any] = ["batch"]
    elif k == 1:                                            # binary: classes_[p > 0.5]
        one_minus = g.op("Sub", [g.scalar("one", 1.0), x])
        g.op("Concat", [one_minus, x], output="probabilities", axis=1)
        p = g.op("Reshape", [x, g.constant("flat", [-1], "int64")])        # (batch,)
        positive = g.op("Greater", [p, g.scalar("half", 0.5)])
        index = g.cast(positive, "int64")
        g.op("Gather", [g.constant("classes", values, label_dtype), index], output="label")
        label_shape = ["batch"]
    else:                                                   # multilabel: indicator p > 0.5
        g.op("Identity", [x], output="probabilities")
        positive = g.op("Greater", [x, g.scalar("half", 0.5)])
        g.op("Cast", [positive], output="label", to=g.elem_type("int64"))
        label_dtype, label_shape = "int64", ["batch", k]
    n_proba = 2 if k == 1 and out != "softmax" else k
    outputs = [g.value_info("label", label_dtype, label_shape),
               g.value_info("probabilities", dtype, ["batch", n_proba])]
    return g.model(inputs, outputs, "nnx_mlp_classifier",
                   f"{name}: label = predict, probabilities = predict_proba")
