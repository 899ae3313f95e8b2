"""Loss scaling for float16 training: :class:`LossScaler`, as ``torch.amp.GradScaler``.

float16 holds magnitudes from about 6·10⁻⁸ (subnormal) up to 65504. The gradients of a
float16 network's products are often smaller than its low end, and vanish. Scaling the
loss by S multiplies every gradient of the backward pass by S, which lifts them into
range; the float32 gradients of the master weights are then divided by S again before
the optimizer sees them. Too large an S overflows instead (inf or NaN in a gradient);
such a step is skipped and S shrinks. The step, with ``scaler`` a :class:`LossScaler`::

    out = model.forward(xb)                          # float32 out, float16 products
    loss, dout = nnx.losses.mse(out, yb)             # the loss in float32, unscaled
    model.backward(scaler.scale_gradient(dout))      # dL/dout × S: gradients × S
    found_inf = scaler.unscale_(model)               # gradients ÷ S; any inf/NaN? (device)
    if not scaler.update(found_inf):                 # one host read; S shrinks or grows
        optimizer.step(model)                        # skipped when a gradient overflowed

:func:`nnx.fit` does this by itself (its ``loss_scale`` argument, :func:`resolve`).
The numbers are GradScaler's (``torch._amp_update_scale_``): S is a float32 number; the
gradients are multiplied by ``float32(1 / float64(S))``; an inf or NaN anywhere in the
scaled gradients skips the step, multiplies S by ``backoff_factor`` and restarts the
count of good steps; after ``growth_interval`` good steps in a row S is multiplied by
``growth_factor`` (unless that would overflow float32) and the count restarts. This
module imports no array library: it works in the gradients' own namespace.
"""

from __future__ import annotations

import math
import numbers
import struct
from collections.abc import Mapping
from typing import Any

from .inputs import positive_int, real_number, show
from .optimizer import layers_of

Array = Any

__all__ = ["LossScaler", "resolve"]


