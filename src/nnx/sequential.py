"""Networks as stacks of layers: the forward pass (10.5) and backpropagation (10.6)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from . import backends as _registry
from . import precision as _precision
from .activation_layers import ActivationLayer, make_activation
from .backend import Backend, resolve_backend
from .flat import FlatParameters, flatten
from .layers import Dense, Layer
from .summary import Summary, summarize
from .training import fit as _fit
from .training import predict as _predict

Array = Any

__all__ = ["Sequential", "MLP", "default_init"]


def _dense_in(layers: Sequence[Layer]) -> list[Dense]:
    """The Dense layers of ``layers`` in order, looking inside nested Sequentials."""
    found: list[Dense] = []
    for layer in layers:
        if isinstance(layer, Dense):
            found.append(layer)
        elif isinstance(layer, Sequential):
            found.extend(layer.dense_layers)
    return found


class Sequential(Layer):
    """Layers applied in order: a⁽ˡ⁾ = layerₗ(a⁽ˡ⁻¹⁾), a⁽⁰⁾ = x.

    ``backward(dy)`` walks the layers in reverse, each turning dL/d(its output) into
    dL/d(its input) — δ⁽ˡ⁾ = (W⁽ˡ⁺¹⁾ᵀ δ⁽ˡ⁺¹⁾) ⊙ f'(z⁽ˡ⁾) — and filling ``dW``/``db``.
    """

    def __init__(self, *layers: Layer) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is {layer!r}, not an nnx Layer")
        dense = _dense_in(layers)
        for a, b in zip(dense, dense[1:]):
            if a.out_features != b.in_features:
                raise ValueError(f"Sequential: {a!r} produces {a.out_features} features but "
                                 f"the next {b!r} expects {b.in_features}")
        names = {layer.backend.name for layer in dense}
        if len(names) > 1:
            raise ValueError(f"Sequential: its Dense layers live on different backends "
                             f"({', '.join(sorted(names))}); build them under one backend")
        self.layers: list[Layer] = list(layers)
        #: the parameters' dtype object: an output in a compute dtype is cast back to it
        self._master = dense[0]._dt if dense else None
        #: the parameters and gradients in one buffer per dtype (None on backends that keep
        #: one array per parameter): :mod:`nnx.flat`. A nested network's layers move into
        #: this network's buffer; trained on its own, it then takes the per-array path.
        self.flat: FlatParameters | None = flatten(dense)
        for layer in layers:
            if isinstance(layer, Sequential):
                layer.flat = None

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"{type(self).__name__}(\n  {inner}\n)"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    @property
    def dense_layers(self) -> list[Dense]:
        """The layers with trainable parameters, in order (nested networks' included)."""
        return _dense_in(self.layers)

    @property
    def backend(self) -> Backend:
        """The backend the parameters live on (the active one if there are none)."""
        dense = self.dense_layers
        return dense[0].backend if dense else resolve_backend()

    def parameters(self) -> dict[str, Array]:
        """Every trainable array, keyed ``"<layer index>.<name>"`` (``"0.W"``, ``"0.b"``, ...)."""
        return {f"{i}.{name}": p for i, layer in enumerate(self.layers)
                for name, p in layer.parameters().items()}

    @property
    def compute_dtype(self) -> str | None:
        """The dtype the Dense layers multiply in (:mod:`nnx.precision`): None for their own
        ``dtype``, ``"bfloat16"`` or ``"float16"``; ``"mixed"`` when they differ. Setting it
        sets every Dense layer's (nested networks' too)."""
        found = {layer.compute_dtype for layer in self.dense_layers}
        return found.pop() if len(found) == 1 else ("mixed" if found else None)

    @compute_dtype.setter
    def compute_dtype(self, name: str | None) -> None:
        dense = self.dense_layers
        for layer in dense:          # check every layer before changing any
            _precision.compute_dtype(name, dtype=layer.dtype, backend=layer.backend,
                                     owner=f"{type(self).__name__}.compute_dtype")
        for layer in dense:
            layer.compute_dtype = name

    def forward(self, x: Array) -> Array:
        """Push ``x`` (n, in) through every layer, caching what backward needs.

        An activation right after a Dense may compute in place on the Dense's output (a
        fresh array nobody else holds): one (n, width) array less per layer. With a compute
        dtype (:mod:`nnx.precision`) the output is cast back to the parameters' dtype, so
        that losses compute in float32."""
        fresh = False                # whether x is an output this forward made
        for layer in self.layers:
            if fresh and isinstance(layer, ActivationLayer):
                x = layer.forward(x, overwrite_x=True)
            else:
                x = layer.forward(x)
            fresh = isinstance(layer, Dense)
        if self._master is not None and x.dtype != self._master:
            x = self._to_master(x)
        return x

    def _to_master(self, x: Array) -> Array:
        """A 16-bit output of layers with a compute dtype, cast to the parameters' dtype."""
        dense = self.dense_layers
        if str(x.dtype).endswith("float16") and any(d.compute_dtype for d in dense):
            return dense[0].backend.xp.astype(x, dense[0]._dtype)
        return x

    def backward(self, dy: Array, *, input_grad: bool = True,
                 retain_cache: bool = False) -> Array | None:
        """Backpropagate dL/d(output) (n, out); returns dL/dx (n, in).

        With ``input_grad=False`` the first layer skips the product for dL/dx (nobody
        needs it when x is data) and None is returned.

        Backward consumes what forward cached, as PyTorch frees its saved tensors: each
        layer drops its cache once its gradients are made, and the activation layers
        write dL/dz into the dL/da that the layer above handed them. So at most two
        (n, width) gradient arrays are alive beside the caches not yet consumed. Run
        forward again before another backward, or pass ``retain_cache=True``.
        """
        layers = self.layers
        release = not retain_cache
        mine = False                 # whether dy is an array this backward made
        for i in range(len(layers) - 1, -1, -1):
            layer = layers[i]
            if mine and release and isinstance(layer, ActivationLayer):
                out = layer.backward(dy, input_grad=input_grad or i > 0, overwrite_dy=True)
            elif isinstance(layer, Sequential):   # a nested network releases as this one does
                out = layer.backward(dy, input_grad=input_grad or i > 0, retain_cache=True)
            else:
                out = layer.backward(dy, input_grad=input_grad or i > 0)
            if release:
                layer.release_cache()
            if out is not dy:        # a fresh array from nnx's own layers is ours to reuse
                mine = isinstance(layer, (Dense, ActivationLayer))
            dy = out
        return dy

    def release_cache(self) -> None:
        for layer in self.layers:
            layer.release_cache()

    def fit(self, X: Any, y: Any, *, loss: Any, optimizer: Any, epochs: int,
            batch_size: int | None = None, shuffle: bool = True, seed: Any = None,
            validation_data: tuple[Any, Any] | None = None, progress: bool = True,
            distributed: Any = None, callbacks: Sequence[Any] | None = None,
            loss_scale: Any = None, capture: bool | None = None) -> Any:
        """Train by minibatch gradient descent; see :func:`nnx.training.fit`. Returns a History."""
        return _fit(self, X, y, loss=loss, optimizer=optimizer, epochs=epochs,
                    batch_size=batch_size, shuffle=shuffle, seed=seed,
                    validation_data=validation_data, progress=progress, distributed=distributed,
                    callbacks=callbacks, loss_scale=loss_scale, capture=capture)

    def predict(self, X: Any, batch_size: int | None = None) -> Array:
        """The output (n, out) for inputs (n, in); see :func:`nnx.training.predict`."""
        return _predict(self, X, batch_size=batch_size)

    def summary(self, batch_size: int | None = None, optimizer: Any = None,
                print_fn: Any = print) -> Summary:
        """Print the table of layers, output shapes, parameter counts and memory, and
        return it as a :class:`~nnx.summary.Summary` (``str()`` is the table); see
        :func:`nnx.summary.summarize`. ``print_fn=None`` prints nothing."""
        table = summarize(self, batch_size=batch_size, optimizer=optimizer)
        if print_fn is not None:
            print_fn(str(table))
        return table


def _fresh_activation(spec: str | Layer | None) -> Layer:
    """A new activation layer per position: a Layer passed in is copied, so that no two
    positions share one forward cache."""
    layer = make_activation(spec)
    return copy.deepcopy(layer) if layer is spec else layer


_HE_FAMILY = {"relu", "leaky_relu", "gelu", "gelu_tanh"}


def default_init(activation: str | Layer | None) -> str:
    """He for the ReLU family, Xavier (uniform, Glorot's own) for everything else."""
    name = activation if isinstance(activation, str) else getattr(activation, "name", None)
    return "he_normal" if name in _HE_FAMILY else "xavier_uniform"


class MLP(Sequential):
    """A multilayer perceptron: Dense → activation for each hidden layer, then Dense → output.

    Args:
        sizes: layer widths from input to output, e.g. ``[2, 4, 1]``.
        activation: hidden activation name (``"relu"``, ``"tanh"``, ``"sigmoid"``,
            ``"leaky_relu"``, ``"gelu"``, ``"gelu_tanh"``, ``"step"``, ``"identity"``).
        output_activation: activation after the last Dense (None: raw scores/logits).
        init: initializer name for every Dense; by default He for the ReLU family and
            Xavier for sigmoid/tanh (chosen by ``activation``).
        seed: one seed for the whole network; each layer draws from its own child seed.
        dtype: ``"float32"`` or ``"float64"``: the parameters (the master weights).
        backend: where the parameters live; the active backend when None.
        compute_dtype: None, ``"bfloat16"`` or ``"float16"``: the dtype the matrix
            products and activations run in, with float32 master weights and a float32
            output (:mod:`nnx.precision`); needs ``dtype="float32"``.
    """

    def __init__(self, sizes: Sequence[int], activation: str | None = "relu",
                 output_activation: str | None = None, init: Any = None, seed: Any = None,
                 dtype: str = "float32", backend: str | Backend | None = None,
                 compute_dtype: str | None = None) -> None:
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs an input and an output width, e.g. [2, 4, 1]; "
                             f"got {sizes}")
        make_activation(activation)  # validate names before drawing any weights
        if output_activation is not None:
            make_activation(output_activation)
        init = default_init(activation) if init is None else init
        backend = resolve_backend(backend)
        _precision.compute_dtype(compute_dtype, dtype=dtype, backend=backend, owner="MLP")
        seeds = _registry.spawn_seeds(seed, len(sizes) - 1)
        layers: list[Layer] = []
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
            layers.append(Dense(n_in, n_out, init=init, dtype=dtype, seed=seeds[i],
                                backend=backend, compute_dtype=compute_dtype))
            is_output = i == len(sizes) - 2
            if not is_output:
                layers.append(_fresh_activation(activation))
            elif output_activation is not None:
                layers.append(_fresh_activation(output_activation))
        super().__init__(*layers)
        self.sizes = sizes
        self.activation = activation
        self.output_activation = output_activation
