"""Hand-written NumPy training steps: how fast the machine is, and the overhead floor.

The benchmark's XOR case is all per-call overhead, so its absolute time depends on the
machine's single-core speed. This step does exactly nnx's work for that case — forward
(2-4-1, tanh), the stable sigmoid cross-entropy on logits with its loss value, backward
(``input_grad=False``), SGD — as straight NumPy calls with no framework around them.
Timed beside nnx's step, it calibrates the absolute target (25 µs where this step
takes about 14 µs) to the machine at hand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["xor_step", "mlp_step"]


def xor_step(*, lr: float = 0.5, seed: int = 0) -> Callable[[], None]:
    """One SGD step of a 2-4-1 tanh network on the four XOR points, in plain NumPy."""
    rng = np.random.default_rng(seed)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    W1 = rng.standard_normal((4, 2)).astype(np.float32)
    b1 = np.zeros(4, np.float32)
    W2 = rng.standard_normal((1, 4)).astype(np.float32)
    b2 = np.zeros(1, np.float32)
    step = np.asarray(lr, np.float32)
    n = y.size

    def run() -> None:
        a1 = np.tanh(x @ W1.T + b1)                        # forward
        z = a1 @ W2.T + b2
        e = np.exp(-np.abs(z))                             # loss and dL/dz, stable
        m = np.minimum(z, 0.0)
        np.add.reduce(z - m - z * y + np.log1p(e), axis=None) / n
        dz = (np.exp(m) / (1.0 + e) - y) / n
        dW2, db2 = dz.T @ a1, np.add.reduce(dz, axis=0)    # backward
        d1 = (dz @ W2) * (1.0 - a1 * a1)
        dW1, db1 = d1.T @ x, np.add.reduce(d1, axis=0)
        for p, g in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2)):
            np.subtract(p, np.multiply(g, step), out=p)    # SGD

    return run


def mlp_step(sizes: Sequence[int], batch: int, *, optimizer: str = "adam", lr: float = 1e-3,
             activation: str = "relu", loss: str = "softmax_cross_entropy",
             dtype: str = "float32", seed: int = 0) -> Callable[[], None]:
    """One training step of an MLP, hand-written in NumPy with every parameter, gradient and
    optimizer state in one flat buffer: the overhead floor a framework's small-network step
    is measured against.

    Forward (``activation`` ``"relu"`` or ``"tanh"``), the loss value and dL/dz
    (``"softmax_cross_entropy"`` by log-sum-exp, or ``"sigmoid_binary_cross_entropy"``
    on logits), backward (no dX for the input), then SGD (``optimizer="sgd"``) or Adam
    (PyTorch's form) over the whole buffer at once, its temporaries in preallocated
    scratch: as few NumPy calls as the step allows.
    """
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    pairs = list(zip(sizes, sizes[1:]))
    n_w = sum(i * o for i, o in pairs)
    size = n_w + sum(o for _, o in pairs)
    params, grads = np.empty(size, dt), np.zeros(size, dt)
    m, v, s1, s2 = (np.zeros(size, dt) for _ in range(4))
    W, b, dW, db = [], [], [], []
    w_at, b_at = 0, n_w
    for i, o in pairs:
        W.append(params[w_at:w_at + i * o].reshape(o, i))
        dW.append(grads[w_at:w_at + i * o].reshape(o, i))
        b.append(params[b_at:b_at + o])
        db.append(grads[b_at:b_at + o])
        W[-1][...] = rng.standard_normal((o, i)) * np.sqrt(2.0 / i)
        b[-1][...] = 0.0
        w_at, b_at = w_at + i * o, b_at + o
    x = rng.standard_normal((batch, sizes[0])).astype(dt)
    if loss == "softmax_cross_entropy":
        y = np.eye(sizes[-1], dtype=dt)[rng.integers(0, sizes[-1], batch)]
        n = dt.type(batch)
    elif loss == "sigmoid_binary_cross_entropy":
        y = rng.integers(0, 2, (batch, sizes[-1])).astype(dt)
        n = dt.type(y.size)
    else:
        raise ValueError(f"no hand-written step for loss {loss!r}")
    if activation not in ("relu", "tanh"):
        raise ValueError(f"no hand-written step for activation {activation!r}")
    relu, softmax = activation == "relu", loss == "softmax_cross_entropy"
    from scipy.special import expit
    t = [0]
    b1, b2, eps = 0.9, 0.999, 1e-8
    last = len(pairs) - 1

    def run() -> None:
        acts = [x]
        for k in range(len(pairs)):                       # forward
            z = np.dot(acts[-1], W[k].T)
            z += b[k]
            if k < last:
                if relu:
                    np.maximum(z, 0.0, out=z)
                else:
                    np.tanh(z, out=z)
            acts.append(z)
        z = acts[-1]
        if softmax:                                       # softmax cross-entropy
            shifted = z - np.maximum.reduce(z, axis=1, keepdims=True)
            e = np.exp(shifted)
            total = np.add.reduce(e, axis=1, keepdims=True)
            shifted -= np.log(total)
            shifted *= y
            -np.add.reduce(shifted, None) / n
            e /= total
        else:                                             # sigmoid cross-entropy on logits
            term = np.logaddexp(0.0, z)
            term -= z * y
            np.add.reduce(term, None) / n
            e = expit(z)
        e -= y
        e /= n
        d = e
        for k in range(last, -1, -1):                     # backward
            np.dot(d.T, acts[k], out=dW[k])
            np.add.reduce(d, axis=0, out=db[k])
            if k:
                d = np.dot(d, W[k])
                if relu:
                    d *= acts[k] > 0
                else:
                    d *= 1.0 - acts[k] * acts[k]
        if optimizer == "sgd":                            # the update, whole buffer
            np.subtract(params, np.multiply(grads, lr, out=s1), out=params)
            return
        t[0] += 1
        step = lr / (1.0 - b1 ** t[0])
        np.multiply(m, b1, out=m)
        np.add(m, np.multiply(grads, 1.0 - b1, out=s1), out=m)
        np.multiply(v, b2, out=v)
        np.multiply(grads, grads, out=s1)
        np.add(v, np.multiply(s1, 1.0 - b2, out=s1), out=v)
        np.sqrt(v, out=s1)
        np.divide(s1, np.sqrt(1.0 - b2 ** t[0]), out=s1)
        np.add(s1, eps, out=s1)
        np.divide(m, s1, out=s2)
        np.subtract(params, np.multiply(s2, step, out=s2), out=params)

    return run
