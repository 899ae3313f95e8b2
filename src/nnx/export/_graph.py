"""A small ONNX graph builder on the ``onnx`` package's public helper API.

:class:`GraphBuilder` collects nodes and initializers and names every intermediate value
once; weights enter as raw little-endian bytes (``Backend.to_bytes``: a host copy of an
array of any backend), so nothing here touches an array library by name.
"""

from __future__ import annotations

import struct
from typing import Any

from .. import backends as _registry
from ..activations import _GELU_C, _GELU_K, _SQRT_2

__all__ = ["OPSET", "IR_VERSION", "GraphBuilder", "require_onnx"]

#: the ONNX operator set the exported graphs use (default domain only): opset 17, which
#: onnxruntime has run since 1.12 (2022) and every later serving stack reads.
OPSET = 17
#: the file format (IR) version written: 8, the one that introduced opset 17.
IR_VERSION = 8

_INSTALL = "pip install onnx  (and onnxruntime to run the exported file)"


def require_onnx() -> Any:
    """The ``onnx`` module, or an ImportError that says how to install it."""
    try:
        import onnx
        import onnx.checker
        import onnx.helper
    except ImportError as exc:
        raise ImportError(f"nnx.export_onnx needs the onnx package, which is not installed "
                          f"here: {_INSTALL}") from exc
    return onnx


def _f32_exact(value: float) -> bool:
    return struct.unpack("<f", struct.pack("<f", value))[0] == value


class GraphBuilder:
    """Nodes and initializers of one graph whose floating values are all of ``dtype``
    (``"float32"`` or ``"float64"``; the builder's ``dtype`` may change as layers do)."""

    def __init__(self, onnx: Any, dtype: str) -> None:
        self.onnx = onnx
        self.helper = onnx.helper
        self.dtype = dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    # -- names, types, constants -----------------------------------------------------------
    def fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def elem_type(self, dtype: str | None = None) -> int:
        """The TensorProto type of ``dtype`` (``"float32"``, ``"float64"``, ``"int64"``)."""
        t = self.onnx.TensorProto
        return {"float32": t.FLOAT, "float64": t.DOUBLE, "int64": t.INT64, "bool": t.BOOL,
                "string": t.STRING}[dtype or self.dtype]

    def weight(self, stem: str, x: Any) -> str:
        """An initializer holding array ``x`` (any backend) with its own dtype and shape."""
        code, shape, data = _registry.backend_of(x).to_bytes(x)
        types = {"F32": "float32", "F64": "float64"}
        if code not in types:
            raise ValueError(f"export_onnx: {stem} has dtype code {code}; expected float32 "
                             "or float64 weights")
        name = self.fresh(stem)
        self.initializers.append(self.helper.make_tensor(
            name, self.elem_type(types[code]), list(shape), vals=data, raw=True))
        return name

    def constant(self, stem: str, values: list[Any], dtype: str | None = None,
                 shape: list[int] | None = None) -> str:
        """An initializer from Python values (a scalar when ``shape`` is ``[]``)."""
        dtype = dtype or self.dtype
        if dtype == "string":
            values = [str(v).encode("utf-8") for v in values]
        name = self.fresh(stem)
        dims = [len(values)] if shape is None else shape
        self.initializers.append(self.helper.make_tensor(name, self.elem_type(dtype), dims,
                                                         vals=values))
        return name

    def scalar(self, stem: str, value: float) -> str:
        return self.constant(stem, [float(value)], shape=[])

    # -- nodes -----------------------------------------------------------------------------
    def op(self, op_type: str, inputs: list[str], stem: str | None = None,
           output: str | None = None, **attrs: Any) -> str:
        """Append node ``op_type(inputs)``; returns the name of its one output."""
        out = output or self.fresh(stem or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [out],
                                                name=self.fresh(f"node_{op_type}"), **attrs))
        return out

    def cast(self, x: str, dtype: str) -> str:
        return self.op("Cast", [x], "cast", to=self.elem_type(dtype))

    def dense(self, x: str, W: Any, b: Any, stem: str, *, transposed: bool = True) -> str:
        """Z = X Wᵀ + b (W: (out, in), ``transposed``) or X W + b (W: (in, out))."""
        inputs = [x, self.weight(f"{stem}.W", W)]
        if b is not None:
            inputs.append(self.weight(f"{stem}.b", b))
        return self.op("Gemm", inputs, f"{stem}.z", transB=1 if transposed else 0)

    # -- activations, each the formula nnx computes ------------------------------------------
    def step(self, z: str) -> str:                       # 1 where z > 0, else 0
        return self.cast(self.op("Greater", [z, self.scalar("zero", 0.0)]), self.dtype)

    def leaky_relu(self, z: str, alpha: float) -> str:   # z where z > 0, else αz
        if self.dtype == "float32" or _f32_exact(alpha):  # the attribute is a float32
            return self.op("LeakyRelu", [z], alpha=float(alpha))
        positive = self.op("Greater", [z, self.scalar("zero", 0.0)])
        return self.op("Where", [positive, z, self.op("Mul", [z, self.scalar("alpha", alpha)])])

    def gelu(self, z: str, approximate: str) -> str:
        """0.5 z (1 + erf(z / √2)), or 0.5 z (1 + tanh(c (z + k z³))) for ``"tanh"``."""
        half_z = self.op("Mul", [self.scalar("half", 0.5), z])
        if approximate == "tanh":
            kz3 = self.op("Mul", [self.op("Mul", [self.op("Mul", [self.scalar("k", _GELU_K), z]),
                                                  z]), z])
            inner = self.op("Mul", [self.scalar("c", _GELU_C), self.op("Add", [z, kz3])])
            t = self.op("Tanh", [inner])
        else:
            u = self.op("Div", [z, self.scalar("sqrt2", _SQRT_2)])
            if self.dtype == "float64":   # onnxruntime's Erf has no float64 kernel
                t = self.cast(self.op("Erf", [self.cast(u, "float32")]), "float64")
            else:
                t = self.op("Erf", [u])
        return self.op("Mul", [half_z, self.op("Add", [self.scalar("one", 1.0), t])])

    # -- the model -------------------------------------------------------------------------
    def model(self, inputs: list[Any], outputs: list[Any], name: str, doc: str) -> Any:
        """The checked ModelProto (opset :data:`OPSET`, IR :data:`IR_VERSION`)."""
        from .._version import __version__

        graph = self.helper.make_graph(self.nodes, name, inputs, outputs, self.initializers,
                                       doc_string=doc)
        model = self.helper.make_model(graph, producer_name="nnx", producer_version=__version__,
                                       opset_imports=[self.helper.make_opsetid("", OPSET)],
                                       ir_version=IR_VERSION)
        self.onnx.checker.check_model(model, full_check=True)
        return model

    def value_info(self, name: str, dtype: str, shape: list[Any]) -> Any:
        return self.helper.make_tensor_value_info(name, self.elem_type(dtype), shape)
