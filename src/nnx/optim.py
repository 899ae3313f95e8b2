"""Optimizers: backprop finds the direction, the optimizer takes the step (chapter 10.6).

    opt = nnx.optim.Adam(lr=1e-3)
    loss, dp = nnx.losses.mse(model.forward(x), y)
    model.backward(dp, input_grad=False)     # fills every Dense's dW and db
    opt.step(model)                          # W ← W − η · (update built from dW)

The update rules are PyTorch's (``torch.optim.SGD`` and ``torch.optim.Adam`` with their
default ``dampening=0``, ``amsgrad=False``, ``maximize=False``): the same gradients give
the same numbers. Parameters and optimizer state are updated in place (``p -= step``);
on JAX, whose arrays are immutable, the same statements rebind instead.

State (momentum buffers, Adam moments and step counts) is kept per layer object, or per
flat buffer (:mod:`nnx.optimizer`), so one optimizer can train one model across several
``fit`` calls; :meth:`~Optimizer.reset` forgets it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from .inputs import real_number
from .optimizer import Optimizer, _FlatState, _LayerState

Array = Any

__all__ = ["Optimizer", "SGD", "Adam", "OPTIMIZERS", "get"]


def _check(name: str, value: float, *, low: float, low_open: bool = False,
           high: float | None = None, high_open: bool = True, owner: str) -> float:
    return real_number(owner, name, value, low=low, low_open=low_open, high=high,
                       high_open=high_open)


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum and L2 weight decay.

    With g = dL/dp + weight_decay · p (PyTorch's L2 convention), each step is

        plain:     p ← p − lr · g
        momentum:  buf ← momentum · buf + g   (buf = g on the first step)
                   p ← p − lr · buf                         (classical)
                   p ← p − lr · (g + momentum · buf)        (nesterov=True)

    exactly as ``torch.optim.SGD(lr, momentum, nesterov=..., weight_decay=...)``.

    Args:
        lr: the learning rate η > 0.
        momentum: in [0, 1); 0 switches momentum off.
        nesterov: Nesterov's look-ahead form; needs ``momentum > 0``.
        weight_decay: L2 penalty coefficient ≥ 0, added to the gradient.
    """

    def __init__(self, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__()
        self.lr = _check("lr", lr, low=0.0, low_open=True, owner="SGD")
        self.momentum = _check("momentum", momentum, low=0.0, high=1.0, owner="SGD")
        self.weight_decay = _check("weight_decay", weight_decay, low=0.0, owner="SGD")
        if not isinstance(nesterov, bool):
            raise ValueError(f"SGD: nesterov must be True or False; got {nesterov!r}")
        if nesterov and self.momentum == 0.0:
            raise ValueError("SGD: nesterov=True needs momentum > 0 (e.g. momentum=0.9)")
        self.nesterov = nesterov

    def __repr__(self) -> str:
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov}, "
                f"weight_decay={self.weight_decay})")

    @property
    def _slots(self) -> int:  # type: ignore[override]
        return 1 if self.momentum else 0

    def _new_state(self, layer: Any) -> _LayerState:
        return _LayerState(layer)

    def _update_flat(self, group: Any, st: _FlatState) -> None:
        st.t += 1
        group.backend.ops.sgd_step(group.params, group.grads, st.a, lr=self.lr,
                                   momentum=self.momentum, nesterov=self.nesterov,
                                   weight_decay=self.weight_decay, first=st.fresh)
        st.fresh = False

    def _update(self, layer: Any, st: _LayerState) -> None:
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        st.t += 1
        # Adam walks the slots the same way. A shared generator measured 0.6 µs more per
        # XOR step (22.6 → 23.3 µs, against a 25 µs target), so each keeps its own loop.
        for i, name, gname in st.slots:
            g = getattr(layer, gname)
            if g is None:
                continue
            p = getattr(layer, name)
            if wd:
                g = g + wd * p                      # L2: g ← g + λ p
            if mu:
                buf = st.a[i]
                if buf is None:
                    buf = st.xp.asarray(g, copy=True)   # buf₁ = g₁
                else:
                    buf *= mu                       # buf ← μ buf + g
                    buf += g
                st.a[i] = buf
                g = g + mu * buf if self.nesterov else buf
            q = p
            p = st.ops.sub_scaled(p, g, lr)         # p ← p − η g (in place)
            if p is not q:                          # JAX rebinds instead of mutating
                setattr(layer, name, p)


