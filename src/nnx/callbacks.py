"""Callbacks for :func:`nnx.fit`: watch each epoch, stop early, keep checkpoints.

    stop = nnx.callbacks.EarlyStopping(monitor="val_loss", patience=5,
                                       restore_best_weights=True)
    keep = nnx.callbacks.ModelCheckpoint("ckpt/epoch{epoch}-{val_loss:.4f}.safetensors")
    model.fit(X, y, ..., validation_data=(X_val, y_val), callbacks=[stop, keep])

The protocol (Keras'): a callback is any object with some of these methods, which
``fit`` calls in the order the callbacks are listed:

``on_train_begin(logs)``         once, before the first epoch (``logs`` is ``{}``)
``on_epoch_begin(epoch, logs)``  before each epoch (``logs`` is ``{}``)
``on_epoch_end(epoch, logs)``    after each epoch and its validation
``on_train_end(logs)``           once, when training ends normally (the last epoch's logs);
                                 not when ``fit`` raises

``epoch`` counts from 0 (``history.loss[epoch]``). ``logs`` maps ``"loss"`` (the epoch's
mean training loss), ``"lr"`` (the learning rate during the epoch) and, with
``validation_data``, ``"val_loss"`` and, for the classification losses,
``"val_accuracy"`` to floats. Before ``on_train_begin`` ``fit`` sets three attributes on
every callback: ``model``, ``optimizer`` (whose ``lr`` a callback may change) and
``params`` (``epochs``, ``steps`` per epoch, ``batch_size``, ``metrics``: the keys
``logs`` will have, and ``is_root``: False on every MPI rank but the first when
training is data-parallel, where every rank calls the callbacks with the same logs).
It also sets ``stop_training = False``; a callback that sets it to True in any hook
ends training after the current epoch's ``on_epoch_end`` calls.
Subclass :class:`Callback` to get every method as a no-op. Hooks run on the host once
per epoch, never per step. Learning-rate schedules are in :mod:`nnx.schedules`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from . import io as _io
from .inputs import real_number

__all__ = ["Callback", "LambdaCallback", "EarlyStopping", "ModelCheckpoint"]

Logs = dict[str, float]


class Callback:
    """Base class: every hook of the protocol, doing nothing. Override the ones you need."""

    model: Any = None
    optimizer: Any = None
    params: dict[str, Any] = {}
    stop_training: bool = False

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Before epoch ``epoch`` (from 0)."""

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """After epoch ``epoch`` (from 0) and its validation; ``logs`` as described above."""

    def on_train_end(self, logs: Logs | None = None) -> None:
        """After the last epoch, when training ends normally."""


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda epoch,
    logs: print(epoch, logs["loss"]))``. Each function takes the hook's arguments; one
    given for ``on_epoch_end`` that returns True stops training."""

    def __init__(self, on_train_begin: Callable[..., Any] | None = None,
                 on_epoch_begin: Callable[..., Any] | None = None,
                 on_epoch_end: Callable[..., Any] | None = None,
                 on_train_end: Callable[..., Any] | None = None) -> None:
        for name, fn in (("on_train_begin", on_train_begin), ("on_epoch_begin", on_epoch_begin),
                         ("on_epoch_end", on_epoch_end), ("on_train_end", on_train_end)):
            if fn is not None and not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be callable; got {fn!r}")
        self._fns = (on_train_begin, on_epoch_begin, on_epoch_end, on_train_end)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if self._fns[0] is not None:
            self._fns[0](logs)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        if self._fns[1] is not None:
            self._fns[1](epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if self._fns[2] is not None and self._fns[2](epoch, logs) is True:
            self.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self._fns[3] is not None:
            self._fns[3](logs)


# -- what the monitoring callbacks share ---------------------------------------------------
def resolve_mode(owner: str, monitor: str, mode: str) -> str:
    """``"min"`` or ``"max"``; ``"auto"`` reads the name: ``*loss`` → min, ``*acc*`` → max."""
    if not isinstance(monitor, str):
        raise TypeError(f"{owner}: monitor must be a name such as 'val_loss'; got {monitor!r}")
    if mode in ("min", "max"):
        return mode
    if mode != "auto":
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max'; got {mode!r}")
    if monitor.endswith("loss"):
        return "min"
    if "acc" in monitor:
        return "max"
    raise ValueError(f"{owner}: cannot tell whether {monitor!r} should fall or rise; pass "
                     "mode='min' or mode='max'")


def check_monitor(owner: str, monitor: str, params: dict[str, Any]) -> None:
    """ValueError before training when ``fit``'s logs will not hold ``monitor``."""
    metrics = (params or {}).get("metrics")
    if metrics is not None and monitor not in metrics:
        hint = (" (pass validation_data=(X_val, y_val) to fit)" if monitor.startswith("val_")
                and not any(m.startswith("val_") for m in metrics) else "")
        raise ValueError(f"{owner} monitors {monitor!r}, which this fit does not log; it logs "
                         f"{', '.join(map(repr, metrics))}{hint}")


