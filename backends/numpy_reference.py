"""A hand-written NumPy training step of the XOR network: how fast the machine is.

The benchmark's XOR case is all per-call overhead, so its absolute time depends on the
machine's single-core speed. This step does exactly nnx's work for that case — forward
(2-4-1, tanh), the stable sigmoid cross-entropy on logits with its loss value, backward
(``input_grad=False``), SGD — as straight NumPy calls with no framework around them.
Timed beside nnx's step, it calibrates the absolute target (25 µs where this step
takes about 14 µs) to the machine at hand.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["xor_step"]


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
