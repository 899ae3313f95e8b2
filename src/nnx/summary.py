"""A model's summary table: layers, output shapes, parameter counts, memory (``model.summary()``).

    model = nnx.MLP([64, 256, 128, 10], seed=0)
    model.summary(batch_size=32, optimizer="adam")      # prints the table, returns a Summary
    s = nnx.summary.summarize(model)                    # the same, printing nothing
    s.total_params, s.param_bytes, str(s)

One row per layer (nested Sequentials' layers are listed with dotted indices): its
type and settings (the activation layers are rows of their own, as in the network),
its output shape with the batch dimension as ``None`` or the ``batch_size`` given,
and its parameter count, ``in·out + out`` for a Dense with bias. Below, the totals and
the memory they take, ``count × itemsize`` bytes each: the parameters, their gradients
(one array like each parameter, which backward fills; a Perceptron learns without
them), and, only when an optimizer is given, its state: Adam keeps two buffers per
parameter (2× the parameters), SGD with momentum one (1×), plain SGD none. Every
parameter of nnx's layers is trainable. The layout follows Keras' ``model.summary()``
and torchinfo's ``summary()``; the counts equal PyTorch's ``sum(p.numel())`` for the same network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import optim as _optim
from .activation_layers import GELU, LeakyReLU
from .layers import Dense
from .perceptron import Perceptron

__all__ = ["Summary", "LayerRow", "summarize", "ITEMSIZE"]

#: bytes per element of each parameter dtype
ITEMSIZE = {"float32": 4, "float64": 8}


@dataclass
class LayerRow:
    """One line of the table: ``index`` ("0", "2.1" inside a nested Sequential), the
    layer's ``kind`` and ``details``, its ``output_shape`` (None for the batch
    dimension when no batch size is given; None when unknown), ``params`` and ``bytes``."""

    index: str
    kind: str
    details: str
    output_shape: tuple[int | None, ...] | None
    params: int
    bytes: int


@dataclass
class Summary:
    """What :func:`summarize` found; ``str()`` gives the table, ``repr()`` one line."""

    model: str
    rows: list[LayerRow]
    input_shape: tuple[int | None, ...] | None
    dtypes: list[str]
    backend: str
    device: str
    total_params: int
    param_bytes: int
    grad_bytes: int
    optimizer: str | None = None
    optimizer_slots: int = 0
    state_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def trainable_params(self) -> int:
        """Every parameter of nnx's layers is trained: equal to ``total_params``."""
        return self.total_params

    @property
    def total_bytes(self) -> int:
        """Parameters + gradients + optimizer state."""
        return self.param_bytes + self.grad_bytes + self.state_bytes

    def __repr__(self) -> str:
        return (f"<Summary of {self.model}: {len(self.rows)} layers, {self.total_params:,} "
                f"parameters, {_size(self.total_bytes)}>")

    def __str__(self) -> str:
        head = ("#", "Layer", "Output shape", "Params", "Bytes")
        cells = [(r.index, r.kind + (f"({r.details})" if r.details else ""),
                  _shape(r.output_shape), f"{r.params:,}", f"{r.bytes:,}") for r in self.rows]
        widths = [max(len(c[i]) for c in [head, *cells]) for i in range(5)]
        right = (False, False, False, True, True)

        def line(c: tuple[str, ...]) -> str:
            return "  ".join(x.rjust(w) if r else x.ljust(w)
                             for x, w, r in zip(c, widths, right)).rstrip()

        rule = "-" * len(line(head))
        where = f"{self.backend} on {self.device}, {', '.join(self.dtypes)}"
        out = [f"{self.model} ({where}); input {_shape(self.input_shape)}", rule, line(head),
               rule, *(line(c) for c in cells), rule,
               f"Total params:  {self.total_params:,} ({_size(self.param_bytes)}), "
               + ("all trainable" if self.trainable_params == self.total_params else
                  f"trainable {self.trainable_params:,}"),
               f"Gradients:     {_size(self.grad_bytes)}"]
        if self.optimizer is not None:
            out.append(f"{self.optimizer + ' state:':<15}{_size(self.state_bytes)} "
                       f"({self.optimizer_slots} buffer{'s' * (self.optimizer_slots != 1)} "
                       "per parameter)")
        out.append(f"Total memory:  {_size(self.total_bytes)}")
        return "\n".join(out + self.notes)


def _shape(shape: tuple[int | None, ...] | None) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def _size(n: int) -> str:
    """Bytes in binary units: 512 B, 198.54 KiB, 1.50 MiB."""
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.2f} {unit}"
    raise AssertionError  # pragma: no cover


