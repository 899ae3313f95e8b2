"""10.8: one hidden layer of tanh units fits a continuous function, better as it widens.

Each width is trained the same way (Adam, then a tenth of the learning rate), keeping
the best of a few seeds. The error falls by orders of magnitude over the first few
units; past that it is limited by training, not width — the theorem's catch: it says
a good network exists, not that gradient descent will find it.
"""

from __future__ import annotations

import math
from typing import Any

from ..optim import Adam
from ..sequential import MLP
from ._common import COLORS, DemoContext, host, new_figure


def target(x: Any, xp: Any) -> Any:
    """f(x) = sin(3x)·exp(−x²/8) + 0.3|x|: continuous, wiggly, with a kink at 0."""
    return xp.sin(3.0 * x) * xp.exp(-x * x / 8.0) + 0.3 * xp.abs(x)


def fit_width(x: Any, y: Any, width: int, seeds: list[int], epochs: tuple[int, int],
              lr: float) -> tuple[float, Any]:
    """The best (mse, model) over ``seeds`` for a one-hidden-layer tanh net of ``width``."""
    best: tuple[float, Any] = (math.inf, None)
    for seed in seeds:
        model = MLP([1, width, 1], activation="tanh", seed=seed)
        model.fit(x, y, loss="mse", optimizer=Adam(lr=lr), epochs=epochs[0], progress=False)
        history = model.fit(x, y, loss="mse", optimizer=Adam(lr=lr / 10), epochs=epochs[1],
                            progress=False)
        if history.loss[-1] < best[0]:
            best = (history.loss[-1], model)
    return best


def run(ctx: DemoContext) -> dict[str, Any]:
    xp, dev = ctx.backend.xp, ctx.backend.device
    widths = ctx.pick([1, 2, 4, 8, 16, 32], [1, 4, 16])
    epochs = ctx.pick((3000, 1500), (800, 400))
    seeds = [ctx.seed + i for i in range(ctx.pick(2, 1))]
    x = xp.reshape(xp.linspace(-3.0, 3.0, ctx.pick(300, 120), dtype=xp.float32, device=dev),
                   (-1, 1))
    y = target(x, xp)
    print(f"Fitting f(x) = sin(3x)·exp(−x²/8) + 0.3|x| on [−3, 3] with one hidden tanh layer "
          f"(Adam {epochs[0]} + {epochs[1]} epochs, best of {len(seeds)} seed(s)):")
    errors, fits = [], {}
    for width in widths:
        mse, model = fit_width(x, y, width, seeds, epochs, lr=0.02)
        errors.append(mse)
        fits[width] = host(xp.reshape(model.predict(x), (-1,)))
        print(f"  width {width:>3}: mse {mse:.2e}   ({3 * width + 1} parameters)")
    print(f"  error fell {errors[0] / min(errors):.0f}× from width {widths[0]} to the best width")

    fig = new_figure(14, 4.8)
    ax1, ax2 = fig.subplots(1, 2)
    xs = host(xp.reshape(x, (-1,)))
    ax1.plot(xs, host(xp.reshape(y, (-1,))), color="k", lw=3, alpha=0.35, label="target f(x)")
    shown = [w for w in widths if w in (1, 2, 4, 32)] or widths
    for i, width in enumerate(shown):
        ax1.plot(xs, fits[width], color=COLORS[i], lw=1.6, label=f"{width} hidden units")
    ax1.set_xlabel("x")
    ax1.set_title("one hidden layer, growing width")
    ax1.legend(fontsize=8)
    ax2.loglog(widths, errors, "o-", color=COLORS[0], lw=2)
    ax2.set_xscale("log", base=2)
    ax2.set_xticks(widths, [str(w) for w in widths])
    ax2.set_xlabel("hidden units")
    ax2.set_ylabel("training mean squared error")
    ax2.set_title("error falls with width, until training (not width) limits it")
    ax2.grid(alpha=0.3, which="both")
    fig.suptitle("The universal approximation theorem: enough units fit any continuous "
                 "function; finding the weights is another matter")
    return {"widths": widths, "mse": errors, "png": ctx.save(fig)}