def _count(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{owner}: {name} must be an int >= 0; got {value!r}")
    return value


def get_weights(model: Any) -> dict[str, Any]:
    """A copy of every parameter of ``model``, keyed as ``model.parameters()``."""
    out = {}
    for name, p in model.parameters().items():
        layer = _owner(model, name)
        out[name] = layer.backend.xp.asarray(p, copy=True)
    return out


def set_weights(model: Any, weights: dict[str, Any]) -> None:
    """Copy ``weights`` (from :func:`get_weights`) back into ``model``, bit for bit."""
    for name, value in weights.items():
        setattr(_owner(model, name), name.rpartition(".")[2], value)


def _owner(model: Any, name: str) -> Any:
    layer = model
    for i in name.split(".")[:-1]:
        layer = layer.layers[int(i)]
    return layer


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has stopped improving (Keras' ``EarlyStopping``).

    After each epoch from ``start_from_epoch`` on, the value counts as an improvement
    when it beats the best so far by more than ``min_delta`` (below it in ``"min"``
    mode, above it in ``"max"``). Training stops at the end of the epoch where
    ``patience`` epochs in a row have not improved (``patience=0``: the first epoch
    that does not improve; never at epoch 0). The best starts at ±inf, so a NaN never
    improves. With ``baseline``, an improvement resets the count only when it also
    beats the baseline.

    Args:
        monitor: a key of ``logs``: ``"val_loss"`` (default), ``"val_accuracy"``, ``"loss"``.
        min_delta: the smallest change that counts as an improvement (its absolute value).
        patience: epochs without improvement before stopping.
        mode: ``"min"``, ``"max"``, or ``"auto"`` (from the name: ``*loss`` → min,
            ``*acc*`` → max).
        baseline: a value the monitored quantity must beat, or None.
        restore_best_weights: when training ends (stopped here, or the epochs ran out,
            or another callback stopped it) the model gets back, bit for bit, the
            weights of the end of its best epoch.
        start_from_epoch: epochs (from 0) ignored before monitoring starts.

    After training: ``stopped_epoch`` (the epoch it stopped at, from 0; 0 if it did not),
    ``best``, ``best_epoch`` (from 0), ``wait``. As Keras 3, except: a ``monitor`` that
    ``fit`` does not log is a ValueError before training (Keras warns every epoch), a
    monitor ``"auto"`` cannot place is a ValueError, and ``best`` is reset at each
    ``fit`` (Keras keeps the first fit's).
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        self.mode = resolve_mode("EarlyStopping", monitor, mode)
        self.monitor = monitor
        self.min_delta = abs(real_number("EarlyStopping", "min_delta", min_delta,
                                         low=-math.inf))
        self.patience = _count("EarlyStopping", "patience", patience)
        self.start_from_epoch = _count("EarlyStopping", "start_from_epoch", start_from_epoch)
        self.baseline = None if baseline is None else float(baseline)
        self.restore_best_weights = bool(restore_best_weights)
        self.on_train_begin()

    def on_train_begin(self, logs: Logs | None = None) -> None:
        check_monitor("EarlyStopping", self.monitor, self.params)
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_weights: dict[str, Any] | None = None

    def _improves(self, value: float, reference: float) -> bool:
        if self.mode == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = get_weights(self.model), epoch
        self.wait += 1
        if self._improves(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = get_weights(self.model)
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            set_weights(self.model, self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model with :func:`nnx.save` after each epoch (atomically: a crash while
    saving leaves the previous file whole). Keras' ``ModelCheckpoint``.

    Args:
        path: where to write; a template filled with ``str.format(epoch=<epoch from 1>,
            **logs)``, e.g. ``"ckpt/epoch{epoch:03d}-{val_loss:.4f}.safetensors"``.
            Missing folders are made.
        monitor: the ``logs`` key that ``save_best_only`` compares.
        save_best_only: save only when ``monitor`` improves on the best so far (strictly;
            NaN never does); the best carries over between ``fit`` calls, as in Keras.
        mode: ``"min"``, ``"max"`` or ``"auto"``, as for :class:`EarlyStopping`.

    ``last_path`` is the file written last (None before the first). A template naming a
    value that ``fit`` does not log is a ValueError before training. In data-parallel
    training only the first rank writes.
    """

    def __init__(self, path: str | os.PathLike, monitor: str = "val_loss",
                 save_best_only: bool = False, mode: str = "auto") -> None:
        self.path = os.fspath(path)
        if not isinstance(self.path, str):
            raise TypeError(f"ModelCheckpoint: path must be a str path; got {path!r}")
        self.monitor = monitor
        self.mode = resolve_mode("ModelCheckpoint", monitor, mode)
        self.save_best_only = bool(save_best_only)
        self.best: float | None = None
        self.last_path: str | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if self.save_best_only:
            check_monitor("ModelCheckpoint", self.monitor, self.params)
        metrics = (self.params or {}).get("metrics")
        if metrics is not None:
            try:
                self.path.format(epoch=1, **{k: 0.0 for k in metrics})
            except (KeyError, IndexError) as exc:
                raise ValueError(f"ModelCheckpoint: the path {self.path!r} names {exc}, which "
                                 f"this fit does not log; it logs epoch and "
                                 f"{', '.join(map(repr, metrics))}") from None

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None or math.isnan(current):
                return
            if self.best is not None and not (
                    current < self.best if self.mode == "min" else current > self.best):
                return
            self.best = current
        path = self.path.format(epoch=epoch + 1, **logs)
        if not (self.params or {}).get("is_root", True):
            return
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        _io.save(self.model, path)
        self.last_path = path
