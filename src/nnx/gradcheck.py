"""Checking backpropagation against central finite differences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import losses as _losses
from . import precision as _precision
from .inputs import real_number
from .sequential import Sequential

Array = Any

__all__ = ["gradcheck", "numerical_gradients"]


def numerical_gradients(model: Sequential, x: Array, target: Array,
                        loss: str | Callable[..., tuple[Array, Array]],
                        *, eps: float = 1e-6) -> dict[str, Any]:
    """Central differences (L(θ+ε) − L(θ−ε)) / 2ε for every parameter, as host NumPy arrays.

    Shapes: ``x`` (n, in) and ``target`` as ``loss`` takes them for outputs (n, out);
    each gradient has its parameter's shape (``W`` (out, in), ``b`` (out,)).
    Keys follow ``model.parameters()``. Parameters are perturbed through host copies
    (portable to immutable arrays such as JAX's) and restored afterwards.
    """
    eps = real_number("numerical_gradients", "eps", eps, low=0.0, low_open=True)
    loss_fn = _losses.get(loss)
    backend = model.backend
    result: dict[str, Any] = {}
    for i, layer in enumerate(model.layers):
        for name in layer.param_names:
            param = getattr(layer, name)
            if param is None:
                continue
            host = backend.to_numpy(param)
            grad = host.astype("float64") * 0.0
            flat = host.reshape(-1)
            for j in range(flat.size):
                original = flat[j]
                values = []
                for sign in (1.0, -1.0):
                    flat[j] = original + sign * eps
                    setattr(layer, name, backend.from_numpy(host))
                    values.append(float(loss_fn(model.forward(x), target)[0]))
                flat[j] = original
                grad.reshape(-1)[j] = (values[0] - values[1]) / (2.0 * eps)
            setattr(layer, name, backend.from_numpy(host))
            result[f"{i}.{name}"] = grad
    return result


def gradcheck(model: Sequential, x: Array, target: Array,
              loss: str | Callable[..., tuple[Array, Array]], *, eps: float = 1e-6) -> float:
    """The largest relative error between backprop and finite differences, over all parameters.

    For each parameter array the error is ``max|g_bp − g_fd| / max(max|g_bp|, max|g_fd|)``
    (a norm-wise relative error, so entries that are exactly zero — a dead ReLU, a
    step — do not divide by zero); the worst array's error is returned. ``x`` (n, in)
    and ``target`` as :func:`numerical_gradients` takes them. Use float64
    models: in float64 a correct backward gives ~1e-7 or less.
    """
    eps = real_number("gradcheck", "eps", eps, low=0.0, low_open=True)
    if not hasattr(model, "layers"):
        raise TypeError(f"gradcheck takes a Sequential (or MLP); got {type(model).__name__}")
    _refuse_low_precision(model)
    loss_fn = _losses.get(loss)
    _, dy = loss_fn(model.forward(x), target)
    model.backward(dy, input_grad=False)
    analytic = {}
    for i, layer in enumerate(model.layers):
        for name in layer.param_names:
            grad = getattr(layer, "d" + name, None)
            if getattr(layer, name) is not None:
                analytic[f"{i}.{name}"] = model.backend.to_numpy(grad).astype("float64")
    numeric = numerical_gradients(model, x, target, loss_fn, eps=eps)
    worst = 0.0
    for key, g_fd in numeric.items():
        g_bp = analytic[key]
        scale = max(float(abs(g_bp).max()), float(abs(g_fd).max()))
        if scale > 0.0:
            worst = max(worst, float(abs(g_bp - g_fd).max()) / scale)
    return worst


def _refuse_low_precision(model: Any) -> None:
    low = sorted({d.compute_dtype for d in getattr(model, "dense_layers", [])
                  if d.compute_dtype is not None})
    if low:
        raise ValueError(f"gradcheck: the model computes in {', '.join(low)}, whose rounding "
                         "(~1e-3) finite differences cannot tell from a wrong gradient; check a "
                         "float64 copy instead (build it with dtype='float64', "
                         "compute_dtype=None, and copy the weights over)")
    precision = _precision.get_matmul_precision()
    if precision != "highest":
        raise ValueError(f"gradcheck: float32 matrix products run at precision {precision!r} "
                         "(TF32 or bfloat16 on a GPU); run it inside "
                         "nnx.precision.matmul_precision('highest') and with a float64 model")