def _details(layer: Any) -> str:
    if isinstance(layer, Dense):
        return f"{layer.in_features} → {layer.out_features}" + \
            ("" if layer.b is not None else ", no bias")
    if isinstance(layer, LeakyReLU):
        return f"alpha={layer.alpha}"
    if isinstance(layer, GELU) and layer.approximate != "none":
        return f"approximate={layer.approximate!r}"
    return ""


def _bytes(layer: Any) -> int:
    return sum(_count(p) * ITEMSIZE.get(_dtype_name(p), 0)
               for p in layer.parameters().values())


def _count(p: Any) -> int:
    n = 1
    for d in p.shape:
        n *= int(d)
    return n


def _dtype_name(p: Any) -> str:
    for name in ITEMSIZE:
        if name in str(p.dtype):
            return name
    return str(p.dtype)


def _rows(model: Any, width: int | None, batch: int | None, prefix: str = "") -> tuple[
        list[LayerRow], int | None]:
    rows: list[LayerRow] = []
    for i, layer in enumerate(model.layers):
        index = f"{prefix}{i}"
        if hasattr(layer, "layers") and not isinstance(layer, Dense):   # nested Sequential
            inner, width = _rows(layer, width, batch, prefix=index + ".")
            rows += inner
            continue
        if isinstance(layer, Dense):
            width = layer.out_features
        elif layer.param_names or not hasattr(layer, "name"):   # a layer nnx cannot follow
            width = None
        shape = None if width is None else (batch, width)
        rows.append(LayerRow(index, type(layer).__name__, _details(layer), shape,
                             layer.num_params, _bytes(layer)))
    return rows, width


def _first_dense(model: Any) -> Dense | None:
    for layer in model.layers:
        if isinstance(layer, Dense):
            return layer
        if hasattr(layer, "layers"):
            found = _first_dense(layer)
            if found is not None:
                return found
        if layer.param_names:
            return None
    return None


def summarize(model: Any, *, batch_size: int | None = None, optimizer: Any = None) -> Summary:
    """The :class:`Summary` of ``model`` (a Sequential/MLP or a Perceptron).

    Args:
        batch_size: shown as the first dimension of every shape (None: ``None``).
        optimizer: an :class:`nnx.optim.Optimizer` or a name (``"adam"``, ``"sgd"``):
            its state's memory is added (Adam 2×, SGD with momentum 1×, SGD 0× the
            parameters). Without it the state is left out.
    """
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
            batch_size, int) or batch_size < 1):
        raise ValueError(f"summary: batch_size must be a positive int or None; got {batch_size!r}")
    opt = None if optimizer is None else _optim.get(optimizer)
    if isinstance(model, Perceptron):
        n = model.n_features + 1
        rows = [LayerRow("0", "Perceptron", f"{model.n_features} → 1, step", (batch_size,),
                         n, n * ITEMSIZE[model.dtype])]
        grads = False   # Rosenblatt's rule needs no gradient arrays
        backend, dtypes, input_shape = model.backend, [model.dtype], (batch_size,
                                                                      model.n_features)
    elif hasattr(model, "layers"):
        first = _first_dense(model)
        width = None if first is None else first.in_features
        rows, _ = _rows(model, width, batch_size)
        backend = model.backend
        dtypes = sorted({_dtype_name(p) for p in model.parameters().values()}) or ["no parameters"]
        low = sorted({d.compute_dtype for d in getattr(model, "dense_layers", [])
                      if d.compute_dtype is not None})
        if low:   # the precision policy: float32 master weights, products in low precision
            dtypes.append(f"computing in {', '.join(low)}")
        input_shape = None if width is None else (batch_size, width)
        grads = True
    else:
        raise TypeError(f"summary: expected an nnx Sequential, MLP or Perceptron; got "
                        f"{type(model).__name__}")
    total = sum(r.params for r in rows)
    param_bytes = sum(r.bytes for r in rows)
    name = type(model).__name__
    if name == "MLP" and hasattr(model, "sizes"):
        name = f"MLP {list(model.sizes)}"
    slots = 0 if opt is None else int(getattr(opt, "_slots", 0))
    return Summary(model=name, rows=rows, input_shape=input_shape, dtypes=dtypes,
                   backend=backend.name, device=backend.device_name(), total_params=total,
                   param_bytes=param_bytes, grad_bytes=param_bytes if grads else 0,
                   optimizer=None if opt is None else type(opt).__name__,
                   optimizer_slots=slots, state_bytes=slots * param_bytes)