def _float32(x: float) -> float:
    """``x`` rounded to the nearest float32 (as a Python float; ±inf beyond its range)."""
    try:
        return struct.unpack("f", struct.pack("f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


class LossScaler:
    """Dynamic (or static) loss scaling that behaves like ``torch.amp.GradScaler``.

    Args:
        init_scale: the first scale S, > 0 and within float32's range (rounded to float32).
        growth_factor: S is multiplied by it (> 1) after ``growth_interval`` good steps.
        backoff_factor: S is multiplied by it (in (0, 1)) after a step with inf/NaN.
        growth_interval: good (finite) steps in a row before S grows, ≥ 1.
        dynamic: False keeps S at ``init_scale`` for good (a static scale). A step whose
            gradients overflow is still skipped, as Megatron's and DeepSpeed's constant
            scalers do (GradScaler has no static mode; its disabled form scales nothing):
            the optimizer never sees an inf or NaN gradient.

    Attributes:
        skipped: how many steps :meth:`update` has skipped since this scaler was made.
    """

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, *,
                 dynamic: bool = True) -> None:
        if not isinstance(dynamic, bool):
            raise ValueError(f"LossScaler: dynamic must be True or False; got {show(dynamic)}")
        self._scale = _checked_scale(init_scale, "init_scale")
        self.growth_factor = real_number("LossScaler", "growth_factor", growth_factor,
                                         low=1.0, low_open=True)
        self.backoff_factor = real_number("LossScaler", "backoff_factor", backoff_factor,
                                          low=0.0, low_open=True, high=1.0)
        self.growth_interval = positive_int("growth_interval", growth_interval, "LossScaler")
        self.dynamic = dynamic
        self._growth_tracker = 0
        self._found: Array | None = None   # unscale_'s verdict, until update reads it
        self.skipped = 0

    def __repr__(self) -> str:
        if not self.dynamic:
            return f"LossScaler({self._scale!r}, dynamic=False)"
        return (f"LossScaler(scale={self._scale!r}, growth_factor={self.growth_factor}, "
                f"backoff_factor={self.backoff_factor}, growth_interval={self.growth_interval})")

    @property
    def scale(self) -> float:
        """The current scale S (a float32 value, as a Python float)."""
        return self._scale

    @property
    def growth_tracker(self) -> int:
        """Good steps in a row since S last changed (GradScaler's ``_growth_tracker``)."""
        return self._growth_tracker

    def scale_gradient(self, dloss: Array) -> Array:
        """``dloss × S``: dL/d(output) (n, out) scaled before ``model.backward`` (a new array).

        Multiplying dL/dout by S is multiplying the loss by S, as ``GradScaler.scale``."""
        return dloss * self._scale

    def unscale_(self, model: Any) -> Array:
        """Divide every gradient of ``model`` by S, in place; return ``found_inf``.

        ``model`` is a :class:`~nnx.Sequential`, a Dense layer or an iterable of layers.
        Each flat gradient buffer of the network (:mod:`nnx.flat`) takes two operations
        (the check, the product); otherwise every ``dW``/``db`` does (rebound on JAX).
        ``found_inf`` is a 0-d boolean array on the gradients' device, True when a scaled
        gradient held inf or NaN (checked before the division, as GradScaler); reading it
        is :meth:`update`'s job. Call it once per step, after backward (RuntimeError on a
        second call before update).
        """
        if self._found is not None:
            raise RuntimeError("LossScaler.unscale_: already called since the last update(); "
                               "call update() once per step")
        inv = _float32(1.0 / self._scale)   # GradScaler: float32(1 / float64(S))
        flat = getattr(model, "flat", None)
        if flat is not None and hasattr(flat, "groups") and flat.ready():
            finite = None
            for group in flat.groups:   # per buffer: all(isfinite(g)), then g *= 1/S in place
                xp, g = group.backend.xp, group.grads
                ok = xp.all(xp.isfinite(g))
                finite = ok if finite is None else finite & ok
                g *= inv
        else:
            finite = self._unscale_layers(layers_of(model, "LossScaler.unscale_"), inv)
        if finite is None:
            raise ValueError(f"LossScaler.unscale_: {type(model).__name__} has no gradients; "
                             "run model.backward first")
        self._found = ~finite
        return self._found

    @staticmethod
    def _unscale_layers(layers: list[Any], inv: float) -> Array | None:
        finite = None
        for layer in layers:
            xp, immutable = layer.backend.xp, layer.backend.immutable_arrays
            for name in ("dW", "db"):
                g = getattr(layer, name, None)
                if g is None:
                    continue
                ok = xp.all(xp.isfinite(g))
                finite = ok if finite is None else finite & ok
                if immutable:
                    setattr(layer, name, g * inv)
                else:
                    g *= inv
        return finite

    def update(self, found_inf: Any = None) -> bool:
        """Read ``found_inf`` (the step's one host read) and update S; True means skip.

        ``found_inf``: what :meth:`unscale_` returned (the default), or a bool. On inf/NaN
        S becomes ``float32(S · backoff_factor)`` and the good-step count restarts; else
        the count grows, and at ``growth_interval`` S becomes ``float32(S · growth_factor)``
        when that is finite and the count restarts. A static scaler only counts skips.
        Returns True when the step must be skipped (do not call the optimizer).
        """
        if found_inf is None:
            found_inf = self._found
            if found_inf is None:
                raise RuntimeError("LossScaler.update: no found_inf; call unscale_(model) "
                                   "after backward, or pass found_inf")
        self._found = None
        found = bool(found_inf)
        if found:
            self.skipped += 1
        if not self.dynamic:
            return found
        if found:
            self._scale = _float32(self._scale * self.backoff_factor)
            self._growth_tracker = 0
            return True
        good = self._growth_tracker + 1
        if good >= self.growth_interval:
            grown = _float32(self._scale * self.growth_factor)
            if math.isfinite(grown):   # never past float32's range
                self._scale = grown
            good = 0
        self._growth_tracker = good
        return False

    def step(self, model: Any, optimizer: Any) -> bool:
        """:meth:`unscale_`, :meth:`update` and ``optimizer.step(model)`` unless the
        gradients overflowed; True when the step was taken."""
        if self.update(self.unscale_(model)):
            return False
        optimizer.step(model)
        return True

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """GradScaler's five entries (``scale``, ``growth_factor``, ``backoff_factor``,
        ``growth_interval``, ``_growth_tracker``) and ``dynamic``."""
        return {"scale": self._scale, "growth_factor": self.growth_factor,
                "backoff_factor": self.backoff_factor, "growth_interval": self.growth_interval,
                "_growth_tracker": self._growth_tracker, "dynamic": self.dynamic}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take the state of :meth:`state_dict` (or of ``GradScaler.state_dict()``, which
        lacks ``dynamic``: this scaler's own setting stays), validated as the constructor."""
        if not isinstance(state, Mapping):
            raise TypeError(f"LossScaler.load_state_dict: expected a dict; got {show(state)}")
        keys = ("scale", "growth_factor", "backoff_factor", "growth_interval",
                "_growth_tracker")
        missing = [k for k in keys if k not in state]
        if missing:
            raise ValueError(f"LossScaler.load_state_dict: the state lacks {', '.join(missing)}"
                             f"; it needs {', '.join(keys)}")
        new = LossScaler(_checked_scale(state["scale"], "state['scale']"),
                         state["growth_factor"], state["backoff_factor"],
                         state["growth_interval"], dynamic=state.get("dynamic", self.dynamic))
        tracker = state["_growth_tracker"]
        if isinstance(tracker, bool) or not isinstance(tracker, int) \
                or not 0 <= tracker < new.growth_interval:
            raise ValueError("LossScaler.load_state_dict: _growth_tracker must be an integer "
                             f"in [0, growth_interval={new.growth_interval}); got {show(tracker)}")
        new._growth_tracker = int(tracker)
        new.skipped = self.skipped
        self.__dict__.update(new.__dict__)


def _checked_scale(value: Any, name: str, owner: str = "LossScaler") -> float:
    x = real_number(owner, name, value, low=0.0, low_open=True)
    s = _float32(x)
    if not 0.0 < s < math.inf:
        raise ValueError(f"{owner}: {name} must be a positive float32 number (about 1.4e-45 "
                         f"to 3.4e38); got {show(value)}")
    return s


def resolve(loss_scale: Any, dense: list[Any]) -> LossScaler | None:
    """What ``fit(loss_scale=...)`` means for a model with Dense layers ``dense``.

    None: a dynamic :class:`LossScaler` when a Dense computes in float16
    (``compute_dtype == "float16"``), no scaling otherwise; False: none; True: a dynamic
    scaler with the defaults; a positive number: that static scale; a LossScaler: itself
    (its state carries over between fits).
    """
    if loss_scale is None:
        f16 = any(getattr(d, "compute_dtype", None) == "float16" for d in dense)
        return LossScaler() if f16 else None
    if loss_scale is False:
        return None
    if loss_scale is True:
        return LossScaler()
    if isinstance(loss_scale, LossScaler):
        return loss_scale
    if isinstance(loss_scale, numbers.Real):
        return LossScaler(_checked_scale(loss_scale, "loss_scale", "fit"), dynamic=False)
    raise TypeError("fit: loss_scale must be None (dynamic scaling for float16 models), "
                    "False, True, a positive number (a static scale) or an "
                    f"nnx.loss_scale.LossScaler; got {show(loss_scale)}")
