"""Learning-rate schedules: callbacks for :func:`nnx.fit` that set ``optimizer.lr``.

    model.fit(X, y, loss="mse", optimizer=nnx.optim.SGD(lr=0.1), epochs=100,
              callbacks=[nnx.schedules.CosineAnnealing(T_max=100)])

Each schedule changes the learning rate between epochs, never within one, on either
optimizer path (the flat buffer and the per-array one both read ``optimizer.lr`` at every
step). The rates are PyTorch's: epoch ``e`` (from 0) trains with the rate that a
``torch.optim.lr_scheduler`` scheduler gives after ``e`` calls of ``scheduler.step()``
(one per epoch, after it). A schedule starts from the optimizer's rate when ``fit``
begins (``base_lr``), so a second ``fit`` starts it over; ``history.lr`` records the rate
of every epoch. The callback protocol is in :mod:`nnx.callbacks`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .callbacks import Callback, Logs, check_monitor, resolve_mode
from .inputs import positive_int, real_number

__all__ = ["LearningRateScheduler", "StepLR", "CosineAnnealing", "ReduceLROnPlateau"]


class LearningRateScheduler(Callback):
    """Set the rate of each epoch from a function: ``schedule(epoch, lr) -> new lr``,
    called before the epoch with its index (from 0) and the current rate (Keras')."""

    def __init__(self, schedule: Callable[[int, float], float]) -> None:
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be callable; got {schedule!r}")
        self.schedule = schedule
        self.base_lr: float | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.base_lr = _rate_of(self.optimizer, type(self).__name__)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        lr = self.schedule(epoch, float(self.optimizer.lr))
        self.optimizer.lr = real_number(type(self).__name__, "the scheduled rate", lr, low=0.0)


def _rate_of(optimizer: Any, owner: str) -> float:
    lr = getattr(optimizer, "lr", None)
    if lr is None:
        raise TypeError(f"{owner}: the optimizer {optimizer!r} has no 'lr' attribute to set")
    return float(lr)


class StepLR(LearningRateScheduler):
    """Step decay: ``lr = base_lr · gamma ** (epoch // step_size)`` (``torch.optim.
    lr_scheduler.StepLR``): the rate falls by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = positive_int("step_size", step_size, "StepLR")
        self.gamma = real_number("StepLR", "gamma", gamma, low=0.0, low_open=True)
        super().__init__(self._at)

    def _at(self, epoch: int, lr: float) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealing(LearningRateScheduler):
    """Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_max`` epochs::

        lr = eta_min + (base_lr − eta_min) · (1 + cos(π · epoch / T_max)) / 2

    ``torch.optim.lr_scheduler.CosineAnnealingLR``'s closed form (PyTorch computes the
    same rates recursively; they agree to rounding). Past ``T_max`` the cosine goes on,
    rising again, as PyTorch's does; train ``T_max`` epochs to end at ``eta_min``.
    """

    def __init__(self, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803 (torch's name)
        self.T_max = positive_int("T_max", T_max, "CosineAnnealing")
        self.eta_min = real_number("CosineAnnealing", "eta_min", eta_min, low=0.0)
        super().__init__(self._at)

    def _at(self, epoch: int, lr: float) -> float:
        cos = 1.0 + math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * cos / 2.0


class ReduceLROnPlateau(Callback):
    """Multiply the rate by ``factor`` when ``monitor`` stops improving, as
    ``torch.optim.lr_scheduler.ReduceLROnPlateau`` does with ``step(logs[monitor])``
    after every epoch.

    An epoch improves when its value beats the best so far: in ``"min"`` mode by being
    below ``best · (1 − threshold)`` (``threshold_mode="rel"``) or ``best − threshold``
    (``"abs"``); in ``"max"`` mode above ``best · (1 + threshold)`` or ``best +
    threshold``. After more than ``patience`` epochs in a row without one, the rate
    becomes ``max(lr · factor, min_lr)`` (unless that changes it by ``eps`` or less),
    and then ``cooldown`` epochs pass during which bad epochs are not counted.

    Args are PyTorch's, with its defaults; ``monitor`` (default ``"val_loss"``) picks
    the value from ``logs`` and ``mode="auto"`` reads its name as in
    :class:`nnx.callbacks.EarlyStopping`. ``best``, ``num_bad_epochs`` and
    ``cooldown_counter`` are readable; each ``fit`` starts them afresh.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float = 0.0, eps: float = 1e-8) -> None:
        owner = "ReduceLROnPlateau"
        self.monitor = monitor
        self.mode = resolve_mode(owner, monitor, mode)
        self.factor = real_number(owner, "factor", factor, low=0.0, high=1.0)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"{owner}: patience must be an int >= 0; got {patience!r}")
        if isinstance(cooldown, bool) or not isinstance(cooldown, int) or cooldown < 0:
            raise ValueError(f"{owner}: cooldown must be an int >= 0; got {cooldown!r}")
        self.patience, self.cooldown = patience, cooldown
        self.threshold = real_number(owner, "threshold", threshold, low=0.0)
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{owner}: threshold_mode must be 'rel' or 'abs'; "
                             f"got {threshold_mode!r}")
        self.threshold_mode = threshold_mode
        self.min_lr = real_number(owner, "min_lr", min_lr, low=0.0)
        self.eps = real_number(owner, "eps", eps, low=0.0)
        self.on_train_begin()

    def on_train_begin(self, logs: Logs | None = None) -> None:
        check_monitor("ReduceLROnPlateau", self.monitor, self.params)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _improves(self, value: float) -> bool:
        best, t = self.best, self.threshold
        if self.mode == "min":
            return value < (best * (1.0 - t) if self.threshold_mode == "rel" else best - t)
        return value > (best * (1.0 + t) if self.threshold_mode == "rel" else best + t)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is None:
            return
        current = float(current)
        if self._improves(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0          # bad epochs in cooldown are not counted
        if self.num_bad_epochs > self.patience:
            old = _rate_of(self.optimizer, "ReduceLROnPlateau")
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