class Adam(Optimizer):
    """Adam (Kingma & Ba), with bias correction and L2 weight decay, as ``torch.optim.Adam``.

    With g = dL/dp + weight_decay · p and t the step count of this layer:

        m ← β₁ m + (1 − β₁) g            v ← β₂ v + (1 − β₂) g²
        p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)

    Args:
        lr: the learning rate > 0.
        betas: (β₁, β₂), each in [0, 1): decay rates of the first and second moments.
        eps: ε ≥ 0 added to the denominator for numerical stability.
        weight_decay: L2 penalty coefficient ≥ 0, added to the gradient (not AdamW).
    """

    def __init__(self, lr: float = 1e-3, betas: Iterable[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.lr = _check("lr", lr, low=0.0, low_open=True, owner="Adam")
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2); got {betas!r}") from None
        self.betas = (_check("betas[0]", b1, low=0.0, high=1.0, owner="Adam"),
                      _check("betas[1]", b2, low=0.0, high=1.0, owner="Adam"))
        self.eps = _check("eps", eps, low=0.0, owner="Adam")
        self.weight_decay = _check("weight_decay", weight_decay, low=0.0, owner="Adam")

    def __repr__(self) -> str:
        return (f"Adam(lr={self.lr}, betas={self.betas}, eps={self.eps}, "
                f"weight_decay={self.weight_decay})")

    _slots = 2

    def _update_flat(self, group: Any, st: _FlatState) -> None:
        b1, b2 = self.betas
        st.t += 1
        st.fresh = False
        group.backend.ops.adam_step(group.params, group.grads, st.a, st.b,
                                    step_size=self.lr / (1.0 - b1 ** st.t),
                                    b1=b1, b2=b2, sqrt_bc2=math.sqrt(1.0 - b2 ** st.t),
                                    eps=self.eps, weight_decay=self.weight_decay)

    def _new_state(self, layer: Any) -> _LayerState:
        st = _LayerState(layer)
        xp = st.xp
        for i, name in enumerate(st.names):
            p = getattr(layer, name)
            if p is not None:
                st.a[i] = xp.zeros_like(p)
                st.b[i] = xp.zeros_like(p)
        return st

    def _update(self, layer: Any, st: _LayerState) -> None:
        lr, wd, eps = self.lr, self.weight_decay, self.eps
        b1, b2 = self.betas
        st.t += 1
        t = st.t
        step_size = lr / (1.0 - b1 ** t)           # lr / (1 − β₁ᵗ)
        sqrt_bc2 = math.sqrt(1.0 - b2 ** t)        # √(1 − β₂ᵗ)
        sqrt = st.xp.sqrt
        for i, name, gname in st.slots:
            g = getattr(layer, gname)
            if g is None:
                continue
            p = getattr(layer, name)
            if wd:
                g = g + wd * p
            m, v = st.a[i], st.b[i]
            m *= b1                                 # m ← β₁ m + (1 − β₁) g
            m += (1.0 - b1) * g
            v *= b2                                 # v ← β₂ v + (1 − β₂) g²
            v += (1.0 - b2) * (g * g)
            st.a[i], st.b[i] = m, v
            denom = sqrt(v)
            denom /= sqrt_bc2
            denom += eps
            q = p
            p = st.ops.sub_scaled(p, m / denom, step_size)  # p ← p − step · m/denom, in place
            if p is not q:
                setattr(layer, name, p)


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam}

#: learning rates used when an optimizer is given by name without ``lr``.
DEFAULT_LR: dict[str, float] = {"sgd": 0.01, "adam": 1e-3}


def get(spec: str | Optimizer, **kwargs: Any) -> Optimizer:
    """An optimizer from a name (``"sgd"``, ``"adam"``; keyword arguments go to it), or
    ``spec`` itself when it already is one. ``ValueError`` lists the valid names."""
    if isinstance(spec, Optimizer):
        if kwargs:
            raise ValueError(f"optimizer {spec!r} is already built; keyword arguments "
                             f"{sorted(kwargs)} apply only to a name such as 'adam'")
        return spec
    key = spec.lower() if isinstance(spec, str) else None
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {spec!r}; valid names: {', '.join(OPTIMIZERS)} "
                         "(or pass an nnx.optim.Optimizer instance)")
    kwargs.setdefault("lr", DEFAULT_LR[key])
    return OPTIMIZERS[key](**kwargs)
