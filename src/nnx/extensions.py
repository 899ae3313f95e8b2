"""Extension points: how the tools above the core plug into ``fit`` and ``predict``.

The core (this package's top-level modules) never imports the tools built on it. Where
the training loop needs one of them, it asks here instead, and the tool registers itself
when it is imported (``import nnx`` imports :mod:`nnx.distributed`, which registers both
hooks below):

* **data parallelism** — ``fit(distributed=...)`` hands its argument to the registered
  resolver, which answers ``None`` (train in one process) or an object with the
  :class:`DataParallelHooks` methods that :class:`nnx.trainer.Trainer` calls;
* **lazy arrays** — ``predict(X)`` first offers ``X`` to each registered predictor
  (``accepts(X)``); the first that accepts it computes the answer (the Dask scorer of
  :mod:`nnx.distributed.dask_predict` returns a lazy dask array).

A hook costs one call per ``fit`` or ``predict``, never one per training step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["DataParallelHooks", "register_data_parallel", "resolve_data_parallel",
           "register_predictor", "predictor_for"]

Array = Any


class DataParallelHooks(Protocol):
    """What the training loop calls on a data-parallel helper (nnx.distributed.DataParallel)."""

    is_root: bool

    def start(self, model: Any, *, n: int, n_batches: int, seed: Any) -> Any:
        """Before the first step; returns the shuffling seed every rank uses."""

    def shard(self, a: int, b: int) -> tuple[int, int]:
        """This process's rows [lo, hi) of the global batch [a, b)."""

    def all_reduce(self, value: Array | None, n_local: int, n_global: int) -> Array:
        """Make every gradient the global batch's; return the global batch's loss."""


_resolve_data_parallel: Callable[[Any], DataParallelHooks | None] | None = None
_predictors: list[tuple[Callable[[Any], bool], Callable[..., Any]]] = []


def register_data_parallel(resolve: Callable[[Any], DataParallelHooks | None]) -> None:
    """Install ``resolve(distributed)``, which says what ``fit(distributed=...)`` means."""
    global _resolve_data_parallel
    _resolve_data_parallel = resolve


def resolve_data_parallel(distributed: Any) -> DataParallelHooks | None:
    """``fit``'s ``distributed`` argument as a :class:`DataParallelHooks`, or None."""
    if _resolve_data_parallel is not None:
        return _resolve_data_parallel(distributed)
    if distributed is None or distributed is False:
        return None
    raise RuntimeError(f"fit(distributed={distributed!r}) needs nnx.distributed, which is "
                       "not loaded; import nnx.distributed first")


def register_predictor(accepts: Callable[[Any], bool], predict: Callable[..., Any]) -> None:
    """Route ``predict(model, X, batch_size=...)`` to ``predict`` whenever ``accepts(X)``."""
    entry = (accepts, predict)
    if entry not in _predictors:
        _predictors.append(entry)


def predictor_for(X: Any) -> Callable[..., Any] | None:
    """The registered predictor that accepts ``X``, or None for ordinary arrays."""
    for accepts, predict in _predictors:
        if accepts(X):
            return predict
    return None
