"""What every optimizer does besides its update rule: walk a model's parameters, keep state.

A network whose parameters live in flat buffers (:mod:`nnx.flat`) is updated one whole
buffer at a time, a fixed handful of vector operations however many layers it has;
anything else layer by layer, array by array (the portable path). The state moves
between the two forms when a model switches path mid-run, so both give the same numbers.
The update rules themselves are in :mod:`nnx.optim`.
"""

from __future__ import annotations

from typing import Any

Array = Any

__all__ = ["Optimizer", "layers_of"]


class Optimizer:
    """Base class: walks the Dense layers of a model and updates each parameter.

    Two paths give the same numbers. A network whose parameters live in flat buffers
    (:mod:`nnx.flat`; NumPy, CuPy, PyTorch) is updated one whole buffer at a time by
    ``_update_flat(group, state)``, a fixed handful of vector operations however many
    layers it has. Otherwise each layer is updated by ``_update(layer, state)``, with
    ``state`` the per-layer record that ``_new_state(layer)`` creates on its first step:
    the portable path, and the reference the flat one is tested against.
    """

    def __init__(self) -> None:
        self._state: dict[Any, Any] = {}
        self._flat_state: dict[Any, _FlatState] = {}

    def step(self, model: Any) -> None:
        """Apply one update to every parameter of ``model`` that has a gradient.

        ``model`` is a :class:`~nnx.Sequential` (its ``dense_layers``), a single layer,
        or an iterable of layers. Gradients are the layers' ``dW``/``db``, filled by
        ``model.backward``; a parameter whose gradient is None is left alone.
        """
        flat = getattr(model, "flat", None)
        if flat is not None:
            try:
                ready = flat.ready
            except AttributeError:                 # a NumPy scalar has a .flat of its own
                ready = bool
            if ready() and self._step_flat(flat):
                return
        layers = layers_of(model)
        state = self._state
        for layer in layers:
            st = state.get(layer)
            if st is None:
                st = state[layer] = self._unflatten_state(layer) or self._new_state(layer)
            self._update(layer, st)

    def _step_flat(self, flat: Any) -> bool:
        states = []
        for group in flat.groups:
            st = self._flat_state.get(group)
            if st is None:
                st = self._flatten_state(group)
                if st is None:      # per-layer state that one flat record cannot hold
                    return False
            states.append(st)
        for group, st in zip(flat.groups, states):
            self._update_flat(group, st)
        return True

    def reset(self) -> None:
        """Forget all state (momentum buffers, moments, step counts)."""
        self._state.clear()
        self._flat_state.clear()

    zero_state = reset

    def state_of(self, layer: Any) -> Any:
        """The state record of ``layer`` (None before its first step). For a layer updated
        through a flat buffer it is a snapshot whose arrays are views of the live state."""
        st = self._state.get(layer)
        if st is not None:
            return st
        for group, fst in self._flat_state.items():
            if layer in group.index:
                return fst.layer_state(group, layer)
        return None

    # -- moving state between the two paths (a model flattened or un-flattened mid-run) --
    def _flatten_state(self, group: Any) -> _FlatState | None:
        members = [self._state.get(layer) for layer in group.layers]
        st = _FlatState(group, slots=self._slots)
        if all(m is None for m in members):
            self._flat_state[group] = st
            return st
        if any(m is None for m in members) or len({m.t for m in members}) != 1:
            return None
        st.t, st.fresh = members[0].t, False
        for layer, m in zip(group.layers, members):
            for kind in ("a", "b")[: self._slots]:
                for i, name in enumerate(m.names):
                    if getattr(layer, name) is None:
                        continue
                    slot = getattr(m, kind)[i]
                    if slot is None:
                        return None
                    group.backend.ops.copy_into(st.view(kind, group, layer, name), slot)
        for layer in group.layers:
            del self._state[layer]
        self._flat_state[group] = st
        return st

    def _unflatten_state(self, layer: Any) -> Any:
        for group, fst in list(self._flat_state.items()):
            if layer in group.index:
                del self._flat_state[group]
                xp = group.backend.xp
                for member in group.layers:
                    snap = fst.layer_state(group, member)
                    snap.a = [None if x is None else xp.asarray(x, copy=True) for x in snap.a]
                    snap.b = [None if x is None else xp.asarray(x, copy=True) for x in snap.b]
                    self._state[member] = snap
                return self._state[layer]
        return None

    #: how many state buffers a parameter has (SGD with momentum: 1, Adam: 2).
    _slots = 0

    def _new_state(self, layer: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _update(self, layer: Any, state: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _update_flat(self, group: Any, state: _FlatState) -> None:  # pragma: no cover
        raise NotImplementedError


def layers_of(model: Any, owner: str = "Optimizer.step") -> list[Any]:
    """The layers with parameters of ``model``: a network's ``dense_layers``, a layer itself,
    or a list/tuple of layers; a TypeError naming ``owner`` for anything else."""
    layers = getattr(model, "dense_layers", None)
    if layers is not None:
        return layers
    if hasattr(model, "param_names"):
        return [model]
    layers = list(model) if isinstance(model, (list, tuple)) else None
    if layers is None or not all(hasattr(layer, "param_names") for layer in layers):
        raise TypeError(f"{owner} takes a model: a network, a layer or a list of layers "
                        f"(nnx.Sequential, nnx.Dense, [nnx.Dense, ...]); got "
                        f"{type(model).__name__}")
    return layers


class _LayerState:
    """Per-layer optimizer state: a step count and one slot list per kind of buffer."""

    __slots__ = ("names", "slots", "xp", "ops", "t", "a", "b")

    def __init__(self, layer: Any) -> None:
        self.names = tuple(layer.param_names)
        self.slots = tuple((i, name, "d" + name) for i, name in enumerate(self.names))
        self.xp = layer.backend.xp
        self.ops = layer.backend.ops    # p -= α g without a full-size temporary where it can
        self.t = 0
        self.a: list[Array | None] = [None] * len(self.names)  # momentum buffer / Adam m
        self.b: list[Array | None] = [None] * len(self.names)  # Adam v


class _FlatState:
    """One flat group's optimizer state: a step count and up to two flat buffers laid out
    as the parameters (``a``: momentum buffer or Adam's m; ``b``: Adam's v)."""

    __slots__ = ("t", "fresh", "a", "b")

    def __init__(self, group: Any, *, slots: int) -> None:
        xp = group.backend.xp
        self.t = 0
        self.fresh = True          # no step yet: SGD's momentum buffer starts as g
        self.a = xp.zeros_like(group.params) if slots >= 1 else None
        self.b = xp.zeros_like(group.params) if slots >= 2 else None

    def view(self, kind: str, group: Any, layer: Any, name: str) -> Array:
        w_at, b_at = group.index[layer]
        at, shape = (w_at, layer.W.shape) if name == "W" else (b_at, layer.b.shape)
        return group.backend.ops.view(getattr(self, kind), at, tuple(shape))

    def layer_state(self, group: Any, layer: Any) -> _LayerState:
        st = _LayerState(layer)
        st.t = self.t
        for kind in ("a", "b"):
            if getattr(self, kind) is not None and not (kind == "a" and self.fresh):
                getattr(st, kind)[:] = [self.view(kind, group, layer, name)
                                        if getattr(layer, name) is not None else None
                                        for name in st.names]
        return st
