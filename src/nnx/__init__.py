"""nnx: neural networks from first principles, on any Array API library.

    import nnx
    nnx.set_backend("numpy")                  # or "cupy", "torch", "jax", "array_api_strict"
    model = nnx.MLP([2, 4, 1], activation="tanh", output_activation="sigmoid", seed=0)
    p = model.forward(x)                      # forward pass, caching z and a
    loss, dp = nnx.losses.binary_cross_entropy(p, y)
    model.backward(dp, input_grad=False)      # fills every Dense's dW and db

The top-level modules are the chapter made executable (layers, activations, losses,
init, the forward and backward pass, optimizers, training, model files); the tools
built on them live in subpackages that import them and are never imported by them:
``nnx.distributed`` (MPI data parallelism, Dask prediction), ``nnx.sklearn``
(scikit-learn estimators), ``nnx.benchmark`` (``nnx bench``), ``nnx.demos``.
"""

from . import (
    activations,
    callbacks,
    init,
    losses,
    optim,
    precision,
    schedules,
    summary,
    training,
)
from ._version import __version__ as __version__
from .activation_layers import (
    GELU,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Step,
    Tanh,
    make_activation,
)
from .backend import (
    Backend,
    asarray,
    available_backends,
    get_backend,
    set_backend,
    to_numpy,
    use_backend,
)
from .gradcheck import gradcheck, numerical_gradients
from .io import CheckpointError, load, save
from .layers import Dense, Layer
from .loss_scale import LossScaler
from .perceptron import Perceptron, PerceptronResult
from .precision import get_matmul_precision, matmul_precision, set_matmul_precision
from .sequential import MLP, Sequential

# Scale-out registers its hooks with nnx.extensions here (fit(distributed=...), dask
# arrays in predict); it sits above the core, so it is imported after it.
from . import distributed  # noqa: E402  (isort: skip)
from .export import export_onnx  # noqa: E402  (a tool; imports onnx only when called)

__all__ = [
    "activations", "callbacks", "distributed", "init", "losses", "optim", "precision",
    "schedules", "summary", "training",
    "set_matmul_precision", "get_matmul_precision", "matmul_precision",
    "Backend", "available_backends", "get_backend", "set_backend", "use_backend",
    "asarray", "to_numpy",
    "Layer", "Dense", "Identity", "Step", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "GELU",
    "Softmax", "make_activation", "Sequential", "MLP",
    "gradcheck", "numerical_gradients",
    "Perceptron", "PerceptronResult", "save", "load", "CheckpointError", "export_onnx",
    "loss_scale", "LossScaler",
]
