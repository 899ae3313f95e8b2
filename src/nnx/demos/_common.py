"""What every demo shares: its context, headless figures, and a grid over the plane."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..backend import Backend, to_numpy
from ..backends import install_hint

__all__ = ["DemoContext", "MissingDependency", "new_figure", "require", "plane_grid",
           "host", "COLORS"]

#: one colour per curve, colour-blind safe (Okabe–Ito).
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]


class MissingDependency(RuntimeError):
    """A demo needs a library that is not installed; the message says how to get it."""


@dataclass(frozen=True)
class DemoContext:
    """Where a demo writes, how big it runs, and what it computes on."""

    name: str
    out: str
    quick: bool
    seed: int
    backend: Backend

    def pick(self, full: Any, quick: Any) -> Any:
        """``quick`` in the fast (test) mode, else ``full``."""
        return quick if self.quick else full

    def save(self, fig: Any) -> str:
        """Write ``fig`` as ``<out>/<name>.png`` and return the path."""
        os.makedirs(self.out, exist_ok=True)
        path = os.path.join(self.out, f"{self.name}.png")
        fig.savefig(path, dpi=self.pick(110, 60))
        print(f"wrote {path}")
        return path


def require(module: str) -> Any:
    """Import ``module`` (matplotlib, sklearn) or raise :class:`MissingDependency`."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"this demo needs {module.split('.')[0]} ({exc}); install the demo extras with: "
            f"{install_hint('demo')}") from None


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure drawn with Agg, never shown: no pyplot, no display needed."""
    figure = require("matplotlib.figure")
    return figure.Figure(figsize=(width, height), layout="constrained")


def host(x: Any) -> Any:
    """A host copy for matplotlib (the demos never import an array library)."""
    return to_numpy(x)


def plane_grid(xp: Any, backend: Backend, lo: float, hi: float, n: int) -> tuple[Any, Any, Any]:
    """``(points (n*n, 2) on the backend, gx (n, n) host, gy (n, n) host)`` covering a square."""
    t = xp.linspace(lo, hi, n, dtype=xp.float32, device=backend.device)
    gy, gx = xp.meshgrid(t, t, indexing="ij")
    points = xp.stack([xp.reshape(gx, (-1,)), xp.reshape(gy, (-1,))], axis=1)
    return points, host(gx), host(gy)
