"""The chapter as runnable demos: each prints its result and writes a PNG.

    nnx demo digits                    # the command line (see nnx.cli)
    nnx.demos.run("xor", out="figs", quick=True, backend="torch")

One module per demo; each defines ``run(ctx) -> dict`` and computes with nnx on the
chosen backend, bringing arrays to the host only for printing and plotting. Plots use
matplotlib's object-oriented API (no pyplot, no display): headless by construction.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from ..backend import Backend, resolve_backend, use_backend
from ._common import DemoContext, MissingDependency

__all__ = ["DEMOS", "run", "DemoContext", "MissingDependency"]

#: every demo, in the chapter's order, with the line ``nnx demo --help`` shows.
DEMOS: dict[str, str] = {
    "perceptron": "10.1-10.2  Rosenblatt's rule converges on AND and OR, never on XOR",
    "xor": "10.2       a hidden layer solves XOR; a single layer cannot",
    "activations": "10.4       each activation beside its derivative",
    "backprop": "10.6       the chapter's worked example, and vanishing gradients",
    "init": "10.7       activation variance over 20 layers: zeros, Xavier, He",
    "uat": "10.8       one hidden layer fits a continuous function better as it widens",
    "digits": "main job   an MLP on scikit-learn's handwritten digits (>= 97% test accuracy)",
}


def run(name: str, *, out: str | os.PathLike = "nnx-demos", quick: bool = False,
        backend: str | Backend | None = None, seed: int = 0) -> dict[str, Any]:
    """Run demo ``name``; returns its results (always with ``"png"``, the figure's path).

    Args:
        name: one of :data:`DEMOS`.
        out: folder for the PNG (created if missing).
        quick: a small, fast version (for tests); the full one makes the README figures.
        backend: the backend to compute on; the active one when None.
        seed: the seed of every random draw.

    Raises:
        ValueError: unknown ``name`` (the message lists the demos) or backend.
        MissingDependency: matplotlib or scikit-learn is not installed.
    """
    if name not in DEMOS:
        raise ValueError(f"unknown demo {name!r}; the demos are: {', '.join(DEMOS)}")
    target = resolve_backend(backend)
    module = importlib.import_module(f"{__name__}.{name}")
    ctx = DemoContext(name=name, out=os.fspath(out), quick=quick, seed=seed, backend=target)
    with use_backend(target):
        return module.run(ctx)
