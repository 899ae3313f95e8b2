"""nnx: neural networks from first principles, on any Array API library.

    import nnx
    nnx.set_backend("numpy")                  # or "cupy", "torch", "jax", "array_api_strict"
    model = nnx.MLP([2, 4, 1], activation="tanh", output_activation="sigmoid", seed=0)
    p = model.forward(x)                      # forward pass, caching z and a
    loss, dp = nnx.losses.binary_cross_entropy(p, y)
    model.backward(dp, input_grad=False)      # fills every Dense's dW and db
"""

from . import activations, distributed, init, losses, optim, training
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
from .perceptron import Perceptron, PerceptronResult
from .sequential import MLP, Sequential

__version__ = "0.1.0"

__all__ = [
    "activations", "distributed", "init", "losses", "optim", "training",
    "Backend", "available_backends", "get_backend", "set_backend", "use_backend",
    "asarray", "to_numpy",
    "Layer", "Dense", "Identity", "Step", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "GELU",
    "Softmax", "make_activation", "Sequential", "MLP",
    "gradcheck", "numerical_gradients",
    "Perceptron", "PerceptronResult", "save", "load", "CheckpointError",
]
